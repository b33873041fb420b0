import { Duration, Stack } from "aws-cdk-lib";
import * as ec2 from "aws-cdk-lib/aws-ec2";
import * as iam from "aws-cdk-lib/aws-iam";
import * as lambda from "aws-cdk-lib/aws-lambda";
import type * as s3 from "aws-cdk-lib/aws-s3";
import type * as sns from "aws-cdk-lib/aws-sns";
import { Construct } from "constructs";
import { CONFIG_ENV, SERVICES } from "../resources/definitions.ts";
import type { Api } from "./api.ts";
import { type BucketRef, bind, type TableRef } from "./bind.ts";
import type { PlatformCatalog } from "./catalog.ts";
import { Inference } from "./inference.ts";
import { acknowledge } from "./nag.ts";
import type { Network } from "./network.ts";
import { PlatformFunction } from "./platform-function.ts";

/** Where chat completions are served; at most one of the two. */
export interface InferenceOptions {
  /** An external OpenAI-compatible endpoint (base URL ending in `/v1`) serving every model (`"*"`). */
  readonly endpointUrl?: string;
  /**
   * Base model names to serve privately with vLLM on GPU instances (LoRA models share their base's
   * server). With them, full-parameter models can be deployed through the API too (deployments.ts).
   */
  readonly servers?: readonly string[];
  /** The inference image in a registry; by default built from `batch-images/inference/Dockerfile` at deploy. */
  readonly imageUri?: string;
  /** EC2 instance type of the inference servers; g6e.2xlarge (one 48 GiB L40S) by default. */
  readonly instanceType?: string;
}

export interface ChatProps {
  readonly api: Api;
  /** On the Function URL path there is no authorizer: the function looks the key's hash up itself. */
  readonly apiKeysTable: TableRef<"api-keys">;
  readonly modelsTable: TableRef<"models">;
  /** The function adds each answered chat's tokens to its tenant's daily totals there. */
  readonly usageTable: TableRef<"usage">;
  /** Chat tokens per tenant per minute, shared by every instance (`CHAT_TOKENS_PER_MINUTE`). */
  readonly chatRateTable: TableRef<"chat-rate">;
  /** Private inference servers read weights and adapters from it. */
  readonly artifactsBucket: BucketRef<"artifacts">;
  /** Base model names a request may use; the private servers' families and weights. */
  readonly catalog: PlatformCatalog;
  readonly network: Network;
  readonly alarmTopic: sns.ITopic;
  readonly accessLogsBucket: s3.IBucket;
  readonly inference?: InferenceOptions;
  /** Requests per minute per tenant the function admits; unset: the function's own default. */
  readonly rateLimitPerMinute?: number;
  /** Tokens per minute per tenant, across instances; unset: the function's default (100,000; 0 = off). */
  readonly tokensPerMinute?: number;
  /**
   * The hosted console's origin (`https://<CloudFront domain>`, console.ts): the one origin the Function
   * URL's CORS allows (Lambda answers the preflight itself). May be a token. Unset: no browser origin.
   */
  readonly consoleOrigin?: string;
}

/**
 * The chat bounded context: the streaming chat function, reachable through its Function URL (response
 * streaming, the function checks the API key) and at `POST /v4/chat/completions` on the REST API
 * (response streaming, the API key authorizer), and where it sends completions: an external
 * OpenAI-compatible endpoint or private vLLM servers ({@link Inference}).
 */
export class Chat extends Construct {
  readonly function: PlatformFunction;
  readonly functionUrl: lambda.FunctionUrl;
  readonly inference?: Inference;
  /** The function's security group, when it runs in the VPC (with private inference servers). */
  readonly securityGroup?: ec2.SecurityGroup;

