import { Match } from "aws-cdk-lib/assertions";
import { describe, expect, it } from "vitest";
import { CONSOLE_ORIGIN_ENV } from "../../lambdas/core/http/response.ts";
import { synthPlatform } from "./synth.ts";

/** The distribution's domain as the template names it: `https://<GetAtt Distribution.DomainName>`. */
const CONSOLE_ORIGIN = {
  "Fn::Join": [
    "",
    ["https://", { "Fn::GetAtt": [Match.stringLikeRegexp("^ConsoleDistribution"), "DomainName"] }],
  ],
};

/** The one resource of a `findResources` answer. */
function only<T>(resources: Record<string, T>): [string, T] {
  const entries = Object.entries(resources);
  expect(entries).toHaveLength(1);
  return entries[0]!;
}

describe("the console's hosting (S3 + CloudFront)", () => {
  const { template, violations, stack } = synthPlatform();

  it("keeps the site bucket private: public access blocked, SSL only, encrypted, access-logged", () => {
    template.hasResourceProperties("AWS::S3::Bucket", {
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: "AES256" } }],
      },
      LoggingConfiguration: {
        DestinationBucketName: { Ref: Match.stringLikeRegexp("^StorageAccessLogs") },
        LogFilePrefix: "console/",
      },
    });
    const policies = template.findResources("AWS::S3::BucketPolicy", {
      Properties: { Bucket: { Ref: Match.stringLikeRegexp("^ConsoleSite") } },
    });
    const [, policy] = only(policies);
    const statements = policy.Properties.PolicyDocument.Statement as {
      Effect: string;
      Principal?: unknown;
      Action?: unknown;
      Condition?: unknown;
    }[];
    // SSL only, and CloudFront (this distribution) the only reader: no public principal is allowed anything.
    expect(statements).toContainEqual(
      expect.objectContaining({ Effect: "Deny", Condition: { Bool: { "aws:SecureTransport": "false" } } }),
    );
    const allows = statements.filter((s) => s.Effect === "Allow");
    expect(allows.map((s) => s.Principal)).toContainEqual({ Service: "cloudfront.amazonaws.com" });
    for (const allow of allows) expect(JSON.stringify(allow.Principal)).not.toBe('"*"');
    const cloudfront = allows.find((s) => JSON.stringify(s.Principal).includes("cloudfront"))!;
    expect(cloudfront.Action).toBe("s3:GetObject");
    expect(JSON.stringify(cloudfront.Condition)).toMatch(/AWS:SourceArn.*ConsoleDistribution/);
  });

  it("reads the bucket through origin access control, HTTPS only, index.html at the root, logged", () => {
    template.hasResourceProperties("AWS::CloudFront::OriginAccessControl", {
      OriginAccessControlConfig: Match.objectLike({
        OriginAccessControlOriginType: "s3",
        SigningBehavior: "always",
        SigningProtocol: "sigv4",
      }),
    });
    template.hasResourceProperties("AWS::CloudFront::Distribution", {
      DistributionConfig: Match.objectLike({
        DefaultRootObject: "index.html",
        DefaultCacheBehavior: Match.objectLike({
          ViewerProtocolPolicy: "redirect-to-https",
          AllowedMethods: ["GET", "HEAD"],
          ResponseHeadersPolicyId: { Ref: Match.stringLikeRegexp("^ConsoleSecurityHeaders") },
        }),
        Origins: [
          Match.objectLike({
            DomainName: { "Fn::GetAtt": [Match.stringLikeRegexp("^ConsoleSite"), "RegionalDomainName"] },
            OriginAccessControlId: {
              "Fn::GetAtt": [
                Match.stringLikeRegexp("^ConsoleDistributionOrigin1S3OriginAccessControl"),
                "Id",
              ],
            },
          }),
        ],
        Logging: Match.objectLike({ Prefix: "console-cdn/" }),
      }),
    });
    template.hasOutput("ConsoleUrl", {
      Value: {
        "Fn::Join": [
          "",
          ["https://", { "Fn::GetAtt": [Match.stringLikeRegexp("^ConsoleDistribution"), "DomainName"] }, "/"],
        ],
      },
    });
  });

  it("puts security headers on every response: HSTS, a CSP for self + the API + chat, nosniff, DENY, referrer", () => {
    const [, policy] = only(template.findResources("AWS::CloudFront::ResponseHeadersPolicy"));
    const security = policy.Properties.ResponseHeadersPolicyConfig.SecurityHeadersConfig;
    expect(security.StrictTransportSecurity).toMatchObject({
      AccessControlMaxAgeSec: 63_072_000,
      IncludeSubdomains: true,
      Override: true,
    });
    expect(security.ContentTypeOptions).toEqual({ Override: true });
    expect(security.FrameOptions).toEqual({ FrameOption: "DENY", Override: true });
    expect(security.ReferrerPolicy).toEqual({
      ReferrerPolicy: "no-referrer",
      Override: true,
    });
    const csp = stack.resolve(stack.console.contentSecurityPolicy) as unknown;
    const text = JSON.stringify(csp);
    for (const directive of [
      "default-src 'self'",
      "script-src 'self'",
      "object-src 'none'",
      "frame-ancestors 'none'",
    ]) {
      expect(text).toContain(directive);
    }
    // connect-src: the page's own origin, the REST API's origin (by its id), the region's Function URLs.
    expect(text).toMatch(/connect-src 'self' https:\/\/",\{"Ref":"ApiRestApi[0-9A-F]+"\},".execute-api\./);
    expect(text).toContain(".lambda-url.");
    expect(JSON.stringify(security.ContentSecurityPolicy)).toBe(
      JSON.stringify({ ContentSecurityPolicy: csp, Override: true }),
    );
  });

  it("deploys the built console and a config.json naming the API and chat base URLs, then invalidates", () => {
    const [, deployment] = only(template.findResources("Custom::CDKBucketDeployment"));
    expect(deployment.Properties.DestinationBucketName).toEqual({
      Ref: expect.stringMatching(/^ConsoleSite/),
    });
    expect(deployment.Properties.DistributionPaths).toEqual(["/*"]);
    expect(JSON.stringify(deployment.Properties.DistributionId)).toMatch(/ConsoleDistribution/);
    // Two sources: the app's asset and config.json, whose deploy-time values are markers.
    expect(deployment.Properties.SourceObjectKeys).toHaveLength(2);
    const markers = JSON.stringify(deployment.Properties.SourceMarkers);
    // `https://{api id}.execute-api.{region}.{suffix}/{stage}/v4` and `{function URL}v4`.
    expect(markers).toMatch(/"Ref":"ApiRestApi[0-9A-F]+".*"Ref":"ApiRestApiDeploymentStageprod[0-9A-F]+"/);
    expect(markers).toMatch(/"Fn::GetAtt":\["ChatChatFunctionFunctionUrl[0-9A-F]+","FunctionUrl"\]/);
    expect(stack.console.node.tryFindChild("Deploy")).toBeDefined();
  });

  it("is clean under cdk-nag (both packs) with the console in the stack", () => {
    expect(violations).toEqual([]);
  });
});

