/**
 * Compares the platform template of another checkout (e.g. `git worktree add /tmp/base HEAD`) with this
 * one's, so a refactor of the CDK code can show that the template stayed equivalent:
 *
 *   npx tsx scripts/template-diff.ts /tmp/base [this checkout, by default]
 *
 * Both stacks are synthesized in this process (no bundling, no Docker) for a few prop sets. Asset hashes
 * and construct-path metadata are ignored. An identity policy (allow statements only) is compared as the
 * set of what it allows, one `action resource [condition]` line each, so that statements split or
 * merged differently read as equal and a tightened grant shows as its lines removed and added. Prints
 * resources removed, added, renamed (same body, new logical id) and changed (each changed path with
 * both values); exits 1 when anything differs.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { App, RemovalPolicy } from "aws-cdk-lib";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Template = { Resources?: Record<string, Json>; Outputs?: Record<string, Json> };

/** Prop sets that both checkouts accept: the default stack, and private inference servers. */
const SCENARIOS: Record<string, Record<string, unknown>> = {
  default: {},
  "private inference": {
    env: { account: "123456789012", region: "us-east-1" },
    inference: {
      servers: ["glm-4-9b-chat", "qwen2.5-7b-instruct"],
      imageUri: "123456789012.dkr.ecr.us-east-1.amazonaws.com/ft-inference:1",
    },
  },
};

async function synthesize(root: string, props: Record<string, unknown>): Promise<Template> {
  const module = (await import(pathToFileURL(resolve(root, "infra/stacks/platform-stack.ts")).href)) as {
    PlatformStack: new (scope: App, id: string, props: Record<string, unknown>) => { stackName: string };
  };
  const outdir = mkdtempSync(join(tmpdir(), "ft-template-diff-"));
  try {
    const app = new App({ outdir, context: { "aws:cdk:bundling-stacks": [] } });
    const stack = new module.PlatformStack(app, "Test", {
      prefix: "ft",
      removalPolicy: RemovalPolicy.RETAIN,
      ...props,
    });
    return app.synth().getStackByName(stack.stackName).template as Template;
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

/** Asset hashes out, metadata out, IAM statements as sorted sets (identity policies: what they allow). */
function normalize(value: Json, key = ""): Json {
  if (typeof value === "string") return value.replace(/[0-9a-f]{64}/g, "<hash>");
  if (Array.isArray(value)) {
    const items = value.map((item) => normalize(item));
    if (key === "Statement" && items.every(isAllowWithoutPrincipal)) return allowed(items);
    const unordered = key === "Statement" || key === "Action" || key === "Resource" || key === "DependsOn";
    return unordered ? items.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))) : items;
  }
  if (value && typeof value === "object") {
    const entries = Object.entries(value)
      .filter(([k]) => k !== "Metadata")
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]): [string, Json] => [k, normalize(v, k)]);
    return Object.fromEntries(entries);
  }
  return value;
}

function isAllowWithoutPrincipal(statement: Json): boolean {
  const s = statement as Record<string, Json>;
  return s.Effect === "Allow" && s.Principal === undefined && s.NotAction === undefined;
}

/** `action resource [condition]` for every pair an allow statement grants, sorted and unique. */
function allowed(statements: Json[]): Json {
  const list = (v: Json | undefined): Json[] => (Array.isArray(v) ? v : v === undefined ? [] : [v]);
  const lines = statements.flatMap((statement) => {
    const s = statement as Record<string, Json>;
    const condition = s.Condition === undefined ? "" : ` ${JSON.stringify(s.Condition)}`;
    return list(s.Action).flatMap((action) =>
      list(s.Resource).map((resource) => `${String(action)} ${JSON.stringify(resource)}${condition}`),
    );
  });
  return [...new Set(lines)].sort();
}

/** Paths where `a` and `b` differ, with both values (compact). */
function changes(a: Json, b: Json, path = ""): string[] {
  if (JSON.stringify(a) === JSON.stringify(b)) return [];
  const isObject = (v: Json) => v !== null && typeof v === "object" && !Array.isArray(v);
  if (isObject(a) && isObject(b)) {
    const left = a as Record<string, Json>;
    const right = b as Record<string, Json>;
    const keys = [...new Set([...Object.keys(left), ...Object.keys(right)])].sort();
    return keys.flatMap((k) => changes(left[k] ?? null, right[k] ?? null, `${path}.${k}`));
  }
  const lines = (v: Json) => (Array.isArray(v) && v.every((x) => typeof x === "string") ? v : undefined);
  const [before, after] = [lines(a), lines(b)];
  if (before && after) {
    const gone = before.filter((line) => !after.includes(line)).map((line) => `    - ${line}`);
    const come = after.filter((line) => !before.includes(line)).map((line) => `    + ${line}`);
    return [`  ${path}`, ...gone, ...come];
  }
  return [`  ${path || "."}\n    - ${JSON.stringify(a)}\n    + ${JSON.stringify(b)}`];
}

function compare(section: string, before: Record<string, Json>, after: Record<string, Json>): string[] {
  const lines: string[] = [];
  const removed = Object.keys(before).filter((id) => !(id in after));
  const added = Object.keys(after).filter((id) => !(id in before));
  const body = (v: Json) => JSON.stringify(v);
  for (const id of [...removed]) {
    const same = added.find((other) => body(after[other]!) === body(before[id]!));
    if (same) {
      lines.push(`${section} renamed: ${id} → ${same}`);
      removed.splice(removed.indexOf(id), 1);
      added.splice(added.indexOf(same), 1);
    }
  }
  for (const id of removed) lines.push(`${section} removed: ${id}`);
  for (const id of added) lines.push(`${section} added: ${id}\n  ${body(after[id]!)}`);
  for (const id of Object.keys(before).filter((id) => id in after)) {
    const diff = changes(before[id]!, after[id]!);
    if (diff.length > 0) lines.push(`${section} changed: ${id}`, ...diff);
  }
  return lines;
}

const [baseRoot, headRoot = "."] = process.argv.slice(2);
if (!baseRoot) {
  console.error("usage: npx tsx scripts/template-diff.ts <base checkout> [<head checkout>]");
  process.exit(2);
}
let differs = false;
for (const [name, props] of Object.entries(SCENARIOS)) {
  const [before, after] = [await synthesize(baseRoot, props), await synthesize(headRoot, props)].map(
    (t) => normalize(t as Json) as Template,
  );
  const lines = [
    ...compare("resource", before!.Resources ?? {}, after!.Resources ?? {}),
    ...compare("output", before!.Outputs ?? {}, after!.Outputs ?? {}),
  ];
  console.log(`== ${name}: ${lines.length === 0 ? "equivalent" : "differs"}`);
  for (const line of lines) console.log(line);
  differs ||= lines.length > 0;
}
process.exit(differs ? 1 : 0);
