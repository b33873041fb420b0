import { describe, expect, it } from "vitest";
import catalogJson from "../../../contract/catalog.json" with { type: "json" };
import catalogCases from "../../../contract/fixtures/catalog-cases.json" with { type: "json" };
import cases from "../../../contract/fixtures/platform-cases.json" with { type: "json" };
import { catalogFromFile } from "../../../lambdas/core/catalog/base-models.ts";
import { parseCatalogFile } from "../../../lambdas/core/catalog/catalog-file.ts";
import {
  baseModelPrefix,
  CONTRACT,
  checkpointManifestSchema,
  checkpointPrefix,
  checkpointStepOf,
  datasetObjectKey,
  EXIT_CODES,
  eventKey,
  FT_HEADERS,
  failureCode,
  jobArtifactKeys,
  jobKey,
  resultsFileObjectKey,
} from "../../../lambdas/core/contract.ts";
import { TERMINAL_STATUSES } from "../../../lambdas/core/jobs/state-machine.ts";

// The same fixtures run in pytest (contract/python/tests/test_contract.py): what one side computes, the
// other computes alike.

describe("contract/platform.json, TypeScript side", () => {
  it.each(cases.datasetObjectKey)("dataset key of $fileId", ({ tenantId, fileId, key }) => {
    expect(datasetObjectKey(tenantId, fileId)).toBe(key);
  });

  it.each(cases.resultsFileObjectKey)("results file key of $fileId", ({ tenantId, fileId, key }) => {
    expect(resultsFileObjectKey(tenantId, fileId)).toBe(key);
  });

  it.each(cases.jobArtifactKeys)("artifact keys of a $method job", ({ tenantId, jobId, method, ...keys }) => {
    expect(jobArtifactKeys(tenantId, jobId, method as "lora" | "full")).toEqual(keys);
  });

  it("base model and checkpoint prefixes", () => {
    for (const { name, prefix } of cases.baseModelPrefix) expect(baseModelPrefix(name)).toBe(prefix);
    for (const { step, prefix } of cases.checkpointPrefix) expect(checkpointPrefix(step)).toBe(prefix);
    for (const { key, step } of cases.checkpointStep) expect(checkpointStepOf(key) ?? null).toBe(step);
  });

  it("event table keys", () => {
    for (const { tenantId, jobId, key } of cases.jobKey) expect(jobKey(tenantId, jobId)).toBe(key);
    for (const { millis, hex, key } of cases.eventKey) {
      if (key === null) expect(() => eventKey(millis, hex)).toThrow();
      else expect(eventKey(millis, hex)).toBe(key);
    }
  });

  it.each(cases.manifests)("manifest %# is valid: $valid", ({ manifest, valid }) => {
    expect(checkpointManifestSchema.safeParse(manifest).success).toBe(valid);
  });

  it("exit codes, job error codes, terminal statuses and headers", () => {
    for (const { exitCode, code } of cases.failureCodes)
      expect(failureCode(exitCode ?? undefined)).toBe(code);
    expect(EXIT_CODES).toEqual(cases.exitCodes);
    expect(TERMINAL_STATUSES).toEqual(cases.terminalStatuses);
    expect(FT_HEADERS).toEqual(cases.headers);
    expect(CONTRACT.terminalStatuses).toEqual(cases.terminalStatuses);
  });
});

type Json = Record<string, unknown>;

/** The catalog file with a case's changes applied (a deep copy). */
function changed(testCase: { set?: Json; delete?: string[]; append?: Json }): Json {
  const doc = structuredClone(catalogJson) as unknown as Json;
  const walk = (path: string): [Json, string] => {
    const parts = path.split(".");
    const last = parts.pop() as string;
    let node = doc;
    for (const part of parts) node = node[part] as Json;
    return [node, last];
  };
  for (const [path, value] of Object.entries(testCase.set ?? {})) {
    const [node, key] = walk(path);
    node[key] = value;
  }
  for (const path of testCase.delete ?? []) {
    const [node, key] = walk(path);
    delete node[key];
  }
  if (testCase.append) (doc.models as Json[]).push(testCase.append);
  return doc;
}

describe("contract/catalog.json, TypeScript validator", () => {
  it.each(catalogCases.cases)("$name: valid $valid", (testCase) => {
    const accept = () => {
      const file = parseCatalogFile(changed(testCase as Parameters<typeof changed>[0]));
      return catalogFromFile(file.models as { name: string }[]);
    };
    if (testCase.valid) expect(accept).not.toThrow();
    else expect(accept).toThrow(/Invalid contract\/catalog.json/);
  });
});