describe("CORS for the console's origin only", () => {
  const { template } = synthPlatform();
  const methods = Object.values(template.findResources("AWS::ApiGateway::Method"));

  it("answers the preflight on every routed resource without the authorizer", () => {
    const routed = new Set(
      methods
        .filter((m) => m.Properties.HttpMethod !== "OPTIONS")
        .map((m) => JSON.stringify(m.Properties.ResourceId)),
    );
    const preflights = methods.filter((m) => m.Properties.HttpMethod === "OPTIONS");
    expect(new Set(preflights.map((m) => JSON.stringify(m.Properties.ResourceId)))).toEqual(routed);
    for (const preflight of preflights) {
      expect(preflight.Properties.AuthorizationType).toBe("NONE");
      expect(preflight.Properties.AuthorizerId).toBeUndefined();
      expect(preflight.Properties.ApiKeyRequired).not.toBe(true);
      expect(preflight.Properties.Integration.Type).toBe("MOCK");
      const headers = preflight.Properties.Integration.IntegrationResponses[0].ResponseParameters;
      expect(headers["method.response.header.Access-Control-Allow-Origin"]).toEqual({
        "Fn::Join": [
          "",
          ["'https://", { "Fn::GetAtt": [expect.stringMatching(/^ConsoleDistribution/), "DomainName"] }, "'"],
        ],
      });
      expect(headers["method.response.header.Access-Control-Allow-Headers"]).toBe(
        "'Authorization,Content-Type,Idempotency-Key'",
      );
      expect(headers["method.response.header.Vary"]).toBe("'Origin'");
    }
    expect(preflights.length).toBeGreaterThanOrEqual(10);
  });

  it("puts the console's origin on every gateway response, the authorizer's 401/403 and 429s included", () => {
    const responses = Object.values(template.findResources("AWS::ApiGateway::GatewayResponse"));
    const types = responses.map((r) => r.Properties.ResponseType);
    expect(types).toEqual(
      expect.arrayContaining([
        "DEFAULT_4XX",
        "DEFAULT_5XX",
        "UNAUTHORIZED",
        "ACCESS_DENIED",
        "THROTTLED",
        "QUOTA_EXCEEDED",
      ]),
    );
    for (const response of responses) {
      expect(
        response.Properties.ResponseParameters["gatewayresponse.header.Access-Control-Allow-Origin"],
      ).toEqual({
        "Fn::Join": [
          "",
          ["'https://", { "Fn::GetAtt": [expect.stringMatching(/^ConsoleDistribution/), "DomainName"] }, "'"],
        ],
      });
      expect(response.Properties.ResponseParameters["gatewayresponse.header.Vary"]).toBe("'Origin'");
    }
  });

  it("gives every function behind the API the console's origin as CONSOLE_ORIGIN", () => {
    const functions = template.findResources("AWS::Lambda::Function");
    for (const prefix of ["ApiFilesApi", "ApiUsageApi", "ApiJobsApi"]) {
      const [, fn] = Object.entries(functions).find(([id]) => id.startsWith(prefix))!;
      expect(fn.Properties.Environment.Variables[CONSOLE_ORIGIN_ENV]).toEqual({
        "Fn::Join": [
          "",
          ["https://", { "Fn::GetAtt": [expect.stringMatching(/^ConsoleDistribution/), "DomainName"] }],
        ],
      });
    }
  });

  it("lets the chat Function URL answer the console's origin alone: POST with the key and JSON", () => {
    template.hasResourceProperties("AWS::Lambda::Url", {
      Cors: {
        AllowOrigins: [CONSOLE_ORIGIN],
        AllowMethods: ["POST"],
        AllowHeaders: Match.arrayWith(["authorization", "content-type"]),
        MaxAge: 3600,
      },
    });
  });
});

