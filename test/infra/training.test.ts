import { App, Duration, Stack } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import * as ecs from "aws-cdk-lib/aws-ecs";
import * as iam from "aws-cdk-lib/aws-iam";
import * as logs from "aws-cdk-lib/aws-logs";
import { describe, expect, it } from "vitest";
import { type MultiNodeCapacity, MultiNodeTraining } from "../../infra/constructs/multinode.ts";
import { Network } from "../../infra/constructs/network.ts";
import { principalTag } from "../../infra/constructs/tenant-scope.ts";
import { DEFAULT_CATALOG } from "../../lambdas/core/catalog/base-models.ts";
import { synthPlatform } from "./synth.ts";

type Statement = { Effect?: string; Action: string | string[]; Resource: unknown; Condition?: unknown };

/** The statements of the policies attached to roles whose logical id starts with `prefix`. */
function statementsOf(template: ReturnType<typeof synthPlatform>["template"], prefix: string): Statement[] {
  return Object.entries(template.findResources("AWS::IAM::Policy"))
    .filter(([id]) => id.startsWith(prefix))
    .flatMap(([, policy]) => policy.Properties.PolicyDocument.Statement as Statement[]);
}

const actions = (statements: Statement[]) =>
  statements.flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action])).sort();

describe("network construct", () => {
  const { template } = synthPlatform();

  it("has private isolated subnets only, no NAT gateway and no internet gateway", () => {
    template.resourceCountIs("AWS::EC2::NatGateway", 0);
    template.resourceCountIs("AWS::EC2::InternetGateway", 0);
    const subnets = Object.values(template.findResources("AWS::EC2::Subnet"));
    expect(subnets).toHaveLength(2);
    for (const subnet of subnets) expect(subnet.Properties.MapPublicIpOnLaunch).toBe(false);
  });

  it("reaches S3 and DynamoDB through gateway endpoints and ECR, logs and ECS through interface endpoints", () => {
    const endpoints = Object.values(template.findResources("AWS::EC2::VPCEndpoint")).map((e) => ({
      type: e.Properties.VpcEndpointType ?? "Gateway",
      service: JSON.stringify(e.Properties.ServiceName),
      privateDns: e.Properties.PrivateDnsEnabled,
    }));
    const gateway = endpoints.filter((e) => e.type === "Gateway").map((e) => e.service);
    expect(gateway.some((s) => s.includes(".s3"))).toBe(true);
    expect(gateway.some((s) => s.includes(".dynamodb"))).toBe(true);
    const iface = endpoints.filter((e) => e.type === "Interface");
    for (const name of ["ecr.api", "ecr.dkr", "logs", "ecs", "ecs-agent", "ecs-telemetry", "sts"]) {
      expect(iface.some((e) => e.service.includes(`.${name}"`) && e.privateDns)).toBe(true);
    }
  });

  it("logs every flow", () => {
    template.hasResourceProperties("AWS::EC2::FlowLog", { ResourceType: "VPC", TrafficType: "ALL" });
  });

  it("lets nothing in to the Batch instances", () => {
    const groups = Object.entries(template.findResources("AWS::EC2::SecurityGroup")).filter(([id]) =>
      id.startsWith("TrainingInstanceSecurityGroup"),
    );
    expect(groups).toHaveLength(1);
    expect(groups[0]![1].Properties.SecurityGroupIngress).toBeUndefined();
    const ingress = Object.values(template.findResources("AWS::EC2::SecurityGroupIngress"));
    expect(JSON.stringify(ingress)).not.toContain("TrainingInstanceSecurityGroup");
    // The interface endpoints admit HTTPS from the VPC only.
    template.hasResourceProperties("AWS::EC2::SecurityGroup", {
      GroupDescription: Match.stringLikeRegexp("Interface VPC endpoints"),
      SecurityGroupIngress: [
        Match.objectLike({ IpProtocol: "tcp", FromPort: 443, ToPort: 443, CidrIp: Match.anyValue() }),
      ],
    });
  });
});

