import { describe, expect, it } from "vitest";
import { USAGE_PLAN_ENV } from "../../infra/resources/definitions.ts";
import { synthPlatform } from "./synth.ts";

type Template = ReturnType<typeof synthPlatform>["template"];
type Statement = { Action: string | string[]; Resource: unknown };

/** The actions of every statement naming the tenants table, by policy (logical id without its hash). */
function tenantsTableGrants(template: Template): Record<string, unknown[]> {
  const grants: Record<string, unknown[]> = {};
  for (const [id, policy] of Object.entries(template.findResources("AWS::IAM::Policy"))) {
    for (const s of policy.Properties.PolicyDocument.Statement as Statement[]) {
      if (!JSON.stringify(s.Resource).includes("StorageTenantsTable")) continue;
      const policyId = id.replace(/[0-9A-F]{8}$/, "");
      grants[policyId] = [...(grants[policyId] ?? []), s.Action];
    }
  }
  return grants;
}

/** The `error` of a gateway response's JSON template. */
function gatewayError(template: Template, responseType: string) {
  const [response] = Object.values(template.findResources("AWS::ApiGateway::GatewayResponse")).filter(
    (r) => r.Properties.ResponseType === responseType,
  );
  expect(response, responseType).toBeDefined();
  return {
    statusCode: response!.Properties.StatusCode as string | undefined,
    error: JSON.parse(response!.Properties.ResponseTemplates["application/json"]).error,
  };
}

describe("per-tenant usage plans", () => {
  it("attach one plan with the default per-tenant throttle and daily quota to the API's stage", () => {
    const { template } = synthPlatform();
    const plans = Object.values(template.findResources("AWS::ApiGateway::UsagePlan"));
    expect(plans).toHaveLength(1);
    const [stageId] = Object.keys(template.findResources("AWS::ApiGateway::Stage"));
    expect(plans[0]!.Properties).toMatchObject({
      Throttle: { RateLimit: 10, BurstLimit: 20 },
      Quota: { Limit: 10000, Period: "DAY" },
      ApiStages: [{ ApiId: { Ref: expect.stringMatching(/^ApiRestApi/) }, Stage: { Ref: stageId } }],
    });
  });

  it("take the API key from the authorizer and require it on every method but the CORS preflight", () => {
    const { template } = synthPlatform();
    template.hasResourceProperties("AWS::ApiGateway::RestApi", { ApiKeySourceType: "AUTHORIZER" });
    const methods = Object.values(template.findResources("AWS::ApiGateway::Method"));
    const preflights = methods.filter((m) => m.Properties.HttpMethod === "OPTIONS");
    const routed = methods.filter((m) => m.Properties.HttpMethod !== "OPTIONS");
    expect(routed.length).toBeGreaterThan(10);
    for (const method of routed) expect(method.Properties.ApiKeyRequired).toBe(true);
    // A browser sends a preflight without credentials: it reaches only API Gateway's mock integration.
    expect(preflights.length).toBeGreaterThan(10);
    for (const method of preflights) {
      expect(method.Properties.ApiKeyRequired ?? false).toBe(false);
      expect(method.Properties.AuthorizationType).toBe("NONE");
      expect(method.Properties.Integration.Type).toBe("MOCK");
    }
  });

  it("answer a throttled or over-quota tenant with 429 in the OpenAI envelope, naming the limit", () => {
    const { template } = synthPlatform();
    const throttled = gatewayError(template, "THROTTLED");
    expect(throttled.statusCode).toBeUndefined(); // API Gateway's own 429
    expect(throttled.error).toMatchObject({ type: "rate_limit_error", code: "rate_limit_exceeded" });
    expect(throttled.error.message).toContain("10 requests per second (burst 20)");
    const quota = gatewayError(template, "QUOTA_EXCEEDED");
    expect(quota.statusCode).toBeUndefined();
    expect(quota.error).toMatchObject({ type: "rate_limit_error", code: "quota_exceeded" });
    expect(quota.error.message).toContain("10000 requests per day");
    expect(gatewayError(template, "INVALID_API_KEY").error.message).toContain("sync-usage-keys");
  });

  it("let the authorizer only read the tenants table (GetItem) for the tenant's usage key", () => {
    const { template } = synthPlatform();
    expect(tenantsTableGrants(template).ApiAuthorizerRoleDefaultPolicy).toEqual(["dynamodb:GetItem"]);
    const authorizer = Object.entries(template.findResources("AWS::Lambda::Function")).find(([id]) =>
      /^ApiAuthorizer[0-9A-F]{8}$/.test(id),
    )![1];
    expect(authorizer.Properties.Environment.Variables.TENANTS_TABLE).toBeDefined();
  });

  it("output the plan's id for ftctl admin, under the variable name it reads", () => {
    const { template } = synthPlatform();
    const [planId] = Object.keys(template.findResources("AWS::ApiGateway::UsagePlan"));
    template.hasOutput("TenantUsagePlanId", { Description: USAGE_PLAN_ENV, Value: { Ref: planId } });
  });

  it("take the operator's limits (CDK context tenantRequestsPerSecond, tenantBurst, tenantRequestsPerDay)", () => {
    const { template } = synthPlatform({
      tenantLimits: { requestsPerSecond: 3, burst: 6, requestsPerDay: 500 },
    });
    template.hasResourceProperties("AWS::ApiGateway::UsagePlan", {
      Throttle: { RateLimit: 3, BurstLimit: 6 },
      Quota: { Limit: 500, Period: "DAY" },
    });
    expect(gatewayError(template, "QUOTA_EXCEEDED").error.message).toContain("500 requests per day");
  });

  it("leave cdk-nag clean", () => {
    expect(synthPlatform().violations).toEqual([]);
  });
});
