import { describe, expect, it } from "vitest";
import { type AddressClass, classifyAddress } from "../../../lambdas/core/webhooks/addresses.ts";

const cases: [string, AddressClass][] = [
  // IPv4
  ["8.8.8.8", "public"],
  ["1.1.1.1", "public"],
  ["52.95.110.1", "public"],
  ["0.0.0.0", "unspecified"],
  ["0.1.2.3", "unspecified"],
  ["10.0.0.1", "private"],
  ["10.255.255.255", "private"],
  ["172.16.0.1", "private"],
  ["172.31.255.255", "private"],
  ["172.32.0.1", "public"],
  ["192.168.1.1", "private"],
  ["127.0.0.1", "loopback"],
  ["127.255.0.9", "loopback"],
  ["169.254.169.254", "link_local"],
  ["100.64.0.1", "shared"],
  ["100.127.255.255", "shared"],
  ["100.128.0.1", "public"],
  ["224.0.0.1", "multicast"],
  ["239.255.255.250", "multicast"],
  ["255.255.255.255", "reserved"],
  ["240.0.0.1", "reserved"],
  ["192.0.2.10", "reserved"],
  ["198.18.0.1", "reserved"],
  // IPv6
  ["::", "unspecified"],
  ["::1", "loopback"],
  ["2606:4700:4700::1111", "public"],
  ["2001:4860:4860::8888", "public"],
  ["fe80::1", "link_local"],
  ["febf::1", "link_local"],
  ["fc00::1", "private"],
  ["fd12:3456::1", "private"],
  ["ff02::1", "multicast"],
  ["2001:db8::1", "reserved"],
  // IPv4 inside IPv6: the IPv4 address decides.
  ["::ffff:127.0.0.1", "loopback"],
  ["::ffff:7f00:1", "loopback"],
  ["::ffff:10.1.2.3", "private"],
  ["::ffff:169.254.169.254", "link_local"],
  ["::ffff:8.8.8.8", "public"],
  ["::127.0.0.1", "loopback"],
  ["64:ff9b::a9fe:a9fe", "link_local"],
  ["64:ff9b::808:808", "public"],
  ["2002:7f00:1::", "loopback"],
  ["2002:c0a8:101::1", "private"],
  // Not addresses.
  ["localhost", "invalid"],
  ["example.com", "invalid"],
  ["1.2.3", "invalid"],
  ["", "invalid"],
];

describe("classifyAddress", () => {
  it.each(cases)("classifies %s as %s", (address, kind) => {
    expect(classifyAddress(address)).toBe(kind);
  });
});