describe("training construct: AWS Batch", () => {
  const { template } = synthPlatform();
  const environments = () =>
    Object.entries(template.findResources("AWS::Batch::ComputeEnvironment")).map(([id, ce]) => ({
      id,
      resources: ce.Properties.ComputeResources,
    }));

  it("runs GPU compute environments from 0 vCPUs on the ECS AL2023 NVIDIA image, Spot and On-Demand", () => {
    const all = environments();
    expect(all.map((e) => e.id.replace(/[0-9A-F]{8}$/, ""))).toEqual([
      "TrainingLoraSpot",
      "TrainingLoraOnDemand",
      "TrainingFullOnDemand",
      "TrainingMultiNodeOnDemand",
    ]);
    for (const { resources } of all) {
      expect(resources.MinvCpus).toBe(0);
      expect(resources.Ec2Configuration).toEqual([{ ImageType: "ECS_AL2023_NVIDIA" }]);
    }
    // Single-node jobs may run in either Availability Zone.
    for (const { resources } of all.slice(0, 3)) expect(resources.Subnets).toHaveLength(2);
    const [loraSpot, loraOnDemand, full] = all.map((e) => e.resources);
    expect(loraSpot).toMatchObject({ Type: "SPOT", AllocationStrategy: "SPOT_PRICE_CAPACITY_OPTIMIZED" });
    expect(loraSpot.InstanceTypes).toEqual(expect.arrayContaining(["g5.2xlarge", "g6e.2xlarge"]));
    expect(loraOnDemand).toMatchObject({ Type: "EC2", InstanceTypes: loraSpot.InstanceTypes });
    expect(full).toMatchObject({ Type: "EC2", InstanceTypes: ["p4d.24xlarge", "p5.48xlarge"] });
  });

  it("gives the instances an encrypted root volume large enough for images and weights, IMDSv2 only", () => {
    template.hasResourceProperties("AWS::EC2::LaunchTemplate", {
      LaunchTemplateData: Match.objectLike({
        MetadataOptions: Match.objectLike({ HttpTokens: "required" }),
        BlockDeviceMappings: [
          { DeviceName: "/dev/xvda", Ebs: Match.objectLike({ Encrypted: true, VolumeSize: 500 }) },
        ],
      }),
    });
  });

  it("queues LoRA jobs on Spot first with On-Demand fallback, full jobs on On-Demand", () => {
    const queues = template.findResources("AWS::Batch::JobQueue");
    const byId = (prefix: string) => Object.entries(queues).find(([id]) => id.startsWith(prefix))![1];
    const order = (prefix: string) =>
      (byId(prefix).Properties.ComputeEnvironmentOrder as { Order: number; ComputeEnvironment: unknown }[])
        .sort((a, b) => a.Order - b.Order)
        .map((o) => JSON.stringify(o.ComputeEnvironment).match(/Training(\w+?)[0-9A-F]{8}/)![1]);
    expect(order("TrainingLoraJobQueue")).toEqual(["LoraSpot", "LoraOnDemand"]);
    expect(order("TrainingFullJobQueue")).toEqual(["FullOnDemand"]);
  });

  it("defines lora (1 GPU) and full (8 GPUs) jobs with a timeout, shared memory and retry on host loss only", () => {
    const definitions = Object.entries(
      template.findResources("AWS::Batch::JobDefinition", { Properties: { Type: "container" } }),
    );
    expect(definitions).toHaveLength(2);
    for (const [id, definition] of definitions) {
      const gpus = id.startsWith("TrainingLora") ? "1" : "8";
      const props = definition.Properties;
      expect(props.PlatformCapabilities).toEqual(["EC2"]);
      expect(props.ContainerProperties.ResourceRequirements).toEqual(
        expect.arrayContaining([{ Type: "GPU", Value: gpus }]),
      );
      expect(props.Timeout).toEqual({ AttemptDurationSeconds: 24 * 3600 });
      expect(props.RetryStrategy).toEqual({
        Attempts: 3,
        EvaluateOnExit: [
          { Action: "RETRY", OnStatusReason: "Host EC2*" },
          { Action: "EXIT", OnReason: "*" },
        ],
      });
      expect(props.ContainerProperties.LinuxParameters.SharedMemorySize).toBeGreaterThanOrEqual(1024);
      expect(props.ContainerProperties.LogConfiguration.LogDriver).toBe("awslogs");
      expect(props.ContainerProperties.Environment).toEqual(
        expect.arrayContaining([{ Name: "FT_WORK_DIR", Value: "/scratch" }]),
      );
      expect(props.ContainerProperties.JobRoleArn).toEqual({
        "Fn::GetAtt": [expect.stringMatching(/^TrainingTrainerJobRole/), "Arn"],
      });
    }
  });

  it("limits a training job's tenant-scoped session to its tenant's data, the catalog's weights and its own job", () => {
    const all = statementsOf(template, "TrainingTenantScopedTrainerRole");
    // A session without both tags may do nothing at all.
    expect(all.filter((s) => s.Effect === "Deny")).toEqual(
      ["tenantId", "jobId"].map((tag) => ({
        Effect: "Deny",
        Action: "*",
        Resource: "*",
        Condition: { Null: { [`aws:PrincipalTag/${tag}`]: "true" } },
      })),
    );
    const statements = all.filter((s) => s.Effect === "Allow");
    expect([...new Set(actions(statements))]).toEqual([
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
      "s3:GetObject",
      "s3:ListBucket",
      "s3:PutObject",
    ]);
    /** `Bucket key` for each object resource of the statements granting `action`. */
    const objects = (action: string) =>
      statements
        .filter((s) => actions([s]).includes(action))
        .flatMap((s) => (Array.isArray(s.Resource) ? s.Resource : [s.Resource]))
        .map((r) => {
          const [arn, key] = (r as { "Fn::Join": [string, [{ "Fn::GetAtt": [string] }, string]] })[
            "Fn::Join"
          ][1];
          return `${arn["Fn::GetAtt"][0].replace(/[0-9A-F]{8}$/, "")} ${key}`;
        })
        .sort();
    const tenant = principalTag("tenantId");
    const job = principalTag("jobId");
    expect(objects("s3:GetObject")).toEqual(
      [
        `StorageDatasets /tenants/${tenant}/files/*.jsonl`,
        `StorageArtifacts /tenants/${tenant}/jobs/*/*`,
        ...DEFAULT_CATALOG.map((m) => `StorageArtifacts /${m.weightsPrefix}*`),
      ].sort(),
    );
    expect(objects("s3:PutObject")).toEqual([`StorageArtifacts /tenants/${tenant}/jobs/${job}/*`]);
    const list = statements.find((s) => actions([s]).includes("s3:ListBucket"))!;
    expect(list.Condition).toEqual({
      StringLike: {
        "s3:prefix": [...DEFAULT_CATALOG.map((m) => `${m.weightsPrefix}*`), `tenants/${tenant}/jobs/*/*`],
      },
    });
    const text = (s: Statement) => JSON.stringify(s.Resource);
    const put = statements.find((s) => s.Action === "dynamodb:PutItem")!;
    expect(text(put)).toContain("StorageJobEventsTable");
    expect(put.Condition).toEqual({
      "ForAllValues:StringEquals": { "dynamodb:LeadingKeys": [`${tenant}#${job}`] },
    });
    const update = statements.find((s) => s.Action === "dynamodb:UpdateItem")!;
    expect(text(update)).toContain("StorageJobsTable");
    expect(update.Condition).toEqual({ "ForAllValues:StringEquals": { "dynamodb:LeadingKeys": [tenant] } });
  });

  it("leaves the trainer's job role only the assumption of its tenant-scoped role", () => {
    const statements = statementsOf(template, "TrainingTrainerJobRole");
    expect(actions(statements)).toEqual(["sts:AssumeRole", "sts:TagSession"]);
    expect(JSON.stringify(statements)).not.toContain("tenants/");
  });
});

