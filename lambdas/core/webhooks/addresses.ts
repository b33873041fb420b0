import { isIP } from "node:net";

/**
 * Which IP addresses a webhook may be delivered to (no SSRF): only globally routable unicast ones.
 * Pure: the API checks a URL's literal address or resolved addresses with it at registration, and the
 * delivery function checks the addresses it is about to connect to (DNS may answer differently later).
 */
export type AddressClass =
  | "public"
  | "unspecified"
  | "loopback"
  | "private"
  | "link_local"
  | "shared" // CGNAT, 100.64.0.0/10
  | "multicast"
  | "reserved" // documentation, benchmarking, broadcast, IETF protocol assignments, 240/4
  | "invalid";

interface Range {
  readonly base: readonly number[];
  readonly bits: number;
  readonly kind: Exclude<AddressClass, "public" | "invalid">;
}

const V4_RANGES: readonly Range[] = [
  { base: [0, 0, 0, 0], bits: 8, kind: "unspecified" }, // "this network"
  { base: [10, 0, 0, 0], bits: 8, kind: "private" },
  { base: [100, 64, 0, 0], bits: 10, kind: "shared" },
  { base: [127, 0, 0, 0], bits: 8, kind: "loopback" },
  { base: [169, 254, 0, 0], bits: 16, kind: "link_local" }, // also the instance metadata service
  { base: [172, 16, 0, 0], bits: 12, kind: "private" },
  { base: [192, 0, 0, 0], bits: 24, kind: "reserved" },
  { base: [192, 0, 2, 0], bits: 24, kind: "reserved" },
  { base: [192, 88, 99, 0], bits: 24, kind: "reserved" },
  { base: [192, 168, 0, 0], bits: 16, kind: "private" },
  { base: [198, 18, 0, 0], bits: 15, kind: "reserved" },
  { base: [198, 51, 100, 0], bits: 24, kind: "reserved" },
  { base: [203, 0, 113, 0], bits: 24, kind: "reserved" },
  { base: [224, 0, 0, 0], bits: 4, kind: "multicast" },
  { base: [240, 0, 0, 0], bits: 4, kind: "reserved" }, // with 255.255.255.255
];

/** IPv6 ranges, as 16 bytes; the ones that embed an IPv4 address are handled before these. */
const V6_RANGES: readonly Range[] = [
  { base: v6("fc00::"), bits: 7, kind: "private" }, // unique local
  { base: v6("fe80::"), bits: 10, kind: "link_local" },
  { base: v6("fec0::"), bits: 10, kind: "private" }, // site-local (deprecated)
  { base: v6("ff00::"), bits: 8, kind: "multicast" },
  { base: v6("2001:db8::"), bits: 32, kind: "reserved" }, // documentation
  { base: v6("100::"), bits: 64, kind: "reserved" }, // discard
  { base: v6("2001::"), bits: 23, kind: "reserved" }, // IETF protocol assignments (Teredo, ORCHID...)
  { base: v6("3fff::"), bits: 20, kind: "reserved" }, // documentation (RFC 9637)
];

/** The class of an IPv4 or IPv6 address written as text (no brackets, no zone). */
export function classifyAddress(address: string): AddressClass {
  const version = isIP(address);
  if (version === 4) return classifyV4(parseV4(address));
  if (version === 6) return classifyV6(parseV6(address));
  return "invalid";
}

/** Whether a webhook may be delivered to this address. */
export const isPublicAddress = (address: string): boolean => classifyAddress(address) === "public";

function classifyV4(bytes: readonly number[]): AddressClass {
  return V4_RANGES.find((range) => inRange(bytes, range))?.kind ?? "public";
}

function classifyV6(bytes: readonly number[]): AddressClass {
  const zeros = (from: number, to: number) => bytes.slice(from, to).every((b) => b === 0);
  if (zeros(0, 16)) return "unspecified";
  if (zeros(0, 15) && bytes[15] === 1) return "loopback";
  // ::ffff:a.b.c.d (IPv4-mapped), ::a.b.c.d (IPv4-compatible, deprecated), 64:ff9b::a.b.c.d (NAT64) and
  // 64:ff9b:1::/48: the IPv4 address inside decides.
  if (zeros(0, 10) && bytes[10] === 0xff && bytes[11] === 0xff) return classifyV4(bytes.slice(12));
  if (zeros(0, 12)) return classifyV4(bytes.slice(12));
  if (inRange(bytes, { base: v6("64:ff9b::"), bits: 96, kind: "reserved" }))
    return classifyV4(bytes.slice(12));
  if (inRange(bytes, { base: v6("64:ff9b:1::"), bits: 48, kind: "reserved" })) return "reserved";
  // 6to4 (2002::/16) carries an IPv4 address in its next 32 bits.
  if (bytes[0] === 0x20 && bytes[1] === 0x02) return classifyV4(bytes.slice(2, 6));
  return V6_RANGES.find((range) => inRange(bytes, range))?.kind ?? "public";
}

function inRange(bytes: readonly number[], range: Range): boolean {
  for (let bit = 0; bit < range.bits; bit++) {
    const byte = bit >> 3;
    const mask = 0x80 >> (bit & 7);
    if ((bytes[byte]! & mask) !== (range.base[byte]! & mask)) return false;
  }
  return true;
}

function parseV4(address: string): number[] {
  return address.split(".").map(Number);
}

/** 16 bytes of an IPv6 address (`isIP` already accepted it), with `::` and a trailing dotted quad. */
function parseV6(address: string): number[] {
  let text = address.toLowerCase();
  const tail: number[] = [];
  const lastColon = text.lastIndexOf(":");
  if (text.slice(lastColon + 1).includes(".")) {
    tail.push(...parseV4(text.slice(lastColon + 1)));
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const [head, rest] = text.includes("::") ? text.split("::") : [text, undefined];
  const groups = (part: string | undefined) =>
    part ? part.split(":").map((g) => Number.parseInt(g, 16)) : [];
  const left = groups(head);
  const right = groups(rest);
  const all =
    rest === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill(0), ...right];
  const bytes = all.flatMap((group) => [group >> 8, group & 0xff]);
  if (tail.length) bytes.splice(12, 4, ...tail);
  return bytes;
}

function v6(address: string): number[] {
  return parseV6(address);
}
