import { UsageError } from "./admin.ts";
import { oneId } from "./files.ts";
import {
  ApiError,
  type CommandContext,
  type CommandSpec,
  ConnectionError,
  type DeploymentObject,
  type JobEvent,
  type JobObject,
  type ModelObject,
  type OptionValues,
} from "./tenant-api.ts";

/** `ftctl jobs …` (create, list, get, cancel, pause, resume, events, follow) and `ftctl models …`. */

export const JOBS_USAGE = `ftctl jobs create --model <base> --training-file <id> [--method lora|full] [--model-code c | --suffix s]
     [--name "display name"] [--epochs N] [--batch-size N] [--learning-rate-multiplier X] [--lora-r N]
     [--dry-run] [--follow]
ftctl jobs list [--limit N] [--after <id>]
ftctl jobs get <job id>
ftctl jobs cancel <job id>
ftctl jobs pause <job id>                   checkpoint and stop; the compute is released
ftctl jobs resume <job id>                  a paused job, from its newest checkpoint
ftctl jobs delete <job id>                  a finished job and its events; its model stays
ftctl jobs events <job id> [--limit N]      newest events, printed oldest first
ftctl jobs follow <job id>                  status, messages, live loss until it ends or pauses`;

export const MODELS_USAGE = `ftctl models list                           base models and your fine-tuned models
ftctl models get <model code>
ftctl models rename <model code> <name>     the display name ("" clears it)
ftctl models delete <model code>
ftctl models deploy <model code> [--wait]   a full-parameter model's own server; --wait until deployed
ftctl models undeploy <model code>          release that server (chat with it stops at once)`;

const DEPLOY_USAGE = `usage: ftctl models deploy <model code> [--wait]

Starts a server of its own for a full-parameter fine-tuned model (POST /models/{code}/deploy) and prints
the deployment's status, tensor-parallel size and instance type. A LoRA model needs no deploy: it is
served on its base model's server. --wait polls the model every second until the deployment is deployed
(exit 0) or failed or undeployed (prints the reason, exit 1).`;

const UNDEPLOY_USAGE = `usage: ftctl models undeploy <model code>

Releases a full-parameter model's server (DELETE /models/{code}/deploy); chat with it stops at once.`;

const CREATE_USAGE = `usage: ftctl jobs create --model <base model> --training-file <file id> [options]

  --validation-file <id>            a processed file to evaluate on
  --method lora|full                training method (default: the base model's default, LoRA where allowed)
  --model-code <code>               the model code to chat with afterwards (globally unique)
  --suffix <s>                      or: a generated code {base}-{suffix}-{random}
  --name <text>                     a display name for the model (up to 128 characters, any script)
  --epochs N, --batch-size N, --learning-rate-multiplier X, --lora-r N, --lora-alpha N,
  --lora-dropout X, --max-seq-length N, --seed N
                                    hyperparameters; numbers or "auto" (the default)
  --dry-run                         estimate tokens, cost and time; create nothing
  --follow                          then follow the job until it ends (exit 0 only if it succeeded)
  --idempotency-key <key>           default: a new random key per invocation

e.g. ftctl jobs create --model tiny-chat --training-file file-… --model-code my-tiny --epochs 30 --follow`;

/** CLI option → hyperparameter name. */
const HYPERPARAMETER_OPTIONS = {
  epochs: "n_epochs",
  "batch-size": "batch_size",
  "learning-rate-multiplier": "learning_rate_multiplier",
  "lora-r": "lora_r",
  "lora-alpha": "lora_alpha",
  "lora-dropout": "lora_dropout",
  "max-seq-length": "max_seq_length",
} as const;

const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
/** Where `follow` stops: a paused job waits for its tenant, not for the platform. */
const FOLLOW_ENDS = new Set([...TERMINAL, "paused"]);

const str = (values: OptionValues, name: string) => values[name] as string | undefined;

