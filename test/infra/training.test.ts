import { Match } from "aws-cdk-lib/assertions";
import { describe, expect, it } from "vitest";
import { synthPlatform } from "./synth.ts";

type Statement = { Action: string | string[]; Resource: unknown; Condition?: unknown };

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
    for (const name of ["ecr.api", "ecr.dkr", "logs", "ecs", "ecs-agent", "ecs-telemetry"]) {
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
    ]);
    for (const { resources } of all) {
      expect(resources.MinvCpus).toBe(0);
      expect(resources.Ec2Configuration).toEqual([{ ImageType: "ECS_AL2023_NVIDIA" }]);
      expect(resources.Subnets).toHaveLength(2);
    }
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
    const definitions = Object.entries(template.findResources("AWS::Batch::JobDefinition"));
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

  it("limits the trainer's job role to its datasets, weights, artifacts, events and job updates", () => {
    const statements = statementsOf(template, "TrainingTrainerJobRole");
    expect(actions(statements)).toEqual([
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
      "s3:GetObject",
      "s3:GetObject",
      "s3:GetObject",
      "s3:ListBucket",
      "s3:PutObject",
    ]);
    const text = (s: Statement) => JSON.stringify(s.Resource);
    const objectStatements = statements.filter((s) => actions([s]).some((a) => a.endsWith("Object")));
    expect(objectStatements.map(text).map((r) => r.match(/\/(tenants|base-models)\/\*/)?.[0])).toEqual([
      "/tenants/*",
      "/base-models/*",
      "/tenants/*",
    ]);
    expect(text(objectStatements[0]!)).toContain("StorageDatasets");
    expect(text(objectStatements[1]!)).toContain("StorageArtifacts");
    const put = statements.find((s) => actions([s]).includes("s3:PutObject"))!;
    expect(text(put)).toContain("StorageArtifacts");
    expect(text(put)).toContain("/tenants/*");
    const list = statements.find((s) => actions([s]).includes("s3:ListBucket"))!;
    expect(list.Condition).toEqual({ StringLike: { "s3:prefix": ["base-models/*", "tenants/*"] } });
    expect(text(statements.find((s) => s.Action === "dynamodb:PutItem")!)).toContain("StorageJobEventsTable");
    expect(text(statements.find((s) => s.Action === "dynamodb:UpdateItem")!)).toContain("StorageJobsTable");
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
    const submit = statements.find((s) => s.Action === "batch:SubmitJob")!;
    const resources = JSON.stringify(submit.Resource);
    expect(resources).toMatch(/TrainingLoraJobQueue.*TrainingFullJobQueue/);
    expect(resources).toMatch(/TrainingLoraJobDefinition.*TrainingFullJobDefinition/);
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

  it("lets job-status update jobs and models and read results, nothing broader", () => {
    const statements = statementsOf(template, "TrainingJobStatusRole");
    expect(actions(statements)).toEqual(
      expect.arrayContaining(["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem", "s3:GetObject"]),
    );
    expect(actions(statements)).not.toEqual(expect.arrayContaining(["s3:PutObject"]));
    expect(actions(statements)).not.toEqual(expect.arrayContaining(["dynamodb:DeleteItem"]));
  });

  it("outputs both job queue ARNs", () => {
    template.hasOutput("LoraJobQueueArn", Match.anyValue());
    template.hasOutput("FullJobQueueArn", Match.anyValue());
  });
});

describe("training construct: context", () => {
  it("takes instance types, Spot, timeout, concurrency and the trainer image from its props", () => {
    const { template, violations } = synthPlatform({
      training: {
        trainerImageUri: "123456789012.dkr.ecr.us-east-1.amazonaws.com/ft-trainer:1",
        capacity: { lora: { instanceTypes: ["g6.xlarge"], spot: false }, full: { spot: true } },
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
      ComputeResources: Match.objectLike({ Type: "EC2", InstanceTypes: ["g6.xlarge"] }),
    });
    for (const definition of Object.values(template.findResources("AWS::Batch::JobDefinition"))) {
      expect(definition.Properties.Timeout).toEqual({ AttemptDurationSeconds: 6 * 3600 });
      expect(JSON.stringify(definition.Properties.ContainerProperties.Image)).toContain("/ft-trainer:1");
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
});
