import { randomBytes } from "node:crypto";

/**
 * Ids that sort by creation time: `{prefix}-{epoch millis, 11 base32 chars}{10 random base32 chars}`.
 * As DynamoDB sort keys they make a plain Query return items in creation order, which is what
 * `after`-style pagination needs. 50 random bits keep ids made in the same millisecond apart.
 */
const ALPHABET = "0123456789abcdefghijklmnopqrstuv";

export function newId(prefix: string, now: number = Date.now()): string {
  let time = "";
  let rest = now;
  for (let i = 0; i < 11; i++) {
    time = ALPHABET[rest % 32] + time;
    rest = Math.floor(rest / 32);
  }
  const random = randomBytes(10);
  let tail = "";
  for (let i = 0; i < 10; i++) tail += ALPHABET[random[i]! % 32];
  return `${prefix}-${time}${tail}`;
}

/** True when `id` has the shape `newId(prefix)` produces; rejects path tricks before any lookup. */
export function isId(prefix: string, id: string): boolean {
  return new RegExp(`^${prefix}-[0-9a-v]{21}$`).test(id);
}