/** The body of `POST /v4/fine_tuning/jobs` from the create options. */
export function createJobBody(values: OptionValues): Record<string, unknown> {
  const model = str(values, "model");
  const trainingFile = str(values, "training-file");
  if (!model || !trainingFile) {
    throw new UsageError(`--model and --training-file are required\n\n${CREATE_USAGE}`);
  }
  const method = str(values, "method");
  if (method !== undefined && method !== "lora" && method !== "full") {
    throw new UsageError(`--method must be 'lora' or 'full', not '${method}'\n\n${CREATE_USAGE}`);
  }
  const modelCode = str(values, "model-code");
  const suffix = str(values, "suffix");
  if (modelCode && suffix) throw new UsageError(`give --model-code or --suffix, not both\n\n${CREATE_USAGE}`);
  const hyperparameters: Record<string, number | "auto"> = {};
  for (const [option, name] of Object.entries(HYPERPARAMETER_OPTIONS)) {
    const raw = str(values, option);
    if (raw === undefined) continue;
    const value = raw === "auto" ? "auto" : Number(raw);
    if (value !== "auto" && (raw.trim() === "" || !Number.isFinite(value))) {
      throw new UsageError(`--${option} must be a number or "auto", not '${raw}'\n\n${CREATE_USAGE}`);
    }
    hyperparameters[name] = value;
  }
  const body: Record<string, unknown> = { model, training_file: trainingFile };
  const validationFile = str(values, "validation-file");
  if (validationFile) body.validation_file = validationFile;
  const hasHyperparameters = Object.keys(hyperparameters).length > 0;
  if (method) body.method = { type: method, ...(hasHyperparameters ? { hyperparameters } : {}) };
  // Without --method the API trains with the base model's default method; the hyperparameters then go
  // in the top-level field it accepts for exactly that case.
  else if (hasHyperparameters) body.hyperparameters = hyperparameters;
  if (modelCode) body.model_code = modelCode;
  if (suffix) body.suffix = suffix;
  const name = str(values, "name");
  if (name !== undefined) body.name = name;
  const seed = str(values, "seed");
  if (seed !== undefined) {
    if (!/^\d+$/.test(seed)) throw new UsageError(`--seed must be a non-negative integer\n\n${CREATE_USAGE}`);
    body.seed = Number(seed);
  }
  if (values["dry-run"]) body.dry_run = true;
  return body;
}

