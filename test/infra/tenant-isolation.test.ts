import { describe, expect, it } from "vitest";
import { TENANT_READER_ROLE_ENV, TENANT_ROLE_ENV } from "../../infra/constructs/tenant-scope.ts";
import { DEFAULT_CATALOG } from "../../lambdas/core/catalog/base-models.ts";
import { arnOf, identityStatements, isAllowed, type Request, trustStatements } from "./iam-evaluator.ts";
import { synthPlatform } from "./synth.ts";

const ECR_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/ft-inference:1";
const A = "tn_alpha";
const B = "tn_bravo";
const JOB = "ftjob-001";
const OTHER_JOB = "ftjob-002";

describe("tenant isolation enforced by IAM (session tags)", () => {
  const { template, violations } = synthPlatform({
    env: { account: "123456789012", region: "us-east-1" },
    inference: { servers: ["glm-4-9b-chat"], imageUri: ECR_IMAGE },
  });
  const datasets = arnOf(template, "StorageDatasets");
  const artifacts = arnOf(template, "StorageArtifacts");
  const jobsTable = arnOf(template, "StorageJobsTable");
  const eventsTable = arnOf(template, "StorageJobEventsTable");
  const jobRole = arnOf(template, "TrainingTrainerJobRole");
  const trainerRole = arnOf(template, "TrainingTenantScopedTrainerRole");
  const taskRole = arnOf(template, "ChatInferenceTaskRole");
  const readerRole = arnOf(template, "ChatInferenceTenantAdapterReaderRole");
  const trainer = identityStatements(template, "TrainingTenantScopedTrainerRole");
  const reader = identityStatements(template, "ChatInferenceTenantAdapterReaderRole");

  /** A training session of tenant A's job JOB. */
  const asTrainer = (request: Omit<Request, "principalTags">) =>
    isAllowed(trainer, { ...request, principalTags: { tenantId: A, jobId: JOB } });
  const asReader = (request: Omit<Request, "principalTags">) =>
    isAllowed(reader, { ...request, principalTags: { tenantId: A } });
  const object = (bucket: string, key: string) => `${bucket}/${key}`;

  describe("the tenant-scoped trainer role", () => {
    it("reads its tenant's training files and not another tenant's", () => {
      const own = object(datasets, `tenants/${A}/files/file-1.jsonl`);
      expect(asTrainer({ action: "s3:GetObject", resource: own })).toBe(true);
      expect(
        asTrainer({ action: "s3:GetObject", resource: object(datasets, `tenants/${B}/files/file-1.jsonl`) }),
      ).toBe(false);
      // A tenant id that is a prefix of another's is not that other tenant.
      expect(
        asTrainer({ action: "s3:GetObject", resource: object(datasets, `tenants/${A}x/files/f.jsonl`) }),
      ).toBe(false);
      // Results files (.csv) are not training input.
      expect(
        asTrainer({ action: "s3:GetObject", resource: object(datasets, `tenants/${A}/files/file-1.csv`) }),
      ).toBe(false);
    });

    it("reads its tenant's job roots (resume, the model it starts from) and writes only its own job's", () => {
      const ownCheckpoint = object(artifacts, `tenants/${A}/jobs/${JOB}/checkpoints/step-10/checkpoint.json`);
      const parentAdapter = object(
        artifacts,
        `tenants/${A}/jobs/${OTHER_JOB}/adapter/adapter_model.safetensors`,
      );
      expect(asTrainer({ action: "s3:GetObject", resource: ownCheckpoint })).toBe(true);
      expect(asTrainer({ action: "s3:PutObject", resource: ownCheckpoint })).toBe(true);
      expect(asTrainer({ action: "s3:GetObject", resource: parentAdapter })).toBe(true);
      expect(asTrainer({ action: "s3:PutObject", resource: parentAdapter })).toBe(false);
      for (const action of ["s3:GetObject", "s3:PutObject"]) {
        expect(
          asTrainer({ action, resource: object(artifacts, `tenants/${B}/jobs/${JOB}/result.json`) }),
        ).toBe(false);
      }
      expect(asTrainer({ action: "s3:DeleteObject", resource: ownCheckpoint })).toBe(false);
    });

    it("lists its tenant's job roots and the catalog's weights, not another tenant's keys", () => {
      const list = (prefix: string) =>
        asTrainer({ action: "s3:ListBucket", resource: artifacts, context: { "s3:prefix": prefix } });
      expect(list(`tenants/${A}/jobs/${JOB}/checkpoints/`)).toBe(true);
      expect(list(`tenants/${B}/jobs/${JOB}/checkpoints/`)).toBe(false);
      expect(list("tenants/")).toBe(false);
      expect(list(`${DEFAULT_CATALOG[0]!.weightsPrefix}`)).toBe(true);
    });

    it("reads every catalog model's shared weights", () => {
      for (const model of DEFAULT_CATALOG) {
        expect(
          asTrainer({
            action: "s3:GetObject",
            resource: object(artifacts, `${model.weightsPrefix}config.json`),
          }),
        ).toBe(true);
      }
    });

    it("updates only its tenant's job items and appends only its own job's events", () => {
      const update = (tenant: string) =>
        asTrainer({
          action: "dynamodb:UpdateItem",
          resource: jobsTable,
          context: { "dynamodb:LeadingKeys": [tenant] },
        });
      expect(update(A)).toBe(true);
      expect(update(B)).toBe(false);
      const put = (key: string) =>
        asTrainer({
          action: "dynamodb:PutItem",
          resource: eventsTable,
          context: { "dynamodb:LeadingKeys": [key] },
        });
      expect(put(`${A}#${JOB}`)).toBe(true);
      expect(put(`${A}#${OTHER_JOB}`)).toBe(false);
      expect(put(`${B}#${JOB}`)).toBe(false);
      expect(
        asTrainer({
          action: "dynamodb:PutItem",
          resource: jobsTable,
          context: { "dynamodb:LeadingKeys": [A] },
        }),
      ).toBe(false);
    });

    it("denies a session without both tags everything, the shared weights included", () => {
      const weights = object(artifacts, `${DEFAULT_CATALOG[0]!.weightsPrefix}config.json`);
      const as = (principalTags: Record<string, string>, resource: string) =>
        isAllowed(trainer, { action: "s3:GetObject", resource, principalTags });
      expect(as({ tenantId: A, jobId: JOB }, weights)).toBe(true);
      const partial: Record<string, string>[] = [{}, { tenantId: A }, { jobId: JOB }];
      for (const tags of partial) {
        expect(as(tags, weights)).toBe(false);
        expect(as(tags, object(datasets, `tenants/${A}/files/file-1.jsonl`))).toBe(false);
        expect(as(tags, object(artifacts, `tenants/${A}/jobs/${JOB}/result.json`))).toBe(false);
      }
    });

    it("never allows tenant X's session any action on tenant Y's keys", () => {
      const tenants = [A, B, "tn_c", "tn_alpha2"];
      const keys = (t: string) => [
        object(datasets, `tenants/${t}/files/file-9.jsonl`),
        object(datasets, `tenants/${t}/files/file-9.csv`),
        object(artifacts, `tenants/${t}/jobs/${JOB}/adapter/adapter_config.json`),
        object(artifacts, `tenants/${t}/jobs/${JOB}/model/config.json`),
        object(artifacts, `tenants/${t}/jobs/${JOB}/checkpoints/step-1/checkpoint.json`),
      ];
      for (const x of tenants) {
        for (const y of tenants) {
          for (const resource of keys(y)) {
            for (const action of ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]) {
              const allowed = isAllowed(trainer, {
                action,
                resource,
                principalTags: { tenantId: x, jobId: JOB },
              });
              if (x !== y) expect(allowed, `${x} ${action} ${resource}`).toBe(false);
            }
          }
        }
      }
    });

    it("may be assumed only by the trainer's job role, only with the tenantId and jobId session tags", () => {
      const trust = trustStatements(template, "TrainingTenantScopedTrainerRole");
      const tagSession = (
        tags: Record<string, string>,
        principal = jobRole,
        transitive = Object.keys(tags),
      ) =>
        isAllowed(trust, {
          action: "sts:TagSession",
          principal,
          context: {
            ...Object.fromEntries(Object.entries(tags).map(([k, v]) => [`aws:RequestTag/${k}`, v])),
            "aws:TagKeys": Object.keys(tags),
            "sts:TransitiveTagKeys": transitive,
          },
        });
      expect(isAllowed(trust, { action: "sts:AssumeRole", principal: jobRole })).toBe(true);
      expect(isAllowed(trust, { action: "sts:AssumeRole", principal: taskRole })).toBe(false);
      expect(tagSession({ tenantId: A, jobId: JOB })).toBe(true);
      expect(tagSession({ tenantId: A, jobId: JOB }, taskRole)).toBe(false);
      expect(tagSession({ tenantId: A })).toBe(false);
      expect(tagSession({ tenantId: "", jobId: JOB })).toBe(false);
      expect(tagSession({ tenantId: `${A}/files`, jobId: JOB })).toBe(false);
      expect(tagSession({ tenantId: A, jobId: JOB, team: "x" })).toBe(false);
      expect(tagSession({ tenantId: A, jobId: JOB }, jobRole, ["tenantId", "other"])).toBe(false);
    });
  });

  describe("the trainer's job role", () => {
    const statements = identityStatements(template, "TrainingTrainerJobRole");

    it("may only assume the tenant-scoped role and tag its session", () => {
      expect(statements.map((s) => ({ Effect: s.Effect, Action: s.Action, Resource: s.Resource }))).toEqual([
        { Effect: "Allow", Action: ["sts:AssumeRole", "sts:TagSession"], Resource: trainerRole },
      ]);
      expect(JSON.stringify(statements)).not.toContain("tenants/");
    });

    it("reads no tenant's data itself", () => {
      expect(
        isAllowed(statements, {
          action: "s3:GetObject",
          resource: object(datasets, `tenants/${A}/files/f.jsonl`),
        }),
      ).toBe(false);
      expect(isAllowed(statements, { action: "dynamodb:UpdateItem", resource: jobsTable })).toBe(false);
    });

    it("names the tenant-scoped role to every job definition, single-node and multi-node", () => {
      const definitions = Object.values(template.findResources("AWS::Batch::JobDefinition"));
      expect(definitions.length).toBeGreaterThan(2);
      for (const definition of definitions) {
        const containers = definition.Properties.ContainerProperties
          ? [definition.Properties.ContainerProperties]
          : definition.Properties.NodeProperties.NodeRangeProperties.map(
              (r: { Container: unknown }) => r.Container,
            );
        for (const container of containers) {
          expect(container.Environment).toContainEqual({
            Name: TENANT_ROLE_ENV,
            Value: { "Fn::GetAtt": [expect.stringMatching(/^TrainingTenantScopedTrainerRole/), "Arn"] },
          });
        }
      }
    });
  });

  describe("the inference proxy's adapter reader", () => {
    it("reads the tagged tenant's adapters only", () => {
      const adapter = (tenant: string) =>
        object(artifacts, `tenants/${tenant}/jobs/${JOB}/adapter/adapter_config.json`);
      expect(asReader({ action: "s3:GetObject", resource: adapter(A) })).toBe(true);
      expect(asReader({ action: "s3:GetObject", resource: adapter(B) })).toBe(false);
      expect(
        asReader({ action: "s3:GetObject", resource: object(artifacts, `tenants/${A}/jobs/${JOB}/model/x`) }),
      ).toBe(false);
      expect(
        asReader({
          action: "s3:GetObject",
          resource: object(artifacts, `tenants/${A}/jobs/${JOB}/checkpoints/step-1/x`),
        }),
      ).toBe(false);
      const list = (prefix: string) =>
        asReader({ action: "s3:ListBucket", resource: artifacts, context: { "s3:prefix": prefix } });
      expect(list(`tenants/${A}/jobs/${JOB}/adapter/`)).toBe(true);
      expect(list(`tenants/${B}/jobs/${JOB}/adapter/`)).toBe(false);
    });

    it("may be assumed only by the inference task role, only with the tenantId tag", () => {
      const trust = trustStatements(template, "ChatInferenceTenantAdapterReaderRole");
      const tagSession = (tags: Record<string, string>, principal = taskRole) =>
        isAllowed(trust, {
          action: "sts:TagSession",
          principal,
          context: {
            ...Object.fromEntries(Object.entries(tags).map(([k, v]) => [`aws:RequestTag/${k}`, v])),
            "aws:TagKeys": Object.keys(tags),
          },
        });
      expect(tagSession({ tenantId: A })).toBe(true);
      expect(tagSession({ tenantId: A }, jobRole)).toBe(false);
      expect(tagSession({})).toBe(false);
      expect(tagSession({ tenantId: A, jobId: JOB })).toBe(false);
    });

    it("leaves the task role its base weights and the assumption, no tenant's adapters", () => {
      const statements = identityStatements(template, "ChatInferenceTaskRole");
      expect(JSON.stringify(statements)).not.toContain("tenants/");
      expect(statements.filter((s) => JSON.stringify(s.Action).includes("sts:"))).toEqual([
        expect.objectContaining({ Action: ["sts:AssumeRole", "sts:TagSession"], Resource: readerRole }),
      ]);
      const task = Object.entries(template.findResources("AWS::ECS::TaskDefinition")).find(([id]) =>
        id.startsWith("ChatInferenceServer0Task"),
      )![1];
      expect(task.Properties.ContainerDefinitions[0].Environment).toContainEqual({
        Name: TENANT_READER_ROLE_ENV,
        Value: { "Fn::GetAtt": [expect.stringMatching(/^ChatInferenceTenantAdapterReaderRole/), "Arn"] },
      });
    });
  });

  describe("a deployed model's server", () => {
    const deployed = identityStatements(template, "DeploymentsTenantModelReaderRole");
    const model = (tenant: string) =>
      object(artifacts, `tenants/${tenant}/jobs/${JOB}/model/model.safetensors`);

    it("reads the tagged tenant's full models only, and only through the scoped session", () => {
      const tags = { tenantId: A };
      expect(isAllowed(deployed, { action: "s3:GetObject", resource: model(A), principalTags: tags })).toBe(
        true,
      );
      expect(isAllowed(deployed, { action: "s3:GetObject", resource: model(B), principalTags: tags })).toBe(
        false,
      );
      const adapter = object(artifacts, `tenants/${A}/jobs/${JOB}/adapter/adapter_config.json`);
      expect(isAllowed(deployed, { action: "s3:GetObject", resource: adapter, principalTags: tags })).toBe(
        false,
      );
      const serverRole = identityStatements(template, "DeploymentsServerTaskRole");
      expect(JSON.stringify(serverRole)).not.toContain("tenants/");
      expect(isAllowed(serverRole, { action: "s3:GetObject", resource: model(A) })).toBe(false);
    });
  });

  it("reaches STS through an interface endpoint (the VPC has no internet route)", () => {
    const endpoints = Object.values(template.findResources("AWS::EC2::VPCEndpoint"));
    expect(endpoints.some((e) => JSON.stringify(e.Properties.ServiceName).includes('.sts"'))).toBe(true);
  });

  it("keeps cdk-nag clean, each wildcard of the scoped roles acknowledged for its tag", () => {
    expect(violations).toEqual([]);
  });
});
