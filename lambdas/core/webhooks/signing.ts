import { createHmac, randomBytes } from "node:crypto";

/** The prefix of a signing secret, which the openai SDK (and Standard Webhooks libraries) strip and base64-decode. */
export const SECRET_PREFIX = "whsec_";
/** Random bytes per secret: 24 (192 bits); the issue asks for at least 16. */
export const SECRET_BYTES = 24;

/** A new signing secret: `whsec_` + base64 of {@link SECRET_BYTES} random bytes. */
export function newWebhookSecret(random: (bytes: number) => Buffer = randomBytes): string {
  return `${SECRET_PREFIX}${random(SECRET_BYTES).toString("base64")}`;
}

/** The Standard Webhooks headers of one delivery attempt. */
export interface SignatureHeaders {
  readonly "webhook-id": string;
  readonly "webhook-timestamp": string;
  readonly "webhook-signature": string;
}

/**
 * Signs a delivery the Standard Webhooks way, as the openai SDK's `webhooks.unwrap` verifies it:
 * `v1,` + base64 HMAC-SHA256 over `{id}.{timestamp}.{body}`, keyed by the base64-decoded secret after
 * `whsec_`. The timestamp is the attempt's (receivers refuse one older than 5 minutes), so each retry
 * is signed anew; the id and body stay the same.
 */
export function signWebhook(args: {
  readonly id: string;
  /** Unix seconds of this attempt. */
  readonly timestamp: number;
  readonly body: string;
  readonly secret: string;
}): SignatureHeaders {
  const key = Buffer.from(
    args.secret.startsWith(SECRET_PREFIX) ? args.secret.slice(SECRET_PREFIX.length) : args.secret,
    args.secret.startsWith(SECRET_PREFIX) ? "base64" : "utf8",
  );
  const timestamp = String(Math.floor(args.timestamp));
  const signature = createHmac("sha256", key).update(`${args.id}.${timestamp}.${args.body}`).digest("base64");
  return { "webhook-id": args.id, "webhook-timestamp": timestamp, "webhook-signature": `v1,${signature}` };
}