export const JOBS_COMMANDS: Record<string, CommandSpec> = {
  "jobs create": {
    usage: CREATE_USAGE,
    options: {
      model: { type: "string" },
      "training-file": { type: "string" },
      "validation-file": { type: "string" },
      method: { type: "string" },
      "model-code": { type: "string" },
      suffix: { type: "string" },
      name: { type: "string" },
      epochs: { type: "string" },
      "batch-size": { type: "string" },
      "learning-rate-multiplier": { type: "string" },
      "lora-r": { type: "string" },
      "lora-alpha": { type: "string" },
      "lora-dropout": { type: "string" },
      "max-seq-length": { type: "string" },
      seed: { type: "string" },
      "dry-run": { type: "boolean" },
      follow: { type: "boolean" },
      "idempotency-key": { type: "string" },
    },
    run: async (ctx, args, values) => {
      if (args.length > 0) throw new UsageError(`unexpected '${args.join(" ")}'\n\n${CREATE_USAGE}`);
      const body = createJobBody(values);
      if (values["dry-run"] && values.follow) {
        throw new UsageError(`--dry-run creates no job to --follow\n\n${CREATE_USAGE}`);
      }
      const key = str(values, "idempotency-key") ?? ctx.newIdempotencyKey();
      const created = await ctx.api.createJob(body, key);
      if (created.object === "fine_tuning.job.estimate" || values["dry-run"]) {
        ctx.out(ctx.json ? JSON.stringify(created, null, 2) : estimateText(created));
        return 0;
      }
      const job = created as unknown as JobObject;
      if (ctx.json && !values.follow) ctx.out(JSON.stringify(job, null, 2));
      else if (!ctx.json) {
        ctx.out(`Created ${job.id}: status ${job.status}, model code ${job.model_code ?? "?"}.`);
        if (!values.follow) ctx.out(`Follow it with: ftctl jobs follow ${job.id}`);
      }
      return values.follow ? followJob(ctx, job.id) : 0;
    },
  },
  "jobs list": {
    usage: "usage: ftctl jobs list [--limit N] [--after <job id>]",
    options: { limit: { type: "string" }, after: { type: "string" } },
    run: async (ctx, args, values) => {
      if (args.length > 0) throw new UsageError("usage: ftctl jobs list [--limit N] [--after <job id>]");
      const page = await ctx.api.listJobs({ limit: str(values, "limit"), after: str(values, "after") });
      if (ctx.json) ctx.out(JSON.stringify(page, null, 2));
      else {
        for (const job of page.data) ctx.out(jobLine(job));
        if (page.data.length === 0) ctx.out("no jobs");
        const last = page.data[page.data.length - 1];
        if (page.has_more && last) ctx.out(`… more: ftctl jobs list --after ${last.id}`);
      }
      return 0;
    },
  },
  "jobs get": {
    usage: "usage: ftctl jobs get <job id>",
    options: {},
    run: async (ctx, args) => {
      const job = await ctx.api.getJob(oneId(args, "usage: ftctl jobs get <job id>"));
      ctx.out(ctx.json ? JSON.stringify(job, null, 2) : jobText(job));
      return 0;
    },
  },
  "jobs cancel": {
    usage: "usage: ftctl jobs cancel <job id>",
    options: {},
    run: async (ctx, args) => {
      const job = await ctx.api.cancelJob(oneId(args, "usage: ftctl jobs cancel <job id>"));
      ctx.out(ctx.json ? JSON.stringify(job, null, 2) : `${job.id}: ${job.status}`);
      return 0;
    },
  },
  "jobs pause": {
    usage: "usage: ftctl jobs pause <job id>",
    options: {},
    run: async (ctx, args) => {
      const job = await ctx.api.pauseJob(oneId(args, "usage: ftctl jobs pause <job id>"));
      ctx.out(ctx.json ? JSON.stringify(job, null, 2) : `${job.id}: ${job.status}`);
      return 0;
    },
  },
  "jobs resume": {
    usage: "usage: ftctl jobs resume <job id>",
    options: {},
    run: async (ctx, args) => {
      const job = await ctx.api.resumeJob(oneId(args, "usage: ftctl jobs resume <job id>"));
      ctx.out(ctx.json ? JSON.stringify(job, null, 2) : `${job.id}: ${job.status}`);
      return 0;
    },
  },
  "jobs delete": {
    usage: "usage: ftctl jobs delete <job id>",
    options: {},
    run: async (ctx, args) => {
      const job = await ctx.api.deleteJob(oneId(args, "usage: ftctl jobs delete <job id>"));
      ctx.out(
        ctx.json
          ? JSON.stringify(job, null, 2)
          : `Deleted ${job.id}.${job.model_code ? ` Its model ${job.model_code} stays.` : ""}`,
      );
      return 0;
    },
  },
  "jobs events": {
    usage: "usage: ftctl jobs events <job id> [--limit N]",
    options: { limit: { type: "string" } },
    run: async (ctx, args, values) => {
      const id = oneId(args, "usage: ftctl jobs events <job id> [--limit N]");
      const page = await ctx.api.listEvents(id, { limit: str(values, "limit") ?? 100 });
      if (ctx.json) ctx.out(JSON.stringify(page, null, 2));
      else {
        for (const event of [...page.data].reverse()) ctx.out(eventLine(event));
        if (page.data.length === 0) ctx.out("no events");
      }
      return 0;
    },
  },
  "jobs follow": {
    usage: "usage: ftctl jobs follow <job id>",
    options: {},
    run: (ctx, args) => followJob(ctx, oneId(args, "usage: ftctl jobs follow <job id>")),
  },
};