  constructor(scope: Construct, id: string, props: ChatProps) {
    super(scope, id);
    const options = props.inference ?? {};
    if (options.endpointUrl && options.servers?.length) {
      throw new Error("Set either inferenceEndpointUrl or inferenceServers, not both");
    }
    if (options.servers?.length) {
      this.inference = new Inference(this, "Inference", {
        network: props.network,
        artifactsBucket: props.artifactsBucket,
        catalog: props.catalog,
        alarmTopic: props.alarmTopic,
        accessLogsBucket: props.accessLogsBucket,
        baseModels: options.servers,
        ...(options.imageUri ? { imageUri: options.imageUri } : {}),
        ...(options.instanceType ? { instanceType: options.instanceType } : {}),
      });
    }
    const endpoints: Record<string, string> = this.inference
      ? this.inference.endpoints
      : options.endpointUrl
        ? { "*": options.endpointUrl }
        : {};

    this.function = new PlatformFunction(this, "ChatFunction", {
      entry: "lambdas/chat/index.ts",
      service: SERVICES.chat,
      description: "Chat completions (SSE), streamed from the inference server",
      // Long generations stream for minutes; Function URLs and REST streaming allow up to 15.
      timeout: Duration.minutes(15),
      memorySize: 512,
      environment: {
        [CONFIG_ENV.inferenceEndpoints]: Stack.of(this).toJsonString(endpoints),
        ...(props.rateLimitPerMinute !== undefined
          ? { [CONFIG_ENV.chatRateLimitPerMinute]: String(props.rateLimitPerMinute) }
          : {}),
        ...(props.tokensPerMinute !== undefined
          ? { [CONFIG_ENV.chatTokensPerMinute]: String(props.tokensPerMinute) }
          : {}),
      },
    });
    bind(this.function, props.modelsTable, { actions: ["GetItem"] });
    bind(this.function, props.apiKeysTable, { actions: ["GetItem"] });
    // Adds to a day's counters (ADD); it never reads usage back, nor deletes it.
    bind(this.function, props.usageTable, { actions: ["UpdateItem"] });
    // The shared token rate: reads the tenant's current minute, adds each answered chat's tokens.
    bind(this.function, props.chatRateTable, { actions: ["GetItem", "UpdateItem"] });
    props.catalog.bind(this.function);
    if (this.inference) this.securityGroup = this.attachToVpc(props.network, this.inference);

    this.functionUrl = this.function.addFunctionUrl({
      // The function authenticates the `Authorization: Bearer` API key itself, like the authorizer does.
      authType: lambda.FunctionUrlAuthType.NONE,
      invokeMode: lambda.InvokeMode.RESPONSE_STREAM,
      ...(props.consoleOrigin
        ? {
            cors: {
              allowedOrigins: [props.consoleOrigin],
              allowedMethods: [lambda.HttpMethod.POST],
              allowedHeaders: ["authorization", "content-type", "idempotency-key"],
              maxAge: Duration.hours(1),
            },
          }
        : {}),
    });

    const chat = props.api.v4.addResource("chat").addResource("completions");
    props.api.route(chat, "POST", this.function, { stream: true });
  }

  /**
   * Puts the function into the VPC, beside the private inference servers and the deployed models'
   * servers. PlatformFunction takes no VPC props, so the CloudFormation properties are set here, with the
   * ENI permissions Lambda needs. Returns the function's security group.
   */
  private attachToVpc(network: Network, inference: Inference): ec2.SecurityGroup {
    const securityGroup = new ec2.SecurityGroup(this, "ChatSecurityGroup", {
      vpc: network.vpc,
      description: "The chat function: outbound to the inference load balancer and the VPC endpoints",
      allowAllOutbound: true,
    });
    inference.allowFrom(securityGroup);
    const cfn = this.function.node.defaultChild as lambda.CfnFunction;
    cfn.vpcConfig = {
      subnetIds: network.vpc.selectSubnets(network.subnets).subnetIds,
      securityGroupIds: [securityGroup.securityGroupId],
    };
    const eniPolicy = new iam.Policy(this, "ChatVpcAccess", {
      statements: [
        new iam.PolicyStatement({
          // The actions of AWSLambdaVPCAccessExecutionRole; none takes a resource-level permission for
          // an interface that does not exist yet.
          actions: [
            "ec2:CreateNetworkInterface",
            "ec2:DescribeNetworkInterfaces",
            "ec2:DescribeSubnets",
            "ec2:DeleteNetworkInterface",
            "ec2:AssignPrivateIpAddresses",
            "ec2:UnassignPrivateIpAddresses",
          ],
          resources: ["*"],
        }),
      ],
    });
    this.function.role!.attachInlinePolicy(eniPolicy);
    cfn.node.addDependency(eniPolicy);
    acknowledge(
      eniPolicy,
      "AwsSolutions-IAM5[Resource::*]",
      "Lambda's VPC networking (ENI create/describe/delete) supports no resource-level permissions.",
    );
    return securityGroup;
  }
}
