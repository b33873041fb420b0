import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import type { LookupFunction } from "node:net";
import type { SendResult, WebhookSender } from "../core/webhooks/ports.ts";
import type { SignatureHeaders } from "../core/webhooks/signing.ts";
import { checkUrlSyntax, publicAddresses, type UrlPolicy, UrlRefused } from "../core/webhooks/url-policy.ts";

/** How long one attempt may take, connect to last byte; a slower receiver is a failed attempt. */
export const DELIVERY_TIMEOUT_MS = 10_000;

/** The resolver of the sender: every address of a host, as `getaddrinfo` answers (`dns.lookup`). */
export function resolveAll(hostname: string): Promise<string[]> {
  return new Promise((resolve, reject) =>
    dnsLookup(hostname, { all: true }, (error, addresses) =>
      error ? reject(error) : resolve(addresses.map((a) => a.address)),
    ),
  );
}

/**
 * POSTs with node:http(s). The addresses are checked at connect time: the socket's `lookup` resolves
 * the host and refuses it unless every address is allowed, and connects only to those it checked, so
 * an answer that changed since registration (DNS rebinding) cannot reach a private address. Redirects
 * are not followed (a 3xx is a failed attempt).
 */
export class HttpWebhookSender implements WebhookSender {
  constructor(
    private readonly policy: UrlPolicy,
    private readonly resolve: (hostname: string) => Promise<readonly string[]> = resolveAll,
    private readonly timeoutMs: number = DELIVERY_TIMEOUT_MS,
  ) {}

  async send(url: string, headers: SignatureHeaders, body: string): Promise<SendResult> {
    let target: URL;
    try {
      target = checkUrlSyntax(url, this.policy);
    } catch (error) {
      return { error: error instanceof UrlRefused ? error.message : String(error) };
    }
    const lookup = this.checkedLookup();
    const request = target.protocol === "https:" ? httpsRequest : httpRequest;
    return new Promise<SendResult>((resolve) => {
      const req = request(
        target,
        {
          method: "POST",
          headers: {
            ...headers,
            "content-type": "application/json",
            "content-length": Buffer.byteLength(body),
            "user-agent": "fine-tuning-platform-webhooks/1",
          },
          lookup,
          signal: AbortSignal.timeout(this.timeoutMs),
        },
        (response) => {
          // Drained, not read: only the status counts.
          response.resume();
          response.on("end", () => resolve({ statusCode: response.statusCode ?? 0 }));
          response.on("error", () => resolve({ statusCode: response.statusCode ?? 0 }));
        },
      );
      req.on("error", (error) => {
        const refused = (error as { cause?: unknown }).cause;
        resolve({
          error:
            refused instanceof UrlRefused
              ? refused.message
              : error.name === "AbortError"
                ? `timed out after ${this.timeoutMs / 1000} s`
                : error.message,
        });
      });
      req.end(body);
    });
  }

  /** A `lookup` for the socket that resolves with this sender's resolver and checks every address. */
  private checkedLookup(): LookupFunction {
    const { policy, resolve } = this;
    return (hostname, options, callback) => {
      const checked = policy.allowPrivate ? resolve(hostname) : publicAddresses(hostname, resolve);
      checked.then(
        (addresses) => {
          const family = (address: string) => (address.includes(":") ? 6 : 4);
          const wanted = options.family
            ? addresses.filter((a) => family(a) === options.family)
            : [...addresses];
          if (wanted.length === 0) {
            callback(Object.assign(new Error(`no address for ${hostname}`), { code: "ENOTFOUND" }), "", 4);
          } else if (options.all) {
            const all: LookupAddress[] = wanted.map((address) => ({ address, family: family(address) }));
            (callback as unknown as (error: null, addresses: LookupAddress[]) => void)(null, all);
          } else {
            callback(null, wanted[0]!, family(wanted[0]!));
          }
        },
        (error: unknown) => {
          callback(
            Object.assign(new Error((error as Error).message, { cause: error }), { code: "EREFUSED" }),
            "",
            4,
          );
        },
      );
    };
  }
}