export const MODELS_COMMANDS: Record<string, CommandSpec> = {
  "models list": {
    usage: "usage: ftctl models list",
    options: {},
    run: async (ctx, args) => {
      if (args.length > 0) throw new UsageError("usage: ftctl models list");
      const page = await ctx.api.listModels();
      if (ctx.json) ctx.out(JSON.stringify(page, null, 2));
      else for (const model of page.data) ctx.out(modelLine(model));
      return 0;
    },
  },
  "models get": {
    usage: "usage: ftctl models get <model code>",
    options: {},
    run: async (ctx, args) => {
      const model = await ctx.api.getModel(oneId(args, "usage: ftctl models get <model code>"));
      ctx.out(ctx.json ? JSON.stringify(model, null, 2) : modelLine(model));
      return 0;
    },
  },
  "models rename": {
    usage: "usage: ftctl models rename <model code> <name>",
    options: {},
    run: async (ctx, args) => {
      const [code, name, ...rest] = args;
      if (!code || name === undefined || rest.length > 0) {
        throw new UsageError(
          'usage: ftctl models rename <model code> <name>   (quote a name with spaces; "" clears it)',
        );
      }
      const model = await ctx.api.renameModel(code, name === "" ? null : name);
      ctx.out(ctx.json ? JSON.stringify(model, null, 2) : modelLine(model));
      return 0;
    },
  },
  "models delete": {
    usage: "usage: ftctl models delete <model code>",
    options: {},
    run: async (ctx, args) => {
      const deleted = await ctx.api.deleteModel(oneId(args, "usage: ftctl models delete <model code>"));
      ctx.out(ctx.json ? JSON.stringify(deleted, null, 2) : `Deleted ${deleted.id}.`);
      return 0;
    },
  },
  "models deploy": {
    usage: DEPLOY_USAGE,
    options: { wait: { type: "boolean" } },
    run: async (ctx, args, values) => {
      const code = oneId(args, DEPLOY_USAGE);
      let model = await ctx.api.deployModel(code);
      if (values.wait) model = await waitForDeployment(ctx, model);
      const deployment = deploymentOf(model);
      if (ctx.json) ctx.out(JSON.stringify(model, null, 2));
      else {
        ctx.out(`${model.id}: ${deploymentText(deployment)}`);
        if (deployment.status === "deployed") {
          ctx.out(`Chat with it: ftctl chat ${model.id} "<prompt>"`);
        } else if (!values.wait && deployment.status === "deploying") {
          ctx.err(`The server starts now; see it with 'ftctl models get ${model.id}' (or use --wait).`);
        } else if (values.wait && deployment.status === "undeployed") {
          ctx.out("It was undeployed before its server came up.");
        }
      }
      return !values.wait || deployment.status === "deployed" ? 0 : 1;
    },
  },
  "models undeploy": {
    usage: UNDEPLOY_USAGE,
    options: {},
    run: async (ctx, args) => {
      const model = await ctx.api.undeployModel(oneId(args, UNDEPLOY_USAGE));
      ctx.out(ctx.json ? JSON.stringify(model, null, 2) : `${model.id}: ${deploymentOf(model).status}`);
      return 0;
    },
  },
};

/** A model object's deployment; an answer without one is no full-parameter model's. */
function deploymentOf(model: ModelObject): DeploymentObject {
  if (!model.deployment) {
    throw new Error(`the API's answer for '${model.id}' has no deployment (is it a full-parameter model?)`);
  }
  return model.deployment;
}

const DEPLOY_POLL_MS = 1000;
const FINAL_DEPLOYMENT_STATUSES = new Set(["deployed", "failed", "undeployed"]);

