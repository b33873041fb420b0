import { fileURLToPath } from "node:url";
import { Annotations, IgnoreMode } from "aws-cdk-lib";
import * as ecr from "aws-cdk-lib/aws-ecr";
import { Platform } from "aws-cdk-lib/aws-ecr-assets";
import * as ecs from "aws-cdk-lib/aws-ecs";
import type { Construct } from "constructs";

const ECR_IMAGE = /^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?\/([^:@]+)(?::([^@]+)|@(.+))?$/;

/**
 * A workload's container image. With a URI: an ECR image is pulled with permissions granted to the
 * execution role (any other registry is unreachable without an internet route, hence the warning).
 * Without: the image is built by `cdk deploy` (Docker needed there, not at synth) for x86_64, the GPU
 * instances' architecture, whatever machine deploys, from `dockerfile` with the repository root as its
 * context, as the images' READMEs build them (they copy `contract/`); the root `.dockerignore` is a
 * whitelist, so the asset's hash and upload cover only what the Dockerfiles copy.
 */
export function containerImage(
  scope: Construct,
  id: string,
  uri: string | undefined,
  dockerfile: string,
): ecs.ContainerImage {
  if (!uri) {
    return ecs.ContainerImage.fromAsset(repoPath("."), {
      file: dockerfile,
      platform: Platform.LINUX_AMD64,
      ignoreMode: IgnoreMode.DOCKER,
      // CDK re-includes the Dockerfile by its base name only, which a whitelist of the root does not
      // match for `batch-images/*/Dockerfile`.
      exclude: [`!${dockerfile}`],
    });
  }
  const ecrImage = ECR_IMAGE.exec(uri);
  if (!ecrImage) {
    Annotations.of(scope).addWarningV2(
      "ft:notEcrImage",
      `${uri} is not an ECR image: the private subnets have no internet route; use ECR (or an ECR pull-through cache).`,
    );
    return ecs.ContainerImage.fromRegistry(uri);
  }
  const [, account, region, name, tag, digest] = ecrImage;
  const partition = uri.includes(".amazonaws.com.cn/") ? "aws-cn" : "aws";
  const repository = ecr.Repository.fromRepositoryAttributes(scope, id, {
    repositoryArn: `arn:${partition}:ecr:${region}:${account}:repository/${name}`,
    repositoryName: name!,
  });
  return ecs.ContainerImage.fromEcrRepository(repository, digest ?? tag ?? "latest");
}

/** A path inside the repository, whatever the working directory. */
export function repoPath(relative: string): string {
  return fileURLToPath(new URL(`../../${relative}`, import.meta.url));
}