describe("the console on a custom domain", () => {
  const certificateArn =
    "arn:aws:acm:us-east-1:123456789012:certificate/0b1c2d3e-aaaa-bbbb-cccc-0123456789ab";
  const { template, violations, stack } = synthPlatform({
    console: { domainName: "console.example.com", certificateArn },
  });

  it("serves its domain with the certificate and TLS 1.2 (2021) at least, and CORS for that origin", () => {
    template.hasResourceProperties("AWS::CloudFront::Distribution", {
      DistributionConfig: Match.objectLike({
        Aliases: ["console.example.com"],
        ViewerCertificate: {
          AcmCertificateArn: certificateArn,
          MinimumProtocolVersion: "TLSv1.2_2021",
          SslSupportMethod: "sni-only",
        },
      }),
    });
    template.hasResourceProperties("AWS::Lambda::Url", {
      Cors: Match.objectLike({ AllowOrigins: ["https://console.example.com"] }),
    });
    template.hasOutput("ConsoleUrl", { Value: "https://console.example.com/" });
    // A static origin breaks no cycle: the CSP names the exact chat Function URL's host.
    expect(JSON.stringify(stack.resolve(stack.console.contentSecurityPolicy))).toMatch(
      /ChatChatFunctionFunctionUrl[0-9A-F]+","FunctionUrl"/,
    );
    expect(violations).toEqual([]);
  });
});