/**
 * Polls a model until its deployment is deployed, failed or undeployed: each status it passes through
 * on stderr, and on a TTY a line redrawn with the seconds waited. Rides out a few failed polls.
 */
async function waitForDeployment(ctx: CommandContext, initial: ModelObject): Promise<ModelObject> {
  const started = Date.now();
  const tty = Boolean(ctx.progress.isTTY) && !ctx.json;
  let model = initial;
  let shown = "";
  let failures = 0;
  let lineOpen = false;
  const endLine = () => {
    if (lineOpen) ctx.progress.write("\n");
    lineOpen = false;
  };
  for (;;) {
    const deployment = deploymentOf(model);
    if (deployment.status !== shown && !ctx.json) {
      endLine();
      ctx.err(`${model.id}: ${deployment.status}`);
    }
    shown = deployment.status;
    if (FINAL_DEPLOYMENT_STATUSES.has(deployment.status)) {
      endLine();
      return model;
    }
    if (tty) {
      const waited = Math.round((Date.now() - started) / 1000);
      ctx.progress.write(`\r${model.id}: ${deploymentText(deployment)}  ${waited} s\x1b[K`);
      lineOpen = true;
    }
    await ctx.sleep(Math.min(ctx.pollIntervalMs, DEPLOY_POLL_MS));
    try {
      model = await ctx.api.getModel(model.id);
      failures = 0;
    } catch (error) {
      const transient =
        error instanceof ConnectionError ||
        (error instanceof ApiError && (error.status >= 500 || error.status === 429));
      if (!transient || ++failures > MAX_POLL_FAILURES) {
        endLine();
        throw error;
      }
      endLine();
      ctx.err(
        `(poll failed, retrying: ${error instanceof ApiError ? error.describe() : (error as Error).message})`,
      );
    }
  }
}

/** `deployed (tp 1, m7i.large)`; a failed one with its reason. */
export function deploymentText(deployment: DeploymentObject): string {
  const where = [
    deployment.tensor_parallel_size != null ? `tp ${deployment.tensor_parallel_size}` : "",
    deployment.instance_type ?? "",
  ].filter(Boolean);
  const reason =
    deployment.status === "failed" && deployment.failure_reason ? `: ${deployment.failure_reason}` : "";
  return `${deployment.status}${where.length ? ` (${where.join(", ")})` : ""}${reason}`;
}

/** Consecutive failed polls (5xx, 429, unreachable) that `follow` rides out before giving up. */
const MAX_POLL_FAILURES = 5;
/** Pages of events fetched in one poll to close a gap (more than 100 new events since the last). */
const MAX_CATCH_UP_PAGES = 20;

/**
 * Follows a job: polls it and its events (newest page each time, printing the ones not seen before in
 * chronological order), prints status changes, messages and a live loss line from `metrics` events,
 * until the job succeeds (exit 0), fails or is cancelled (exit 1), or is paused (exit 1, saying how to
 * resume it).
 */
