import { RemovalPolicy } from "aws-cdk-lib";
import * as ec2 from "aws-cdk-lib/aws-ec2";
import * as logs from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";
import { acknowledge } from "./nag.ts";

export interface NetworkProps {
  /** Availability zones; 2 by default (Batch picks whichever has GPU capacity). */
  readonly maxAzs?: number;
  /**
   * Also add the X-Ray interface endpoint: needed once a traced Lambda function runs in the VPC (the chat
   * function, when it reaches private inference servers). Off by default: nothing traced runs inside.
   */
  readonly xrayEndpoint?: boolean;
}

/**
 * The network the GPU workloads run in: private isolated subnets only, no NAT gateway and no internet
 * route. Everything the instances and containers talk to is an AWS API, reached through VPC endpoints;
 * container images come from ECR (the trainer and inference images are pushed there), model weights and
 * datasets from S3.
 */
export class Network extends Construct {
  readonly vpc: ec2.Vpc;
  /** Shared by every interface endpoint. */
  readonly endpointSecurityGroup: ec2.SecurityGroup;
  /** The subnets workloads run in. */
  readonly subnets: ec2.SubnetSelection = { subnetType: ec2.SubnetType.PRIVATE_ISOLATED };

  constructor(scope: Construct, id: string, props: NetworkProps = {}) {
    super(scope, id);
    const flowLogs = new logs.LogGroup(this, "FlowLogs", {
      retention: logs.RetentionDays.THREE_MONTHS,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.vpc = new ec2.Vpc(this, "Vpc", {
      ipAddresses: ec2.IpAddresses.cidr("10.40.0.0/16"),
      maxAzs: props.maxAzs ?? 2,
      natGateways: 0,
      subnetConfiguration: [{ name: "private", subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 20 }],
      // Gateway endpoints cost nothing and carry the bulk traffic: weights, datasets, checkpoints (S3) and
      // the trainer's progress events and job updates (DynamoDB).
      gatewayEndpoints: {
        S3: { service: ec2.GatewayVpcEndpointAwsService.S3 },
        DynamoDb: { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB },
      },
      flowLogs: {
        All: {
          destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs),
          trafficType: ec2.FlowLogTrafficType.ALL,
        },
      },
    });

    // Interface endpoints (private DNS on, so the default regional hostnames resolve to them). Each
    // allows HTTPS from the VPC's CIDR only.
    const endpoints: [id: string, service: ec2.InterfaceVpcEndpointAwsService, why: string][] = [
      // ECR: the container agent pulls the trainer/inference images (manifests from the API, auth
      // tokens from ecr.api; layers come from S3 through the gateway endpoint).
      ["EcrApi", ec2.InterfaceVpcEndpointAwsService.ECR, "image pull: ecr.api (auth tokens, manifests)"],
      ["EcrDocker", ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER, "image pull: the registry (dkr)"],
      // The awslogs log driver ships container stdout/stderr (trainer logs, vLLM logs).
      ["Logs", ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS, "awslogs log driver"],
      // The ECS container agent on Batch/ECS instances registers the instance, polls for tasks (ecs,
      // ecs-agent) and reports container metrics (ecs-telemetry): Batch runs jobs as ECS tasks.
      ["Ecs", ec2.InterfaceVpcEndpointAwsService.ECS, "ECS agent: register and manage"],
      ["EcsAgent", ec2.InterfaceVpcEndpointAwsService.ECS_AGENT, "ECS agent: task polling"],
      ["EcsTelemetry", ec2.InterfaceVpcEndpointAwsService.ECS_TELEMETRY, "ECS agent: metrics"],
      // Containers get their task role credentials from the ECS agent's local credentials endpoint
      // (169.254.170.2), instances from the instance metadata service; STS (regional) is for the
      // tenant-scoped sessions the trainer and the inference proxy assume (tenant-scope.ts).
      [
        "Sts",
        ec2.InterfaceVpcEndpointAwsService.STS,
        "tenant-scoped sessions: sts:AssumeRole with session tags",
      ],
    ];
    if (props.xrayEndpoint) {
      // Active tracing in a VPC-attached Lambda function sends segments to X-Ray over the network.
      endpoints.push(["XRay", ec2.InterfaceVpcEndpointAwsService.XRAY, "X-Ray segments of in-VPC functions"]);
    }
    this.endpointSecurityGroup = new ec2.SecurityGroup(this, "EndpointSecurityGroup", {
      vpc: this.vpc,
      description: "Interface VPC endpoints: HTTPS from inside the VPC only",
      allowAllOutbound: false,
    });
    this.endpointSecurityGroup.addIngressRule(
      ec2.Peer.ipv4(this.vpc.vpcCidrBlock),
      ec2.Port.tcp(443),
      "HTTPS from the VPC",
    );
    acknowledge(
      this.endpointSecurityGroup,
      "AwsSolutions-EC23",
      "Ingress is HTTPS from the VPC's own CIDR block (a reference cdk-nag cannot resolve), not from anywhere.",
    );
    for (const [endpointId, service] of endpoints) {
      this.vpc.addInterfaceEndpoint(endpointId, {
        service,
        subnets: this.subnets,
        privateDnsEnabled: true,
        securityGroups: [this.endpointSecurityGroup],
        open: false,
      });
    }
  }
}
