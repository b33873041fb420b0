import { describe, expect, it } from "vitest";
import { METRICS_NAMESPACE, SERVICES } from "../../infra/resources/definitions.ts";
import { synthPlatform } from "./synth.ts";

describe("every function", () => {
  const { template } = synthPlatform();
  const functions = Object.entries(template.findResources("AWS::Lambda::Function")).filter(([, f]) =>
    f.Properties.Runtime?.startsWith("nodejs24"),
  );

  it("logs, traces and measures as the service its handler names itself (SERVICES)", () => {
    const services = Object.fromEntries(
      functions.map(([id, f]) => [
        id.replace(/[0-9A-F]{8}$/, ""),
        f.Properties.Environment.Variables.POWERTOOLS_SERVICE_NAME,
      ]),
    );
    expect(services).toEqual({
      ApiAuthorizer: SERVICES.authorizer,
      ApiFilesApi: SERVICES.filesApi,
      ApiUsageApi: SERVICES.usageApi,
      ApiJobsApi: SERVICES.jobsApi,
      ValidationValidator: SERVICES.validator,
      TrainingDispatcher: SERVICES.dispatcher,
      TrainingJobStatus: SERVICES.jobStatus,
      ChatChatFunction: SERVICES.chat,
      WebhooksWebhooksApi: SERVICES.webhooksApi,
      WebhooksWebhookFanout: SERVICES.webhookFanout,
      WebhooksWebhookDelivery: SERVICES.webhookDelivery,
    });
    for (const [, f] of functions) {
      expect(f.Properties.Environment.Variables.POWERTOOLS_METRICS_NAMESPACE).toBe(METRICS_NAMESPACE);
    }
  });

  it("writes metrics as EMF lines to its own log group: no cloudwatch:PutMetricData anywhere", () => {
    expect(JSON.stringify(template.findResources("AWS::IAM::Policy"))).not.toContain("cloudwatch:");
    for (const [id] of functions) {
      const policy = Object.entries(template.findResources("AWS::IAM::Policy")).find(([policyId]) =>
        policyId.startsWith(`${id.replace(/[0-9A-F]{8}$/, "")}Role`),
      );
      expect(policy?.[1].Properties.PolicyDocument.Statement, id).toEqual(
        expect.arrayContaining([
          {
            Action: ["logs:CreateLogStream", "logs:PutLogEvents"],
            Effect: "Allow",
            Resource: { "Fn::GetAtt": [expect.stringMatching(/Logs[0-9A-F]{8}$/), "Arn"] },
          },
        ]),
      );
    }
  });
});

describe("logical ids", () => {
  const { template } = synthPlatform();

  it("stay those of the constructs the training compute, pipeline and jobs function were split from", () => {
    // An update would replace any of these under a new id: Batch compute environments and queues (jobs
    // in flight), log groups (their history), the job-status DLQ (undelivered state changes).
    const kept = [
      "TrainingLoraSpot04D83036",
      "TrainingLoraOnDemand64C5AA0B",
      "TrainingFullOnDemand80997FC9",
      "TrainingMultiNodeOnDemand5D4C3D39",
      "TrainingLoraJobQueue3E267FCA",
      "TrainingFullJobQueue52520D4F",
      "TrainingMultiNodeJobQueue37AABECF",
      "TrainingLoraJobDefinitionB45AF621",
      "TrainingFullJobDefinition8BBCF5FF",
      "TrainingTrainerJobRole81A01719",
      "TrainingDispatcherC2ADFD6D",
      "TrainingDispatcherLogs37C33F72",
      "TrainingJobStatus52E85866",
      "TrainingJobStatusLogs36CA0024",
      "TrainingJobStatusDlq3BD398E9",
      "TrainingBatchStateChangeRule9A693939",
      "ApiJobsApi4780413C",
      "ApiJobsApiLogs94AB0620",
      "ApiJobsApiRoleE1D96973",
    ];
    const ids = Object.keys(template.toJSON().Resources as Record<string, unknown>);
    expect(ids).toEqual(expect.arrayContaining(kept));
  });
});