export async function followJob(ctx: CommandContext, jobId: string): Promise<number> {
  const seen = new Set<string>();
  let status = "";
  let lossLineOpen = false; // a TTY loss line without its newline yet
  let failures = 0;

  const line = (text: string) => {
    if (lossLineOpen) ctx.write("\n");
    lossLineOpen = false;
    ctx.out(text);
  };
  const showLoss = (event: JobEvent) => {
    if (ctx.json) return;
    const text = lossText(event);
    if (!text) return;
    if (ctx.stdoutIsTTY) {
      ctx.write(`\r${text}\x1b[K`);
      lossLineOpen = true;
    } else line(text);
  };

  for (;;) {
    let job: JobObject;
    let fresh: JobEvent[];
    try {
      job = await ctx.api.getJob(jobId);
      fresh = await newEvents(ctx, jobId, seen);
      failures = 0;
    } catch (error) {
      const transient =
        error instanceof ConnectionError ||
        (error instanceof ApiError && (error.status >= 500 || error.status === 429));
      if (!transient || ++failures > MAX_POLL_FAILURES) throw error;
      line(
        `(poll failed, retrying: ${error instanceof ApiError ? error.describe() : (error as Error).message})`,
      );
      await ctx.sleep(ctx.pollIntervalMs);
      continue;
    }
    let pendingMetrics: JobEvent | undefined;
    for (const event of fresh) {
      if (ctx.json) {
        ctx.out(JSON.stringify(event));
        continue;
      }
      if (event.type === "metrics") {
        pendingMetrics = event;
        continue;
      }
      if (pendingMetrics) showLoss(pendingMetrics);
      pendingMetrics = undefined;
      line(eventLine(event));
    }
    if (pendingMetrics) showLoss(pendingMetrics);
    if (job.status !== status && !ctx.json) line(`status: ${job.status}`);
    status = job.status;
    if (FOLLOW_ENDS.has(job.status)) {
      if (lossLineOpen) ctx.write("\n");
      lossLineOpen = false;
      return finish(ctx, job);
    }
    await ctx.sleep(ctx.pollIntervalMs);
  }
}

function finish(ctx: CommandContext, job: JobObject): number {
  const code = job.fine_tuned_model ?? job.model_code ?? null;
  if (ctx.json) {
    ctx.out(JSON.stringify(job, null, 2));
    return job.status === "succeeded" ? 0 : 1;
  }
  if (job.status === "succeeded") {
    ctx.out(`Job ${job.id} succeeded. Model code: ${code}`);
    ctx.out(`Chat with it: ftctl chat ${code} "<prompt>"`);
    return 0;
  }
  if (job.status === "paused") {
    ctx.out(`Job ${job.id} paused. Resume it with: ftctl jobs resume ${job.id}`);
    return 1;
  }
  const reason = job.error?.message
    ? `: ${job.error.message}${job.error.code ? ` (${job.error.code})` : ""}`
    : "";
  ctx.out(`Job ${job.id} ${job.status}${reason}.${code ? ` Model code ${code} is not usable.` : ""}`);
  return 1;
}

/** Events not seen before, oldest first; pages back when the newest page holds no event seen before. */
async function newEvents(ctx: CommandContext, jobId: string, seen: Set<string>): Promise<JobEvent[]> {
  const fresh: JobEvent[] = [];
  let after: string | undefined;
  for (let page = 0; page < MAX_CATCH_UP_PAGES; page++) {
    const result = await ctx.api.listEvents(jobId, { limit: 100, after });
    let reachedSeen = false;
    for (const event of result.data) {
      if (seen.has(event.id)) {
        reachedSeen = true;
        break;
      }
      fresh.push(event);
    }
    const last = result.data[result.data.length - 1];
    // The first poll shows the newest page only; later ones close the gap back to what was seen.
    if (reachedSeen || !result.has_more || !last || seen.size === 0) break;
    after = last.id;
  }
  for (const event of fresh) seen.add(event.id);
  return fresh.reverse();
}

/** `step 40/300  epoch 2  train_loss 1.2345  valid_loss 1.3000  eta 1m05s` from a metrics event, or null. */
export function lossText(event: JobEvent): string | null {
  const data = event.data ?? {};
  const num = (key: string) => (typeof data[key] === "number" ? (data[key] as number) : undefined);
  const step = num("step");
  const loss = num("train_loss");
  if (step === undefined && loss === undefined) return null;
  const parts: string[] = [];
  const total = num("total_steps");
  if (step !== undefined) parts.push(`step ${step}${total !== undefined ? `/${total}` : ""}`);
  const epoch = num("epoch");
  if (epoch !== undefined) parts.push(`epoch ${epoch}`);
  if (loss !== undefined) parts.push(`train_loss ${loss.toFixed(4)}`);
  const valid = num("valid_loss");
  if (valid !== undefined) parts.push(`valid_loss ${valid.toFixed(4)}`);
  const accuracy = num("valid_token_accuracy") ?? num("valid_mean_token_accuracy");
  if (accuracy !== undefined) parts.push(`valid_accuracy ${accuracy.toFixed(3)}`);
  const full = num("full_valid_loss");
  if (full !== undefined) parts.push(`full_valid_loss ${full.toFixed(4)}`);
  const rewardAccuracy = num("reward_accuracy");
  if (rewardAccuracy !== undefined) parts.push(`reward_accuracy ${rewardAccuracy.toFixed(3)}`);
  const eta = num("eta_seconds");
  if (eta !== undefined && step !== total) {
    const seconds = Math.round(eta);
    parts.push(`eta ${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, "0")}s`);
  }
  return parts.join("  ");
}

