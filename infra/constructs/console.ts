import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { AssetHashType, DockerImage, Duration, Fn, RemovalPolicy, Stack, Token } from "aws-cdk-lib";
import * as acm from "aws-cdk-lib/aws-certificatemanager";
import * as cloudfront from "aws-cdk-lib/aws-cloudfront";
import * as origins from "aws-cdk-lib/aws-cloudfront-origins";
import * as s3 from "aws-cdk-lib/aws-s3";
import * as s3deploy from "aws-cdk-lib/aws-s3-deployment";
import { Construct } from "constructs";
import type { Api } from "./api.ts";
import type { Chat } from "./chat.ts";
import { repoPath } from "./container-image.ts";
import { acknowledge, arnToken } from "./nag.ts";

export interface ConsoleProps {
  /** The console calls the REST API: its base URL goes into `config.json`, its origin into the CSP. */
  readonly api: Api;
  /** The playground streams from the chat Function URL (`config.json`'s `chatBaseUrl`). */
  readonly chat: Chat;
  /** Where the bucket's server access logs and the distribution's standard logs go. */
  readonly accessLogsBucket: s3.IBucket;
  /** RETAIN by default, like the platform's other buckets; DESTROY empties and deletes it with the stack. */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * A custom domain for the console, with an ACM certificate in us-east-1 that covers it: viewers then
   * get the TLSv1.2_2021 security policy (the default `*.cloudfront.net` certificate cannot pin one), and
   * the CSP names the chat Function URL exactly (see {@link Console}). Both or neither.
   */
  readonly domainName?: string;
  readonly certificateArn?: string;
}

/** Where the console's sources are; the build (scripts/build-console.ts) bundles them. */
const CONSOLE_SOURCES = "web/console";

/**
 * The console (the experience center) as a static site: a private S3 bucket read by CloudFront through
 * origin access control, HTTPS only, security headers on every response, and the built app deployed
 * with a `config.json` that names the API and chat base URLs (resolved at deploy).
 *
 * The console's origin and the API know each other: the API's CORS (preflights, gateway responses, the
 * functions' `CONSOLE_ORIGIN`) and the Function URL's CORS name the distribution's domain, and the
 * distribution's CSP names the API. The CSP uses the API's origin (the REST API's id only: no stage, no
 * method, nothing that depends on the distribution), so there is no cycle there. The Function URL's id,
 * though, exists only with the Function URL, whose CORS needs the distribution: with the default
 * domain, `connect-src` allows the region's Function URL hosts (`https://*.lambda-url.<region>.on.aws`)
 * instead of the exact one; with a custom domain (a static origin) it names the exact Function URL.
 */
export class Console extends Construct {
  readonly bucket: s3.Bucket;
  readonly distribution: cloudfront.Distribution;
  /** `https://<domain>`: the one origin the API and the chat Function URL allow. */
  readonly origin: string;
  /** The Content-Security-Policy every response carries. */
  readonly contentSecurityPolicy: string;

  constructor(scope: Construct, id: string, props: ConsoleProps) {
    super(scope, id);
    if (Boolean(props.domainName) !== Boolean(props.certificateArn)) {
      throw new Error("The console's domainName and certificateArn go together: set both or neither");
    }
    const stack = Stack.of(this);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;

    this.bucket = new s3.Bucket(this, "Site", {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      // SSE-S3: CloudFront's origin access control reads it without a KMS key policy.
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      serverAccessLogsBucket: props.accessLogsBucket,
      serverAccessLogsPrefix: "console/",
      removalPolicy,
      autoDeleteObjects: removalPolicy === RemovalPolicy.DESTROY,
    });

    const apiOrigin = `https://${props.api.restApi.restApiId}.execute-api.${stack.region}.${stack.urlSuffix}`;
    const chatOrigin = props.domainName
      ? `https://${Fn.select(2, Fn.split("/", props.chat.functionUrl.url))}`
      : `https://*.lambda-url.${stack.region}.on.aws`;
    this.contentSecurityPolicy = [
      "default-src 'self'",
      "script-src 'self'",
      "style-src 'self'",
      "img-src 'self' data:",
      "font-src 'self'",
      `connect-src 'self' ${apiOrigin} ${chatOrigin}`,
      "object-src 'none'",
      "base-uri 'self'",
      "form-action 'self'",
      "frame-ancestors 'none'",
    ].join("; ");
    const headers = new cloudfront.ResponseHeadersPolicy(this, "SecurityHeaders", {
      comment: "ft-platform console: HSTS, CSP (self + API + chat), nosniff, no framing, referrer policy",
      securityHeadersBehavior: {
        strictTransportSecurity: {
          accessControlMaxAge: Duration.days(730),
          includeSubdomains: true,
          override: true,
        },
        contentSecurityPolicy: { contentSecurityPolicy: this.contentSecurityPolicy, override: true },
        contentTypeOptions: { override: true },
        frameOptions: { frameOption: cloudfront.HeadersFrameOption.DENY, override: true },
        referrerPolicy: {
          // As the page itself asks (index.html): the API and chat need no referrer.
          referrerPolicy: cloudfront.HeadersReferrerPolicy.NO_REFERRER,
          override: true,
        },
      },
    });

    this.distribution = new cloudfront.Distribution(this, "Distribution", {
      comment: "ft-platform console",
      defaultRootObject: "index.html",
      defaultBehavior: {
        origin: origins.S3BucketOrigin.withOriginAccessControl(this.bucket),
        viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
        allowedMethods: cloudfront.AllowedMethods.ALLOW_GET_HEAD,
        cachePolicy: cloudfront.CachePolicy.CACHING_OPTIMIZED,
        responseHeadersPolicy: headers,
        compress: true,
      },
      httpVersion: cloudfront.HttpVersion.HTTP2_AND_3,
      minimumProtocolVersion: cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021,
      enableLogging: true,
      logBucket: props.accessLogsBucket,
      logFilePrefix: "console-cdn/",
      ...(props.domainName && props.certificateArn
        ? {
            domainNames: [props.domainName],
            certificate: acm.Certificate.fromCertificateArn(this, "Certificate", props.certificateArn),
          }
        : {}),
    });
    this.origin = `https://${props.domainName ?? this.distribution.distributionDomainName}`;

    const deployment = new s3deploy.BucketDeployment(this, "Deploy", {
      destinationBucket: this.bucket,
      sources: [
        s3deploy.Source.asset(repoPath(CONSOLE_SOURCES), {
          // Built at synth by the project's own script (esbuild, no network); the tests skip bundling.
          bundling: { image: DockerImage.fromRegistry("unused"), local: { tryBundle: buildConsoleInto } },
          // The build also reads the catalog (contract/): what it makes decides a new upload.
          assetHashType: AssetHashType.OUTPUT,
        }),
        // Resolved at deploy: the app reads it at start (`/config.json`).
        s3deploy.Source.jsonData("config.json", {
          apiBaseUrl: `${props.api.restApi.url}v4`,
          chatBaseUrl: `${props.chat.functionUrl.url}v4`,
        }),
      ],
      // index.html and config.json change in place: browsers revalidate (ETag), CloudFront is invalidated.
      cacheControl: [s3deploy.CacheControl.noCache()],
      distribution: this.distribution,
      distributionPaths: ["/*"],
      memoryLimit: 512,
    });

    const why = {
      geo: "The console serves every tenant's browser; operators restrict countries on the distribution if they need to.",
      waf: "WAF is an operator's choice with its own cost (a CLOUDFRONT-scope web ACL in us-east-1); the console is static and every API call is authenticated.",
      tls: "The default *.cloudfront.net certificate cannot pin a security policy; give the console a domain and certificate (PlatformStackProps.console) for TLSv1.2_2021 (README, Deploy to AWS).",
    };
    acknowledge(this.distribution, "AwsSolutions-CFR1", why.geo);
    acknowledge(this.distribution, "AwsSolutions-CFR2", why.waf);
    if (!props.domainName) acknowledge(this.distribution, "AwsSolutions-CFR4", why.tls);
    acknowledgeDeploymentHandler(deployment, this.bucket);
  }
}

