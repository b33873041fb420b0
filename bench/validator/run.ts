/**
 * Benchmark of the dataset validator core (lambdas/core/datasets) against the ceiling of a bare loop
 * that only splits lines and calls JSON.parse, plus bundle size and import time of each Lambda.
 *
 *   npx tsx bench/validator/run.ts            # 10 MiB, 100 MiB and 1 GiB files
 *   SIZES=10,100 npx tsx bench/validator/run.ts
 *   KEEP=1 ...                                # keep the generated files in os.tmpdir() for the next run
 *
 * Each measurement runs in a fresh child process (pinned to one core with taskset when it exists), so
 * peak RSS (`process.resourceUsage().maxRSS`) belongs to that one run. Files are read with
 * fs.createReadStream in 256 KiB chunks, as a Lambda reading an S3 body would see similar chunk sizes.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { once } from "node:events";
import {
  createReadStream,
  createWriteStream,
  existsSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
} from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const MiB = 1024 * 1024;
const CHUNK = 256 * 1024;
const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");

type Mode = "validator" | "bare" | "bare-ascii";
interface RunResult {
  readonly ms: number;
  readonly bytes: number;
  readonly maxRssKiB: number;
  readonly lines: number;
  readonly summary?: string;
}

async function main(): Promise<void> {
  const sizes = (process.env.SIZES ?? "10,100,1024").split(",").map((s) => Number(s.trim()));
  const pin = hasTaskset() ? ["taskset", "-c", "0"] : [];
  console.log(
    `node ${process.version}; ${pin.length ? "pinned to core 0 with taskset" : "taskset not found: not pinned"}`,
  );
  console.log("MB = 10^6 bytes; RSS is the child's peak resident set.\n");
  const rows: string[][] = [];
  for (const size of sizes) {
    const path = join(tmpdir(), `ft-validator-bench-${size}MiB.jsonl`);
    await ensureFile(path, size * MiB);
    const validator = runChild(pin, "validator", path);
    const bare = runChild(pin, "bare", path);
    const bareAscii = runChild(pin, "bare-ascii", path);
    const mbps = (r: RunResult) => r.bytes / 1e6 / (r.ms / 1000);
    rows.push([
      `${size} MiB`,
      `${(validator.lines / 1000).toFixed(0)}k`,
      mbps(validator).toFixed(0),
      mbps(bare).toFixed(0),
      (mbps(validator) / mbps(bare)).toFixed(2),
      mbps(bareAscii).toFixed(0),
      (mbps(validator) / mbps(bareAscii)).toFixed(2),
      `${(validator.maxRssKiB / 1024).toFixed(0)} MB`,
      `${(bare.maxRssKiB / 1024).toFixed(0)} MB`,
    ]);
    console.log(`${size} MiB: ${validator.summary}`);
    if (process.env.KEEP !== "1") rmSync(path, { force: true });
  }
  console.log();
  printTable(
    [
      "size",
      "lines",
      "validator MB/s",
      "bare MB/s",
      "ratio",
      "bare+ascii MB/s",
      "ratio",
      "validator RSS",
      "bare RSS",
    ],
    rows,
  );
  console.log(
    "\nbare: split on \\n + Buffer#toString('utf8') + JSON.parse. bare+ascii: the same with the validator's\n" +
      "decoding (isAscii -> latin1, else utf8), the strictest ceiling. The validator also checks UTF-8, rules,\n" +
      "tokens, statistics and duplicates.\n",
  );
  await bundles();
}

function hasTaskset(): boolean {
  return spawnSync("taskset", ["-c", "0", "true"]).status === 0;
}

function runChild(pin: string[], mode: Mode, path: string): RunResult {
  const args = [process.execPath, "--import", "tsx", fileURLToPath(import.meta.url), "--child", mode, path];
  const [command, ...rest] = [...pin, ...args];
  const out = execFileSync(command!, rest, { cwd: root, encoding: "utf8", maxBuffer: 1 << 20 });
  return JSON.parse(out.trim().split("\n").pop()!) as RunResult;
}

async function child(mode: Mode, path: string): Promise<RunResult> {
  // Imported before the clock starts: loading (and tsx-transpiling) the module is not validation.
  const { validateDataset } = await import("../../lambdas/core/datasets/validate.ts");
  const { isAscii } = await import("node:buffer");
  const stream = createReadStream(path, { highWaterMark: CHUNK });
  const start = performance.now();
  let lines = 0;
  let summary: string | undefined;
  if (mode === "validator") {
    const report = await validateDataset(stream, { contextLimits: { "ctx-4k": 4096, "ctx-32k": 32768 } });
    const s = report.statistics;
    lines = s.lines;
    summary = `${report.status}, ${s.examples} examples (${s.legacyExamples} legacy), tokens mean ${s.tokens.mean} max ${s.tokens.max}, over 4k ${s.overLength["ctx-4k"]}, duplicates ${s.duplicates.count}, errors ${JSON.stringify(report.errorCounts)}`;
  } else {
    const ascii = mode === "bare-ascii";
    const decode = (b: Buffer, s: number, e: number) =>
      ascii && isAscii(b.subarray(s, e)) ? b.toString("latin1", s, e) : b.toString("utf8", s, e);
    let carry: Buffer | undefined;
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      let s = 0;
      let nl = chunk.indexOf(10, 0);
      if (carry && nl !== -1) {
        const joined = Buffer.concat([carry, chunk.subarray(0, nl)]);
        JSON.parse(decode(joined, 0, joined.length));
        lines++;
        carry = undefined;
        s = nl + 1;
        nl = chunk.indexOf(10, s);
      }
      while (nl !== -1) {
        JSON.parse(decode(chunk, s, nl));
        lines++;
        s = nl + 1;
        nl = chunk.indexOf(10, s);
      }
      if (s < chunk.length)
        carry = carry ? Buffer.concat([carry, chunk.subarray(s)]) : Buffer.from(chunk.subarray(s));
    }
  }
  const ms = performance.now() - start;
  const bytes = statSync(path).size;
  return { ms, bytes, maxRssKiB: process.resourceUsage().maxRSS, lines, ...(summary ? { summary } : {}) };
}

// ---- data generation ------------------------------------------------------------------------------

/** Reuses a file from an earlier KEEP=1 run when it is within one line of the wanted size. */
async function ensureFile(path: string, bytes: number): Promise<void> {
  if (existsSync(path)) {
    const size = statSync(path).size;
    if (size <= bytes && size > bytes - 64 * 1024) {
      console.log(`reusing ${path}`);
      return;
    }
  }
  const start = performance.now();
  const out = createWriteStream(path);
  const random = mulberry32(42);
  let written = 0;
  let batch: string[] = [];
  let batchBytes = 0;
  for (let i = 0; ; i++) {
    const line = `${JSON.stringify(example(random, i))}\n`;
    const n = Buffer.byteLength(line);
    if (written + batchBytes + n > bytes) break;
    batch.push(line);
    batchBytes += n;
    if (batchBytes >= MiB) {
      written += batchBytes;
      // Written in 1 MiB batches with back-pressure, so generating 1 GiB never holds more than that.
      if (!out.write(batch.join(""))) await once(out, "drain");
      batch = [];
      batchBytes = 0;
    }
  }
  out.end(batch.join(""));
  await once(out, "finish");
  console.log(
    `generated ${path} (${statSync(path).size} bytes) in ${((performance.now() - start) / 1000).toFixed(1)} s`,
  );
}

