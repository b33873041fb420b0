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
 *   This is why OpenAI-style `ft:base:org:suffix:id` names are not possible.
 * - not equal, ignoring case, to a base model name: `model` must mean one thing.
 * - not starting with a reserved prefix ({@link RESERVED_PREFIXES}): those of base model families
 *   (present and future releases), of OpenAI ids, and of the platform's own ids.
 *
 * Codes made from a `suffix` ({@link generateModelCode}) start with the base model's name, so they are
 * exempt from the reserved prefixes (which exist to keep tenant-chosen names away from base model
 * names) but meet every other rule; their random tag keeps them apart from any base model name.
 * Global uniqueness is not checked here: the `models` table's conditional write does it, and
 * {@link modelCodeTaken} is the error for a lost write.
 */

export const MODEL_CODE_MIN_LENGTH = 3;
export const MODEL_CODE_MAX_LENGTH = 64;
export const MODEL_CODE_PATTERN = /^[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?$/;

/** Prefixes a tenant-chosen code may not start with (compared after lowercasing). */
export const RESERVED_PREFIXES: readonly string[] = Object.freeze([
  // platform ids and OpenAI fine-tune names
  "ft:",
  "ft-",
  "ftjob",
  "ftevent",
  "ftckpt",
  "file-",
  "base-",
  "system-",
  "admin-",
  // base model families
  "chatglm",
  "glm-",
  "glm4",
  "codegeex",
  "cogview",
  "embedding-",
  "qwen",
  "tiny-",
  // OpenAI model families
  "gpt-",
  "chatgpt",
  "o1-",
  "o3-",
  "o4-",
  "text-",
  "davinci",
  "babbage",
]);

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
 * The part of {@link validateModelCode} that needs no catalog: length, characters and reserved
 * prefixes. Request parsing runs it so a malformed code fails before any lookup.
 */
export function checkModelCodeSyntax(code: string, param = "model_code"): void {
  checkFormat(code, param);
  const lower = code.toLowerCase();
  const prefix = RESERVED_PREFIXES.find((reserved) => lower.startsWith(reserved));
  if (prefix !== undefined) {
    throw invalid(`Model codes may not start with the reserved prefix '${prefix}'.`, param);
  }
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
