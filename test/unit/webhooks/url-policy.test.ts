import { describe, expect, it } from "vitest";
import { checkWebhookUrl, type Resolver, UrlRefused } from "../../../lambdas/core/webhooks/url-policy.ts";

const aws = { allowPrivate: false };
const local = { allowPrivate: true };
const dns: Record<string, string[]> = {
  "hooks.example.com": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
  "internal.example.com": ["10.0.0.7"],
  "mixed.example.com": ["93.184.216.34", "127.0.0.1"],
  "mapped.example.com": ["::ffff:192.168.0.1"],
  "metadata.example.com": ["169.254.169.254"],
};
const resolve: Resolver = async (host) => {
  const addresses = dns[host];
  if (!addresses) throw new Error("ENOTFOUND");
  return addresses;
};
const refusal = async (url: string, policy = aws): Promise<string> => {
  try {
    await checkWebhookUrl(url, policy, resolve);
  } catch (error) {
    if (error instanceof UrlRefused) return error.code;
    throw error;
  }
  return "accepted";
};

describe("webhook URL policy under the AWS rules", () => {
  it("accepts https to a host whose every address is public", async () => {
    expect(await refusal("https://hooks.example.com/webhooks")).toBe("accepted");
    expect(await refusal("https://8.8.8.8:8443/hook")).toBe("accepted");
  });

  it.each([
    ["http://hooks.example.com/", "insecure_url"],
    ["https://localhost/", "private_address"],
    ["https://api.localhost/", "private_address"],
    ["https://127.0.0.1/", "private_address"],
    ["https://2130706433/", "private_address"], // 127.0.0.1 as one number
    ["https://0x7f.1/", "private_address"],
    ["https://[::1]/", "private_address"],
    ["https://[::ffff:127.0.0.1]/", "private_address"],
    ["https://[fd00::1]/", "private_address"],
    ["https://169.254.169.254/latest/meta-data/", "private_address"],
    ["https://100.64.1.1/", "private_address"],
    ["https://0.0.0.0/", "private_address"],
    ["https://internal.example.com/", "private_address"],
    ["https://mixed.example.com/", "private_address"],
    ["https://mapped.example.com/", "private_address"],
    ["https://metadata.example.com/", "private_address"],
    ["https://nowhere.example.com/", "unresolvable_host"],
    ["https://user:pw@hooks.example.com/", "invalid_url"],
    ["ftp://hooks.example.com/", "invalid_url"],
    ["not a url", "invalid_url"],
  ])("refuses %s (%s)", async (url, code) => {
    expect(await refusal(url)).toBe(code);
  });
});

describe("webhook URL policy on the local platform", () => {
  it("allows http to localhost and private addresses", async () => {
    expect(await refusal("http://localhost:8080/hook", local)).toBe("accepted");
    expect(await refusal("http://127.0.0.1:9/hook", local)).toBe("accepted");
    expect(await refusal("http://10.0.0.7/hook", local)).toBe("accepted");
  });

  it("still refuses what is no http URL", async () => {
    expect(await refusal("file:///etc/passwd", local)).toBe("invalid_url");
  });
});