describe("training construct: multi-node parallel jobs", () => {
  const { template } = synthPlatform();
  const byPrefix = (type: string, prefix: string) =>
    Object.entries(template.findResources(type)).filter(([id]) => id.startsWith(prefix));
  const one = (type: string, prefix: string) => {
    const found = byPrefix(type, prefix);
    expect(found).toHaveLength(1);
    return found[0]![1].Properties;
  };
  const multiNodeDefinitions = () =>
    Object.fromEntries(
      Object.values(
        template.findResources("AWS::Batch::JobDefinition", { Properties: { Type: "multinode" } }),
      ).map((d) => {
        const range = d.Properties.NodeProperties.NodeRangeProperties;
        return [range[0].Container.InstanceType as string, d.Properties];
      }),
    );

  it("defines one multinode job per EFA instance type: main node 0, one open-ended node range 0:", () => {
    const definitions = multiNodeDefinitions();
    expect(Object.keys(definitions).sort()).toEqual(["p4d.24xlarge", "p4de.24xlarge", "p5.48xlarge"]);
    for (const [type, props] of Object.entries(definitions)) {
      expect(props.Type).toBe("multinode");
      expect(props.PlatformCapabilities).toEqual(["EC2"]);
      expect(props.NodeProperties.MainNode).toBe(0);
      expect(props.NodeProperties.NodeRangeProperties).toHaveLength(1);
      const [range] = props.NodeProperties.NodeRangeProperties;
      // Open-ended: SubmitJob's nodeOverrides.numNodes is accepted only then.
      expect(range.TargetNodes).toBe("0:");
      expect(range.Container.InstanceType).toBe(type);
      expect(range.Container.ResourceRequirements).toEqual(
        expect.arrayContaining([{ Type: "GPU", Value: "8" }]),
      );
      expect(range.Container.JobRoleArn).toEqual({
        "Fn::GetAtt": [expect.stringMatching(/^TrainingTrainerJobRole/), "Arn"],
      });
      // Every node runs the trainer image's own entrypoint, like the single-node jobs.
      expect(range.Container.Command).toBeUndefined();
      expect(props.Timeout).toEqual({ AttemptDurationSeconds: 24 * 3600 });
      expect(props.RetryStrategy).toEqual({
        Attempts: 3,
        EvaluateOnExit: [
          { Action: "RETRY", OnStatusReason: "Host EC2*" },
          { Action: "EXIT", OnReason: "*" },
        ],
      });
      expect(props.PropagateTags).toBe(true);
    }
  });

  it("maps every EFA device of its instance type into the container, with unlimited locked memory", () => {
    const definitions = multiNodeDefinitions();
    const devices = (type: string) =>
      definitions[type].NodeProperties.NodeRangeProperties[0].Container.LinuxParameters.Devices as {
        HostPath: string;
        ContainerPath: string;
      }[];
    const uverbs = (n: number) =>
      Array.from({ length: n }, (_, i) => ({
        HostPath: `/dev/infiniband/uverbs${i}`,
        ContainerPath: `/dev/infiniband/uverbs${i}`,
      }));
    expect(devices("p4d.24xlarge")).toEqual(uverbs(4));
    expect(devices("p4de.24xlarge")).toEqual(uverbs(4));
    expect(devices("p5.48xlarge")).toEqual(uverbs(32));
    for (const props of Object.values(definitions)) {
      const container = props.NodeProperties.NodeRangeProperties[0].Container;
      expect(container.Ulimits).toEqual([{ Name: "memlock", SoftLimit: -1, HardLimit: -1 }]);
      expect(container.LinuxParameters.SharedMemorySize).toBeGreaterThanOrEqual(1024);
      expect(container.Environment).toEqual(
        expect.arrayContaining([
          { Name: "FI_PROVIDER", Value: "efa" },
          { Name: "FI_EFA_USE_DEVICE_RDMA", Value: "1" },
          { Name: "NCCL_SOCKET_IFNAME", Value: "^lo,docker,ecs" },
          { Name: "FT_WORK_DIR", Value: "/scratch" },
        ]),
      );
      // The method is the job's, from the dispatcher: one definition serves LoRA and full.
      expect(container.Environment.map((e: { Name: string }) => e.Name)).not.toContain("METHOD");
    }
  });

  it("runs them On-Demand only, in one subnet, in a cluster placement group, with EFA launch templates", () => {
    one("AWS::EC2::PlacementGroup", "TrainingMultiNodePlacementGroup");
    template.hasResourceProperties("AWS::EC2::PlacementGroup", { Strategy: "cluster" });
    const resources = one("AWS::Batch::ComputeEnvironment", "TrainingMultiNodeOnDemand").ComputeResources;
    expect(resources.Type).toBe("EC2");
    expect(JSON.stringify(resources)).not.toContain("SPOT");
    expect(resources.InstanceTypes).toEqual(["p4d.24xlarge", "p4de.24xlarge", "p5.48xlarge"]);
    expect(resources.PlacementGroup).toEqual({
      "Fn::GetAtt": [expect.stringMatching(/^TrainingMultiNodePlacementGroup/), "GroupName"],
    });
    expect(resources.Subnets).toHaveLength(1);
    expect(resources.SecurityGroupIds).toEqual([
      { "Fn::GetAtt": [expect.stringMatching(/^TrainingMultiNodeSecurityGroup/), "GroupId"] },
    ]);
    // 16 nodes of the largest type (p5.48xlarge, 192 vCPUs): the planner's largest job fits.
    expect(resources.MaxvCpus).toBe(16 * 192);
    // p4d/p4de launch with 4 EFA interfaces (the default template), p5 with 32 (an override).
    expect(resources.LaunchTemplate.LaunchTemplateId).toEqual({
      Ref: expect.stringMatching(/^TrainingMultiNodeLaunchTemplateEfa4[0-9A-F]{8}$/),
    });
    expect(resources.LaunchTemplate.Overrides).toEqual([
      {
        LaunchTemplateId: { Ref: expect.stringMatching(/^TrainingMultiNodeLaunchTemplateEfa32[0-9A-F]{8}$/) },
        TargetInstanceTypes: ["p5.48xlarge"],
      },
    ]);
    for (const [prefix, cards] of [
      ["TrainingMultiNodeLaunchTemplateEfa4", 4],
      ["TrainingMultiNodeLaunchTemplateEfa32", 32],
    ] as const) {
      const data = one("AWS::EC2::LaunchTemplate", prefix).LaunchTemplateData;
      expect(data.MetadataOptions.HttpTokens).toBe("required");
      expect(data.BlockDeviceMappings[0].Ebs).toMatchObject({ Encrypted: true, VolumeSize: 500 });
      expect(data.SecurityGroupIds).toBeUndefined();
      expect(data.NetworkInterfaces).toHaveLength(cards);
      data.NetworkInterfaces.forEach((nic: Record<string, unknown>, card: number) => {
        expect(nic).toMatchObject({ NetworkCardIndex: card, DeviceIndex: 0, InterfaceType: "efa" });
        expect(nic.Groups).toEqual([
          { "Fn::GetAtt": [expect.stringMatching(/^TrainingMultiNodeSecurityGroup/), "GroupId"] },
        ]);
        expect(nic.SubnetId).toBeUndefined();
      });
    }
  });

  it("lets the nodes send each other all traffic, and nothing else in; out only HTTPS besides", () => {
    const [[groupId, group]] = byPrefix("AWS::EC2::SecurityGroup", "TrainingMultiNodeSecurityGroup") as [
      [string, { Properties: Record<string, unknown> }],
    ];
    expect(group.Properties.SecurityGroupIngress).toBeUndefined();
    expect(group.Properties.SecurityGroupEgress).toEqual([
      expect.objectContaining({ IpProtocol: "tcp", FromPort: 443, ToPort: 443, CidrIp: "0.0.0.0/0" }),
    ]);
    const self = { "Fn::GetAtt": [groupId, "GroupId"] };
    template.hasResourceProperties("AWS::EC2::SecurityGroupIngress", {
      GroupId: self,
      SourceSecurityGroupId: self,
      IpProtocol: "-1",
    });
    template.hasResourceProperties("AWS::EC2::SecurityGroupEgress", {
      GroupId: self,
      DestinationSecurityGroupId: self,
      IpProtocol: "-1",
    });
    // No other rule admits anything to the group.
    const ingress = Object.values(template.findResources("AWS::EC2::SecurityGroupIngress")).filter((rule) =>
      JSON.stringify(rule.Properties.GroupId).includes(groupId),
    );
    expect(ingress).toHaveLength(1);
  });

  it("queues multi-node jobs on their own queue, cancelling one no instance can ever run", () => {
    const queue = one("AWS::Batch::JobQueue", "TrainingMultiNodeJobQueue");
    expect(queue.ComputeEnvironmentOrder).toEqual([
      {
        ComputeEnvironment: {
          "Fn::GetAtt": [expect.stringMatching(/^TrainingMultiNodeOnDemand/), "ComputeEnvironmentArn"],
        },
        Order: 1,
      },
    ]);
    expect(queue.JobStateTimeLimitActions.map((a: { Reason: string }) => a.Reason).sort()).toEqual([
      "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE",
      "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT",
    ]);
    for (const action of queue.JobStateTimeLimitActions) expect(action.Action).toBe("CANCEL");
  });

  it("hands the dispatcher the multi-node queue and one job definition per instance type", () => {
    const dispatcher = Object.entries(template.findResources("AWS::Lambda::Function")).find(([id]) =>
      id.startsWith("TrainingDispatcher"),
    )![1];
    const env = dispatcher.Properties.Environment.Variables;
    expect(env.BATCH_MULTINODE_JOB_QUEUE).toEqual({
      "Fn::GetAtt": [expect.stringMatching(/^TrainingMultiNodeJobQueue/), "JobQueueArn"],
    });
    const definitions = JSON.stringify(env.BATCH_MULTINODE_JOB_DEFINITIONS);
    expect(definitions).toMatch(/p4d\.24xlarge.*TrainingMultiNodeP4d24xlargeJobDefinition/);
    expect(definitions).toMatch(/p4de\.24xlarge.*TrainingMultiNodeP4de24xlargeJobDefinition/);
    expect(definitions).toMatch(/p5\.48xlarge.*TrainingMultiNodeP548xlargeJobDefinition/);
  });

  it("lets the dispatcher submit to the multi-node queue and its definitions, nothing wider", () => {
    const statements = statementsOf(template, "TrainingDispatcherRole");
    const submit = statements.filter((s) => actions([s]).includes("batch:SubmitJob"));
    for (const statement of submit) expect(statement.Action).toBe("batch:SubmitJob");
    const resources = JSON.stringify(submit.map((s) => s.Resource));
    expect(resources).toContain("TrainingMultiNodeJobQueue");
    for (const type of ["P4d24xlarge", "P4de24xlarge", "P548xlarge"]) {
      expect(resources).toContain(`TrainingMultiNode${type}JobDefinition`);
    }
    expect(resources).not.toContain("*");
  });
});

