import { isIP } from "node:net";
import { type AddressClass, classifyAddress } from "./addresses.ts";

/**
 * Where webhooks may go. In AWS (`allowPrivate` false): https only, and the host must be, or resolve
 * only to, public addresses (addresses.ts). The local platform allows http and private addresses
 * (`WEBHOOK_ALLOW_PRIVATE=1`), so a receiver on localhost works.
 */
export interface UrlPolicy {
  readonly allowPrivate: boolean;
}

/** Resolves a host name to all of its addresses (`dns.lookup(host, {all: true})` in production). */
export type Resolver = (hostname: string) => Promise<readonly string[]>;

/** Why a URL is refused, written for the API user. */
export class UrlRefused extends Error {
  constructor(
    message: string,
    readonly code: "invalid_url" | "insecure_url" | "private_address" | "unresolvable_host",
  ) {
    super(message);
    this.name = "UrlRefused";
  }
}

/** Longest accepted URL (characters). */
export const MAX_URL_LENGTH = 2048;

/**
 * The checks that need no DNS: a parseable http(s) URL without credentials, https unless private
 * addresses are allowed, and not `localhost`/`*.localhost` or a literal non-public address unless so.
 * Returns the parsed URL.
 */
export function checkUrlSyntax(raw: string, policy: UrlPolicy): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UrlRefused("The url is not a valid absolute URL.", "invalid_url");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new UrlRefused("The url must be an https URL.", "invalid_url");
  }
  if (url.username || url.password) {
    throw new UrlRefused("The url must not carry credentials (user:password@).", "invalid_url");
  }
  if (policy.allowPrivate) return url;
  if (url.protocol !== "https:") throw new UrlRefused("The url must be an https URL.", "insecure_url");
  const host = hostOf(url);
  if (host === "localhost" || host.endsWith(".localhost")) {
    throw new UrlRefused(
      "The url's host is a loopback name; webhooks go to public addresses only.",
      "private_address",
    );
  }
  if (isIP(host)) refuseUnlessPublic(host);
  return url;
}

/**
 * The full check at registration: {@link checkUrlSyntax}, then, under the AWS rules, every address a
 * host name resolves to must be public (one private answer among public ones is refused: the
 * connection could pick it). Returns the parsed URL; throws {@link UrlRefused}.
 */
export async function checkWebhookUrl(raw: string, policy: UrlPolicy, resolve: Resolver): Promise<URL> {
  const url = checkUrlSyntax(raw, policy);
  if (policy.allowPrivate) return url;
  const host = hostOf(url);
  if (isIP(host)) return url;
  await publicAddresses(host, resolve);
  return url;
}

/** The host's addresses, all checked public; throws {@link UrlRefused} otherwise. */
export async function publicAddresses(host: string, resolve: Resolver): Promise<readonly string[]> {
  if (isIP(host)) {
    refuseUnlessPublic(host);
    return [host];
  }
  let addresses: readonly string[];
  try {
    addresses = await resolve(host);
  } catch {
    throw new UrlRefused(
      `The url's host '${host.slice(0, 200)}' could not be resolved.`,
      "unresolvable_host",
    );
  }
  if (addresses.length === 0) {
    throw new UrlRefused(
      `The url's host '${host.slice(0, 200)}' could not be resolved.`,
      "unresolvable_host",
    );
  }
  for (const address of addresses) refuseUnlessPublic(address);
  return addresses;
}

/** The URL's host without IPv6 brackets (the WHATWG parser already normalized `0x7f.1`, `2130706433`...). */
export function hostOf(url: URL): string {
  const host = url.hostname.toLowerCase();
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}

function refuseUnlessPublic(address: string): void {
  const kind: AddressClass = classifyAddress(address);
  if (kind !== "public") {
    throw new UrlRefused(
      `The url's host resolves to a ${kind.replace("_", "-")} address (${address}); webhooks go to public addresses only.`,
      "private_address",
    );
  }
}