const WORDS =
  "the a model data train answer question because which would could system value function return error file line token length user assistant example format result number first second time make when where there these those other about into through after before while under between without again further then once here why how all any both each few more most some such only own same than too very can will just should now code python server request memory cluster network latency".split(
    " ",
  );
const CJK =
  "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处队南给色光门即保治北造百规热领七海口东导器压志世金增争济阶油思术极交受联什认六共权收证改清己美再采转更单风切打白教速花带安场身车例真务具万每目至达走积示议声报斗完类八离华名确才科张信马节话米整空元况今集温传土许步群广石记需段研界拉林律叫且究观越织装影算低持音众书布复容儿须际商非验连断深难近矿千周委素技备半办青省列习响约支般史感劳便团往酸历市克何除消构府称太准精值号率族维划选标写存候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂京识适属圆包火住调满县局照参红细引听该铁价严";

function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A text of roughly log-uniform length, in English or (15% of examples) Chinese. */
function text(random: () => number, cjk: boolean, minWords: number, maxWords: number): string {
  const n = Math.floor(minWords * (maxWords / minWords) ** random());
  const parts: string[] = [];
  if (cjk) {
    for (let i = 0; i < n; i++) parts.push(CJK[Math.floor(random() * CJK.length)]!);
    return parts.join("");
  }
  for (let i = 0; i < n; i++) parts.push(WORDS[Math.floor(random() * WORDS.length)]!);
  const sentence = parts.join(" ");
  return `${sentence.charAt(0).toUpperCase()}${sentence.slice(1)}.`;
}

