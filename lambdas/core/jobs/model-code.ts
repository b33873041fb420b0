import { randomBytes } from "node:crypto";
import type { BaseModelCatalog } from "../catalog/base-models.ts";
import { DEFAULT_CATALOG } from "../catalog/base-models.ts";
import { ConflictError, InvalidRequestError } from "../errors.ts";

/**
 * Model codes: the name a tenant gives a fine-tuned model and then passes as `model` to chat.
 *
 * Rules for a code the tenant picks (`model_code`):
 * - 3–64 characters of lowercase letters, digits, `-`, `_` and `.`, starting and ending with a letter or
 *   digit. Lowercase only, so two codes that differ in case can not both exist, and no `:` or `/`, so a
 *   code is safe in a URL path segment (`/v4/models/{code}`), an S3 key and a vLLM LoRA adapter name.
 *   OpenAI-style `ft:base:org:suffix:id` names are refused with a message of their own.
 * - not equal, ignoring case, to a base model name of the catalog, nor to an official model name
 *   ({@link OFFICIAL_MODEL_NAMES}, with OpenAI's dated snapshots such as `gpt-4o-2024-08-06`): `model`
 *   must mean one thing, here and for a client that also talks to Zhipu or OpenAI.
 * - not starting with a prefix of the platform's own ids ({@link RESERVED_PREFIXES}), so a code is never
 *   mistaken for a job, file, event or checkpoint id.
 *
 * A code may start with a family or base model name: Zhipu's own fine-tuning example calls its model
 * `chatglm3-6b-1001`, and `qwen2.5-7b-support` says plainly what it was trained from.
 * Global uniqueness is not checked here: the `models` table's conditional write does it, and
 * {@link modelCodeTaken} is the error for a lost write.
 */