describe("training construct: dispatcher and job status", () => {
  const { template } = synthPlatform();

  it("feeds the dispatcher from the training queue with partial batch responses and bounded concurrency", () => {
    template.hasResourceProperties("AWS::Lambda::EventSourceMapping", {
      EventSourceArn: { "Fn::GetAtt": [Match.stringLikeRegexp("^TrainingQueue"), "Arn"] },
      FunctionName: { Ref: Match.stringLikeRegexp("^TrainingDispatcher") },
      FunctionResponseTypes: ["ReportBatchItemFailures"],
      BatchSize: 5,
      ScalingConfig: { MaximumConcurrency: 5 },
    });
  });

  it("hands the dispatcher both job queues and job definitions, outside the VPC", () => {
    const dispatcher = Object.entries(template.findResources("AWS::Lambda::Function")).find(([id]) =>
      id.startsWith("TrainingDispatcher"),
    )![1];
    const env = dispatcher.Properties.Environment.Variables;
    expect(JSON.stringify(env.BATCH_JOB_QUEUES)).toMatch(
      /lora.*TrainingLoraJobQueue.*full.*TrainingFullJobQueue/,
    );
    expect(JSON.stringify(env.BATCH_JOB_DEFINITIONS)).toMatch(
      /lora.*TrainingLoraJobDefinition.*full.*TrainingFullJobDefinition/,
    );
    for (const name of [
      "JOBS_TABLE",
      "EVENTS_TABLE",
      "MODELS_TABLE",
      "DATASETS_BUCKET",
      "ARTIFACTS_BUCKET",
    ]) {
      expect(env[name]).toBeDefined();
    }
    expect(dispatcher.Properties.VpcConfig).toBeUndefined();
  });

  it("lets the dispatcher submit only to the platform's queues and definitions", () => {
    const statements = statementsOf(template, "TrainingDispatcherRole");
    const submit = statements.filter((s) => actions([s]).includes("batch:SubmitJob"));
    const resources = JSON.stringify(submit.map((s) => s.Resource));
    for (const name of ["LoraJobQueue", "FullJobQueue", "LoraJobDefinition", "FullJobDefinition"]) {
      expect(resources).toContain(`Training${name}`);
    }
    expect(resources).not.toContain('"*"');
    const tagTerminate = statements.find((s) => actions([s]).includes("batch:TerminateJob"))!;
    expect(JSON.stringify(tagTerminate.Resource)).toContain(":job/*");
    expect(actions(statements)).not.toContain("dynamodb:DeleteItem");
  });

  it("sends this platform's Batch job state changes to job-status, with retries and a DLQ", () => {
    template.hasResourceProperties("AWS::Events::Rule", {
      EventPattern: {
        source: ["aws.batch"],
        "detail-type": ["Batch Job State Change"],
        detail: {
          jobQueue: [
            { "Fn::GetAtt": [Match.stringLikeRegexp("^TrainingLoraJobQueue"), "JobQueueArn"] },
            { "Fn::GetAtt": [Match.stringLikeRegexp("^TrainingFullJobQueue"), "JobQueueArn"] },
            { "Fn::GetAtt": [Match.stringLikeRegexp("^TrainingMultiNodeJobQueue"), "JobQueueArn"] },
          ],
        },
      },
      Targets: [
        Match.objectLike({
          Arn: { "Fn::GetAtt": [Match.stringLikeRegexp("^TrainingJobStatus"), "Arn"] },
          DeadLetterConfig: {
            Arn: { "Fn::GetAtt": [Match.stringLikeRegexp("^TrainingJobStatusDlq"), "Arn"] },
          },
          RetryPolicy: { MaximumRetryAttempts: 8, MaximumEventAgeInSeconds: 6 * 3600 },
        }),
      ],
    });
    template.hasResourceProperties("AWS::CloudWatch::Alarm", {
      Dimensions: [
        {
          Name: "QueueName",
          Value: { "Fn::GetAtt": [Match.stringLikeRegexp("^TrainingJobStatusDlq"), "QueueName"] },
        },
      ],
      AlarmActions: [Match.anyValue()],
    });
  });

  it("lets job-status update jobs and models, read result.json and results.csv, and write results files, nothing broader", () => {
    const statements = statementsOf(template, "TrainingJobStatusRole");
    expect(actions(statements)).toEqual(
      expect.arrayContaining(["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem", "s3:GetObject"]),
    );
    expect(actions(statements)).not.toEqual(expect.arrayContaining(["dynamodb:DeleteItem"]));
    expect(actions(statements)).not.toEqual(expect.arrayContaining(["s3:DeleteObject"]));
    /** `Bucket key` for each object resource of the statements granting `action`. */
    const objects = (action: string) =>
      statements
        .filter((s) => actions([s]).includes(action))
        .flatMap((s) => (Array.isArray(s.Resource) ? s.Resource : [s.Resource]))
        .map((r) => {
          const [arn, key] = (r as { "Fn::Join": [string, [{ "Fn::GetAtt": [string] }, string]] })[
            "Fn::Join"
          ][1];
          return `${arn["Fn::GetAtt"][0].replace(/[0-9A-F]{8}$/, "")} ${key}`;
        })
        .sort();
    expect(objects("s3:GetObject")).toEqual([
      "StorageArtifacts /tenants/*/jobs/*/result.json",
      "StorageArtifacts /tenants/*/jobs/*/results.csv",
    ]);
    // Results files only: a dataset (.jsonl) it can neither write nor overwrite.
    expect(objects("s3:PutObject")).toEqual(["StorageDatasets /tenants/*/files/*.csv"]);
    const tables = (action: string) =>
      statements.filter((s) => actions([s]).includes(action)).map((s) => JSON.stringify(s.Resource));
    expect(tables("dynamodb:PutItem")).toHaveLength(2);
    expect(tables("dynamodb:PutItem").join()).toMatch(/StorageFilesTable/);
    expect(tables("dynamodb:PutItem").join()).toMatch(/StorageJobEventsTable/);
    expect(tables("dynamodb:UpdateItem").join()).not.toMatch(/StorageFilesTable/);
  });

  it("outputs both job queue ARNs", () => {
    template.hasOutput("LoraJobQueueArn", Match.anyValue());
    template.hasOutput("FullJobQueueArn", Match.anyValue());
  });
});

