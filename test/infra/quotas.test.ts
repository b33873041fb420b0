import { describe, expect, it } from "vitest";
import { CONFIG_ENV } from "../../infra/resources/definitions.ts";
import { synthPlatform } from "./synth.ts";

type Template = ReturnType<typeof synthPlatform>["template"];
type Statement = { Action: string | string[]; Resource: unknown };

const functionEnv = (template: Template, pattern: RegExp) =>
  Object.entries(template.findResources("AWS::Lambda::Function")).find(([id]) => pattern.test(id))![1]
    .Properties.Environment.Variables as Record<string, string>;

/** Every statement that names a table (by its logical id's start), by the policy it is in. */
function tableGrants(template: Template, table = "StorageTenantsTable"): Record<string, unknown[]> {
  const grants: Record<string, unknown[]> = {};
  for (const [id, policy] of Object.entries(template.findResources("AWS::IAM::Policy"))) {
    for (const s of policy.Properties.PolicyDocument.Statement as Statement[]) {
      if (!JSON.stringify(s.Resource).includes(table)) continue;
      const policyId = id.replace(/[0-9A-F]{8}$/, "");
      grants[policyId] = [...(grants[policyId] ?? []), s.Action];
    }
  }
  return grants;
}

describe("tenant quotas", () => {
  it("let the files and jobs functions only read the tenants table's overrides (GetItem)", () => {
    const { template } = synthPlatform();
    expect(tableGrants(template)).toEqual({
      // The authorizer reads the tenant's usage plan key there (usage-plans.test.ts).
      ApiAuthorizerRoleDefaultPolicy: ["dynamodb:GetItem"],
      ApiFilesApiRoleDefaultPolicy: ["dynamodb:GetItem"],
      ApiJobsApiRoleDefaultPolicy: ["dynamodb:GetItem"],
    });
    expect(functionEnv(template, /^ApiFilesApi[0-9A-F]{8}$/).TENANTS_TABLE).toBeDefined();
    expect(functionEnv(template, /^ApiJobsApi[0-9A-F]{8}$/).TENANTS_TABLE).toBeDefined();
  });

  it("reach both functions from the stack's props (CDK context tenantMax…), and nothing is set otherwise", () => {
    const { template } = synthPlatform({ quotas: { concurrentJobs: 3, storedBytes: 1024, files: 10 } });
    for (const pattern of [/^ApiFilesApi[0-9A-F]{8}$/, /^ApiJobsApi[0-9A-F]{8}$/]) {
      expect(functionEnv(template, pattern)).toMatchObject({
        [CONFIG_ENV.tenantMaxConcurrentJobs]: "3",
        [CONFIG_ENV.tenantMaxStoredBytes]: "1024",
        [CONFIG_ENV.tenantMaxFiles]: "10",
      });
    }
    const plain = functionEnv(synthPlatform().template, /^ApiJobsApi[0-9A-F]{8}$/);
    expect(plain[CONFIG_ENV.tenantMaxFiles]).toBeUndefined();
  });
});

describe("the chat's shared token rate", () => {
  it("lets only the chat function read and add to the chat-rate table (GetItem, UpdateItem), whose items expire", () => {
    const { template } = synthPlatform({ chatTokensPerMinute: 5000 });
    expect(tableGrants(template, "StorageChatRateTable")).toEqual({
      ChatChatFunctionRoleDefaultPolicy: [["dynamodb:GetItem", "dynamodb:UpdateItem"]],
    });
    template.hasResourceProperties("AWS::DynamoDB::Table", {
      TableName: "ft-chat-rate",
      TimeToLiveSpecification: { AttributeName: "expiresAt", Enabled: true },
    });
    const env = functionEnv(template, /^ChatChatFunction[0-9A-F]{8}$/);
    expect(env[CONFIG_ENV.chatTokensPerMinute]).toBe("5000");
    expect(env.CHAT_RATE_TABLE).toBeDefined();
  });
});