/** A realistic mix: 1-4 turns (mostly 1), half with a system prompt, 5% exact duplicates. */
function example(random: () => number, i: number): unknown {
  const cjk = random() < 0.15;
  const r = random();
  const turns = r < 0.6 ? 1 : r < 0.85 ? 2 : r < 0.95 ? 3 : 4;
  const messages: { role: string; content: string }[] = [];
  if (random() < 0.5) messages.push({ role: "system", content: text(random, cjk, 5, 40) });
  for (let t = 0; t < turns; t++) {
    messages.push({ role: "user", content: text(random, cjk, 4, 120) });
    messages.push({ role: "assistant", content: text(random, cjk, 8, 600) });
  }
  // Every 20th example repeats a fixed one, so duplicate counting has work to do.
  if (i % 20 === 19)
    return {
      messages: [
        { role: "user", content: "hi" },
        { role: "assistant", content: "Hello!" },
      ],
    };
  return { messages };
}

// ---- bundles ----------------------------------------------------------------------------------------

async function bundles(): Promise<void> {
  const entries = readdirSync(join(root, "lambdas"), { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(root, "lambdas", d.name, "index.ts")))
    .map((d) => d.name);
  if (entries.length === 0) {
    console.log("No lambdas/*/index.ts yet: bundle sizes and import times skipped.");
    return;
  }
  const esbuild = await import("esbuild");
  // Inside the repository so the bundles resolve the external @aws-sdk/* from its node_modules, as the
  // Lambda runtime resolves its own copy.
  const dir = mkdtempSync(join(here, ".bundles-"));
  const rows: string[][] = [];
  try {
    for (const name of entries) {
      const outfile = join(dir, `${name}.mjs`);
      // The production options of infra/constructs/platform-function.ts (NodejsFunction bundling).
      await esbuild.build({
        entryPoints: [join(root, "lambdas", name, "index.ts")],
        outfile,
        bundle: true,
        platform: "node",
        format: "esm",
        target: "node24",
        minify: true,
        sourcemap: true,
        external: ["@aws-sdk/*"],
        mainFields: ["module", "main"],
        banner: {
          js: "import { createRequire } from 'module'; const require = createRequire(import.meta.url);",
        },
        logLevel: "error",
      });
      const env = { ...process.env, AWS_REGION: "us-east-1", ...(await requiredEnvNames(name)) };
      const times: number[] = [];
      let failure = "";
      for (let i = 0; i < 5; i++) {
        // Plain node, no TypeScript loader, so only the bundle's own import is timed.
        const script = `const t = performance.now(); await import(${JSON.stringify(pathToFileURL(outfile).href)}); console.log(performance.now() - t);`;
        const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
          env,
          encoding: "utf8",
        });
        if (r.status !== 0) {
          failure = (r.stderr.split("\n").find((l) => l.includes("Error")) ?? r.stderr).slice(0, 100);
          break;
        }
        times.push(Number(r.stdout.trim()));
      }
      times.sort((a, b) => a - b);
      rows.push([
        `lambdas/${name}`,
        `${(statSync(outfile).size / 1024).toFixed(1)} KiB`,
        `${(statSync(`${outfile}.map`).size / 1024).toFixed(1)} KiB`,
        failure ? `failed: ${failure}` : `${times[2]!.toFixed(1)} ms`,
      ]);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  printTable(["bundle", "size", "source map", "import (median of 5)"], rows);
  console.log(
    `\nBundled with esbuild ${esbuild.version}: ESM, node24, minified, source maps, @aws-sdk/* external.`,
  );
}

/** Dummy values for the environment variables a handler requires at cold start, found in its sources. */
async function requiredEnvNames(name: string): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  const dirs = [join(root, "lambdas", name), join(root, "lambdas", "aws")];
  for (const dir of dirs) {
    for (const file of readdirSync(dir).filter((f) => f.endsWith(".ts"))) {
      const source = await readFile(join(dir, file), "utf8");
      for (const match of source.matchAll(/requiredEnv\("([A-Z0-9_]+)"\)/g)) env[match[1]!] = "bench";
    }
  }
  return env;
}

function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const row of rows) console.log(line(row));
}

// Last, so every module-level constant above is initialised before it runs.
if (process.argv[2] === "--child") {
  const result = await child(process.argv[3] as Mode, process.argv[4]!);
  process.stdout.write(`${JSON.stringify(result)}\n`);
} else {
  await main();
}
