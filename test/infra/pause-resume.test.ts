import { describe, expect, it } from "vitest";
import { synthPlatform } from "./synth.ts";

describe("pause and resume in the API", () => {
  const { template } = synthPlatform();
  const resources = Object.entries(template.findResources("AWS::ApiGateway::Resource"));
  const methods = Object.values(template.findResources("AWS::ApiGateway::Method")).map((m) => m.Properties);
  const idOf = (pathPart: string, parent?: string) =>
    resources.find(
      ([, r]) => r.Properties.PathPart === pathPart && (!parent || r.Properties.ParentId.Ref === parent),
    )?.[0];
  const job = idOf("{job_id}", idOf("jobs"));
  // OPTIONS is the CORS preflight, answered by API Gateway itself.
  const methodsOf = (resourceId: string | undefined) =>
    methods.filter((m) => m.ResourceId.Ref === resourceId && m.HttpMethod !== "OPTIONS");

  it.each(["pause", "resume"])(
    "routes POST /v4/fine_tuning/jobs/{job_id}/%s to the jobs function behind the API key authorizer",
    (action) => {
      const resource = idOf(action, job);
      expect(resource).toBeDefined();
      const all = methodsOf(resource);
      // ANY hands other methods to the function, whose router answers 405.
      expect(all.map((m) => m.HttpMethod).sort()).toEqual(["ANY", "POST"]);
      const cancel = methodsOf(idOf("cancel", job)).find((m) => m.HttpMethod === "POST");
      for (const method of all) {
        expect(method).toMatchObject({
          AuthorizationType: "CUSTOM",
          AuthorizerId: { Ref: expect.stringMatching(/^ApiApiKeyAuthorizer/) },
          Integration: { Type: "AWS_PROXY" },
        });
        // The same function as cancel: the jobs API.
        expect(method.Integration.Uri).toEqual(cancel!.Integration.Uri);
      }
    },
  );

  it("lets the jobs function send a resumed job to the training queue and terminate a paused run", () => {
    const cancel = methodsOf(idOf("cancel", job)).find((m) => m.HttpMethod === "POST")!;
    const functionId = JSON.stringify(cancel.Integration.Uri).match(
      /"Fn::GetAtt":\["([A-Za-z0-9]+)","Arn"\]/,
    )?.[1];
    expect(functionId).toBeDefined();
    const fn = template.findResources("AWS::Lambda::Function")[functionId!]!;
    const roleId = fn.Properties.Role["Fn::GetAtt"][0] as string;
    const statements = Object.values(template.findResources("AWS::IAM::Policy"))
      .filter((p) => (p.Properties.Roles as { Ref: string }[]).some((r) => r.Ref === roleId))
      .flatMap((p) => p.Properties.PolicyDocument.Statement as { Action: unknown; Resource: unknown }[]);
    const send = statements.find((s) => JSON.stringify(s.Action).includes("sqs:SendMessage"));
    expect(JSON.stringify(send?.Resource)).toMatch(/Training/);
    const terminate = statements.find((s) => JSON.stringify(s.Action).includes("batch:TerminateJob"));
    expect(terminate).toBeDefined();
  });
});