describe("the planner's instance types", () => {
  it("gives the jobs function the instance types of each method's compute and the multi-node compute", () => {
    const { template } = synthPlatform({
      training: {
        capacity: { lora: { instanceTypes: ["g6.2xlarge", "g5.2xlarge"] } },
        multiNode: { instanceTypes: ["p5.48xlarge"] },
      },
    });
    const fn = Object.entries(template.findResources("AWS::Lambda::Function")).find(([id]) =>
      id.startsWith("ApiJobsApi"),
    )![1];
    expect(JSON.parse(fn.Properties.Environment.Variables.TRAINING_INSTANCE_TYPES)).toEqual({
      lora: ["g6.2xlarge", "g5.2xlarge"],
      full: ["p4d.24xlarge", "p5.48xlarge"],
      multiNode: ["p5.48xlarge"],
    });
  });

  it("fails the synth on an instance type the planner does not know, naming it", () => {
    expect(() => synthPlatform({ training: { capacity: { lora: { instanceTypes: ["g9.mega"] } } } })).toThrow(
      /Unknown GPU instance type\(s\): g9\.mega/,
    );
  });
});

describe("training construct: context", () => {
  it("takes instance types, Spot, timeout, concurrency and the trainer image from its props", () => {
    const { template, violations } = synthPlatform({
      training: {
        trainerImageUri: "123456789012.dkr.ecr.us-east-1.amazonaws.com/ft-trainer:1",
        capacity: { lora: { instanceTypes: ["g6.2xlarge"], spot: false }, full: { spot: true } },
        timeoutHours: 6,
        dispatcherConcurrency: 2,
      },
    });
    const queues = template.findResources("AWS::Batch::JobQueue");
    const loraQueue = Object.entries(queues).find(([id]) => id.startsWith("TrainingLora"))![1];
    const fullQueue = Object.entries(queues).find(([id]) => id.startsWith("TrainingFull"))![1];
    expect(loraQueue.Properties.ComputeEnvironmentOrder).toHaveLength(1);
    expect(fullQueue.Properties.ComputeEnvironmentOrder).toHaveLength(2);
    template.hasResourceProperties("AWS::Batch::ComputeEnvironment", {
      ComputeResources: Match.objectLike({ Type: "EC2", InstanceTypes: ["g6.2xlarge"] }),
    });
    for (const definition of Object.values(template.findResources("AWS::Batch::JobDefinition"))) {
      expect(definition.Properties.Timeout).toEqual({ AttemptDurationSeconds: 6 * 3600 });
      const container =
        definition.Properties.ContainerProperties ??
        definition.Properties.NodeProperties.NodeRangeProperties[0].Container;
      expect(JSON.stringify(container.Image)).toContain("/ft-trainer:1");
    }
    // An ECR image: the execution role may pull from that repository.
    template.hasResourceProperties("AWS::IAM::Policy", {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: Match.arrayWith(["ecr:BatchGetImage"]),
            Resource: Match.stringLikeRegexp(":repository/ft-trainer$"),
          }),
        ]),
      },
      Roles: [{ Ref: Match.stringLikeRegexp("^TrainingTrainerExecutionRole") }],
    });
    template.hasResourceProperties("AWS::Lambda::EventSourceMapping", {
      ScalingConfig: { MaximumConcurrency: 2 },
      FunctionName: { Ref: Match.stringLikeRegexp("^TrainingDispatcher") },
    });
    expect(violations).toEqual([]);
  });

  it("takes the multi-node instance types and node ceiling from its props", () => {
    const template = Template.fromStack(multiNodeStack({ instanceTypes: ["p5.48xlarge"], maxNodes: 4 }));
    const definitions = Object.values(template.findResources("AWS::Batch::JobDefinition"));
    expect(definitions).toHaveLength(1);
    const container = definitions[0]!.Properties.NodeProperties.NodeRangeProperties[0].Container;
    expect(container.InstanceType).toBe("p5.48xlarge");
    expect(container.LinuxParameters.Devices).toHaveLength(32);
    const [environment] = Object.values(template.findResources("AWS::Batch::ComputeEnvironment"));
    expect(environment!.Properties.ComputeResources).toMatchObject({
      Type: "EC2",
      InstanceTypes: ["p5.48xlarge"],
      MaxvCpus: 4 * 192,
    });
    // One EFA layout: the default launch template serves it, no overrides.
    expect(environment!.Properties.ComputeResources.LaunchTemplate.Overrides).toBeUndefined();
  });

  it("takes the specification of an instance type it does not know, and refuses one without", () => {
    const template = Template.fromStack(
      multiNodeStack({
        instanceTypes: ["g6e.48xlarge"],
        maxNodes: 2,
        instanceTypeSpecs: {
          "g6e.48xlarge": { gpus: 8, nodeVcpus: 192, vcpus: 184, memoryGiB: 1400, efaInterfaces: 4 },
        },
      }),
    );
    const [definition] = Object.values(template.findResources("AWS::Batch::JobDefinition"));
    expect(
      definition!.Properties.NodeProperties.NodeRangeProperties[0].Container.LinuxParameters.Devices,
    ).toHaveLength(4);
    expect(() => multiNodeStack({ instanceTypes: ["g5.48xlarge"], maxNodes: 2 })).toThrow(
      /g5\.48xlarge is not known; give its specification in instanceTypeSpecs/,
    );
    expect(() => multiNodeStack({ instanceTypes: ["p5.48xlarge"], maxNodes: 1 })).toThrow(/maxNodes/);
  });
});

/** The multi-node construct alone in a stack of its own, for its props. */
function multiNodeStack(capacity: MultiNodeCapacity): Stack {
  const stack = new Stack(new App(), "MultiNodeOnly");
  const role = (id: string) =>
    new iam.Role(stack, id, { assumedBy: new iam.ServicePrincipal("ecs-tasks.amazonaws.com") });
  new MultiNodeTraining(stack, "MultiNode", {
    network: new Network(stack, "Network"),
    capacity,
    image: ecs.ContainerImage.fromRegistry("123456789012.dkr.ecr.us-east-1.amazonaws.com/ft-trainer:1"),
    jobRole: role("JobRole"),
    executionRole: role("ExecutionRole"),
    logGroup: new logs.LogGroup(stack, "Logs"),
    timeout: Duration.hours(1),
    retryAttempts: 1,
    retryStrategies: [],
    environment: {},
    volumeGiB: 100,
  });
  return stack;
}