export const MODEL_CODE_MIN_LENGTH = 3;
export const MODEL_CODE_MAX_LENGTH = 64;
export const MODEL_CODE_PATTERN = /^[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?$/;

/** Prefixes of the platform's own ids (compared after lowercasing). */
export const RESERVED_PREFIXES: readonly string[] = Object.freeze([
  "ft-",
  "ftjob",
  "ftevent",
  "ftckpt",
  "file-",
]);

/**
 * Official model names of Zhipu's and OpenAI's APIs (lowercase), maintained by hand: a code equal to one
 * of them is refused. Add a name here when either provider releases a model; the catalog's names are
 * refused as well, through {@link validateModelCode}'s catalog argument.
 */
export const OFFICIAL_MODEL_NAMES: ReadonlySet<string> = new Set([
  // Zhipu BigModel: language models
  "glm-4.6",
  "glm-4.5",
  "glm-4.5-air",
  "glm-4.5-airx",
  "glm-4.5-x",
  "glm-4.5-flash",
  "glm-4-plus",
  "glm-4-0520",
  "glm-4",
  "glm-4-air",
  "glm-4-air-250414",
  "glm-4-airx",
  "glm-4-long",
  "glm-4-flash",
  "glm-4-flash-250414",
  "glm-4-flashx",
  "glm-4-flashx-250414",
  "glm-4-9b",
  "glm-4-alltools",
  "glm-4-assistant",
  "glm-z1-air",
  "glm-z1-airx",
  "glm-z1-flash",
  "glm-z1-flashx",
  "glm-zero-preview",
  "glm-3-turbo",
  "chatglm_turbo",
  "chatglm_pro",
  "chatglm_std",
  "chatglm_lite",
  "chatglm3-6b",
  "chatglm_12b",
  "chatglm_32b",
  "chatglm_66b",
  "chatglm_130b",
  "charglm-3",
  "charglm-4",
  "emohaa",
  "codegeex-4",
  // Zhipu BigModel: vision, voice, image, video, embeddings
  "glm-4.5v",
  "glm-4v",
  "glm-4v-plus",
  "glm-4v-plus-0111",
  "glm-4v-flash",
  "glm-4.1v-thinking-flash",
  "glm-4.1v-thinking-flashx",
  "glm-4-voice",
  "glm-realtime",
  "glm-asr",
  "cogview-3",
  "cogview-3-plus",
  "cogview-3-flash",
  "cogview-4",
  "cogview-4-250304",
  "cogvideox",
  "cogvideox-2",
  "cogvideox-3",
  "cogvideox-flash",
  "embedding-2",
  "embedding-3",
  "rerank",
  // OpenAI
  "gpt-5",
  "gpt-5-mini",
  "gpt-5-nano",
  "gpt-5-pro",
  "gpt-5-chat-latest",
  "gpt-5-codex",
  "gpt-4.1",
  "gpt-4.1-mini",
  "gpt-4.1-nano",
  "gpt-4.5-preview",
  "gpt-4o",
  "gpt-4o-mini",
  "gpt-4o-audio-preview",
  "gpt-4o-realtime-preview",
  "gpt-4o-search-preview",
  "gpt-4o-transcribe",
  "gpt-4o-mini-tts",
  "gpt-4-turbo",
  "gpt-4-turbo-preview",
  "gpt-4",
  "gpt-4-32k",
  "gpt-3.5-turbo",
  "gpt-3.5-turbo-16k",
  "gpt-3.5-turbo-instruct",
  "gpt-oss-120b",
  "gpt-oss-20b",
  "gpt-image-1",
  "gpt-realtime",
  "chatgpt-4o-latest",
  "o1",
  "o1-mini",
  "o1-preview",
  "o1-pro",
  "o3",
  "o3-mini",
  "o3-pro",
  "o3-deep-research",
  "o4-mini",
  "o4-mini-deep-research",
  "codex-mini-latest",
  "davinci-002",
  "babbage-002",
  "text-embedding-3-small",
  "text-embedding-3-large",
  "text-embedding-ada-002",
  "text-moderation-latest",
  "omni-moderation-latest",
  "whisper-1",
  "tts-1",
  "tts-1-hd",
  "dall-e-2",
  "dall-e-3",
]);

/** OpenAI's dated snapshots of an official name, e.g. `gpt-4o-2024-08-06`, `gpt-4-0613`. */
const OPENAI_SNAPSHOT = /^(.+)-(?:\d{4}-\d{2}-\d{2}|0[1-9][0-3]\d)$/;

/** OpenAI's fine-tuned model names: `ft:{base}:{org}[:{suffix}]:{id}`. */
const OPENAI_FINE_TUNED_NAME = /^ft:/i;

/** Length of the random tag of generated codes: 6 base36 characters, about 31 bits. */
export const GENERATED_TAG_LENGTH = 6;

/**
 * Checks a tenant-chosen model code; throws a 400 `invalid_model_code` naming `param` otherwise.
 * Uppercase is rejected rather than lowercased so the code stored is the code the tenant typed.
 */
export function validateModelCode(
  code: string,
  catalog: BaseModelCatalog = DEFAULT_CATALOG,
  param = "model_code",
): void {
  checkModelCodeSyntax(code, param);
  checkNotBaseModel(code, catalog, param);
}

/**
 * The part of {@link validateModelCode} that needs no catalog: length, characters, the platform's id
 * prefixes and the official model names. Request parsing runs it so a malformed code fails before any
 * lookup.
 */
export function checkModelCodeSyntax(code: string, param = "model_code"): void {
  if (OPENAI_FINE_TUNED_NAME.test(code)) {
    throw invalid(
      "Model codes may not have the shape of OpenAI's fine-tuned model names ('ft:…'); pick a code such as 'support-bot-v2'.",
      param,
    );
  }
  checkFormat(code, param);
  const lower = code.toLowerCase();
  const prefix = RESERVED_PREFIXES.find((reserved) => lower.startsWith(reserved));
  if (prefix !== undefined) {
    throw invalid(`Model codes may not start with '${prefix}', the prefix of the platform's own ids.`, param);
  }
  if (isOfficialModelName(lower)) {
    throw invalid(
      `'${code}' is the name of an official Zhipu or OpenAI model; pick another model code.`,
      param,
    );
  }
}

/** True for an official model name or an OpenAI dated snapshot of one (compared in lowercase). */
export function isOfficialModelName(name: string): boolean {
  const lower = name.toLowerCase();
  if (OFFICIAL_MODEL_NAMES.has(lower)) return true;
  const snapshot = OPENAI_SNAPSHOT.exec(lower);
  return snapshot !== null && OFFICIAL_MODEL_NAMES.has(snapshot[1]!) && !isZhipuName(snapshot[1]!);
}

/** Zhipu names whose numeric tails are not snapshots: `chatglm3-6b-1001` is a tenant's code. */
function isZhipuName(name: string): boolean {
  return /^(chatglm|glm|charglm|codegeex|cogview|cogvideo|embedding)/.test(name);
}

function checkFormat(code: string, param: string): void {
  if (code.length < MODEL_CODE_MIN_LENGTH || code.length > MODEL_CODE_MAX_LENGTH) {
    throw invalid(
      `Model codes are ${MODEL_CODE_MIN_LENGTH}–${MODEL_CODE_MAX_LENGTH} characters long; got ${code.length}.`,
      param,
    );
  }
  if (!MODEL_CODE_PATTERN.test(code)) {
    throw invalid(
      "Model codes use lowercase letters, digits, '-', '_' and '.', and start and end with a letter or digit.",
      param,
    );
  }
}

function checkNotBaseModel(code: string, catalog: BaseModelCatalog, param: string): void {
  const lower = code.toLowerCase();
  if (catalog.some((model) => model.name.toLowerCase() === lower)) {
    throw invalid(`'${code}' is the name of a base model; pick another model code.`, param);
  }
}

/** 6 random base36 characters from the CSPRNG (the tiny modulo bias does not matter for a tag). */
export function randomTag(): string {
  const bytes = randomBytes(GENERATED_TAG_LENGTH);
  let tag = "";
  for (const byte of bytes) tag += (byte % 36).toString(36);
  return tag;
}

/**
 * The short form of a base model name used in generated codes: lowercased, chat/instruct tails dropped
 * (`qwen2.5-7b-instruct` → `qwen2.5-7b`, `glm-4-9b-chat` → `glm-4-9b`, `tiny-chat` → `tiny`), other
 * characters mapped to `-`.
 */
export function shortBaseName(baseModel: string): string {
  const short = baseModel
    .toLowerCase()
    .replace(/[^a-z0-9._-]/g, "-")
    .replace(/[-_](instruct|chat)$/, "")
    .replace(/^[^a-z0-9]+/, "");
  return short || "model";
}

/**
 * `{base-short}-{suffix}-{tag}` (or `{base-short}-{tag}` without a suffix), e.g.
 * `qwen2.5-7b-support-bot-k3j9x2`. When longer than 64, the head (base and suffix) is cut so the random
 * tag survives, and separators left at the cut are dropped. The result always passes the format rules
 * and never equals a base model name (the tag is appended after a `-`).
 */
export function generateModelCode(
  baseModel: string,
  suffix?: string | null,
  tag: string = randomTag(),
): string {
  if (!/^[a-z0-9]{1,16}$/.test(tag)) throw new Error(`invalid model code tag '${tag}'`);
  const head = suffix ? `${shortBaseName(baseModel)}-${suffix}` : shortBaseName(baseModel);
  const room = MODEL_CODE_MAX_LENGTH - tag.length - 1;
  const cut = head.slice(0, room).replace(/[-_.]+$/, "");
  return `${cut}-${tag}`;
}

/** 409 for a model code another job (of any tenant) already holds. */
export function modelCodeTaken(code: string): ConflictError {
  return new ConflictError(
    `The model code '${code}' is already taken; pick another one.`,
    "model_code_taken",
    "model_code",
  );
}

function invalid(message: string, param: string): InvalidRequestError {
  return new InvalidRequestError(message, param, "invalid_model_code");
}