export function eventLine(event: JobEvent): string {
  const when = new Date(event.created_at * 1000);
  const time = [when.getHours(), when.getMinutes(), when.getSeconds()]
    .map((n) => String(n).padStart(2, "0"))
    .join(":");
  const text = event.type === "metrics" ? (lossText(event) ?? event.message) : event.message;
  return `${time}  ${event.level === "info" ? "" : `[${event.level}] `}${text}`;
}

function jobLine(job: JobObject): string {
  return [job.id, job.status.padEnd(16), job.model, job.model_code ?? ""].filter(Boolean).join("  ");
}

function jobText(job: JobObject): string {
  const lines = [
    `${job.id}  ${job.status}`,
    `  model ${job.model}, method ${job.method?.type ?? "?"}, model code ${job.model_code ?? "?"}`,
    `  training file ${job.training_file ?? "?"}${job.validation_file ? `, validation file ${job.validation_file}` : ""}`,
  ];
  const h = job.method?.hyperparameters ?? job.hyperparameters;
  if (h) {
    const set = Object.entries(h).filter(([, v]) => v !== null && v !== undefined);
    lines.push(`  hyperparameters ${set.map(([k, v]) => `${k}=${v}`).join(" ")}`);
  }
  if (job.trained_tokens) lines.push(`  trained tokens ${job.trained_tokens}`);
  if (job.fine_tuned_model) lines.push(`  fine-tuned model ${job.fine_tuned_model}`);
  if (job.error?.message)
    lines.push(`  error: ${job.error.message}${job.error.code ? ` (${job.error.code})` : ""}`);
  return lines.join("\n");
}

function estimateText(estimate: Record<string, unknown>): string {
  const a = (estimate.assumptions ?? {}) as Record<string, unknown>;
  const h = (estimate.hyperparameters ?? {}) as Record<string, unknown>;
  const seconds = Number(estimate.estimated_duration_seconds ?? 0);
  const duration =
    seconds >= 3600
      ? `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`
      : `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
  return [
    `Dry run (nothing created): ${estimate.model}, ${estimate.method}` +
      (estimate.model_code ? `, model code ${estimate.model_code}` : ""),
    `  trained tokens      ${estimate.trained_tokens}`,
    `  estimated cost      $${estimate.estimated_cost_usd}`,
    `  estimated duration  ${duration} (${a.device ?? "?"}, ${a.gpus ?? "?"} GPUs, ${a.instance_type ?? "?"})`,
    `  queue position      ${estimate.queue_position}`,
    `  hyperparameters     ${Object.entries(h)
      .filter(([, v]) => v !== null)
      .map(([k, v]) => `${k}=${v}`)
      .join(" ")}`,
  ].join("\n");
}

function modelLine(model: ModelObject): string {
  return [
    model.id.padEnd(28),
    model.owned_by ?? "",
    model.status ? `status ${model.status}` : "",
    model.deployment ? `deployment ${deploymentText(model.deployment)}` : "",
    model.root && model.root !== model.id ? `base ${model.root}` : "",
    model.fine_tuning_job_id ?? "",
    model.name ? `"${model.name}"` : "",
  ]
    .filter(Boolean)
    .join("  ");
}