/**
 * Builds the console into the asset's output directory with its own script, in a child process
 * (`buildConsole` is async, CDK's local bundling synchronous). The build's `config.json` placeholder is
 * left out: the deployment writes the real one.
 */
function buildConsoleInto(outputDir: string): boolean {
  const run = spawnSync("npx", ["tsx", "scripts/build-console.ts", outputDir], {
    cwd: repoPath("."),
    encoding: "utf8",
    stdio: ["ignore", "inherit", "inherit"],
  });
  if (run.status !== 0) throw new Error(`The console build failed (exit ${run.status ?? run.signal})`);
  rmSync(join(outputDir, "config.json"), { force: true });
  return true;
}

/** A stack attribute as cdk-nag prints it: the value when the stack's environment names it, else `<Pseudo>`. */
function nagValue(value: string, pseudo: string): string {
  return Token.isUnresolved(value) ? `<${pseudo}>` : value;
}

/**
 * The BucketDeployment's function is CDK's own singleton provider (a deploy-time custom resource of
 * aws-cdk-lib, run once per deploy): its runtime, permissions and settings are aws-cdk-lib's.
 */
function acknowledgeDeploymentHandler(deployment: s3deploy.BucketDeployment, bucket: s3.Bucket): void {
  const stack = Stack.of(deployment);
  const provider = "CDK's BucketDeployment provider, a deploy-time custom resource of aws-cdk-lib";
  const findings: Record<string, string> = {
    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]": `${provider}: its logs only.`,
    "AwsSolutions-IAM5[Resource::*]": `${provider}: cloudfront:CreateInvalidation, which takes no resource narrower than the distribution ARN CDK does not pass.`,
    "AwsSolutions-IAM5[Action::s3:GetObject*]": `${provider}: reads the staged console asset.`,
    "AwsSolutions-IAM5[Action::s3:GetBucket*]": `${provider}: reads the staged console asset.`,
    "AwsSolutions-IAM5[Action::s3:List*]": `${provider}: lists the site bucket to prune old files.`,
    "AwsSolutions-IAM5[Action::s3:DeleteObject*]": `${provider}: prunes files the new build no longer has, in the site bucket only.`,
    "AwsSolutions-IAM5[Action::s3:Abort*]": `${provider}: aborts its own failed multipart uploads to the site bucket.`,
    [`AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-${nagValue(stack.account, "AWS::AccountId")}-${nagValue(stack.region, "AWS::Region")}/*]`]: `${provider}: the bootstrap assets bucket, where the built console is staged.`,
    [`AwsSolutions-IAM5[Resource::${arnToken(bucket)}/*]`]: `${provider}: writes the console's objects into the site bucket, nothing else.`,
    "AwsSolutions-L1": `${provider}, whose runtime aws-cdk-lib pins.`,
    "Serverless-LambdaLatestVersion": `${provider}, whose runtime aws-cdk-lib pins.`,
    "Serverless-LambdaDLQ": `${provider}: CloudFormation invokes it synchronously and fails the deploy on an error; there is nothing to redrive.`,
    "Serverless-LambdaTracing": `${provider}: one call per deploy, traced by CloudFormation's own events.`,
  };
  for (const child of stack.node.children) {
    if (!child.node.id.startsWith("Custom::CDKBucketDeployment")) continue;
    for (const [finding, reason] of Object.entries(findings)) acknowledge(child, finding, reason);
  }
}
