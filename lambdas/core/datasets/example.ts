import type { DatasetErrorCode } from "./codes.ts";

/** A message role the platform trains on. Tool calling is not supported, so there is no `tool` role. */
export type ChatRole = "system" | "user" | "assistant";

/** One message of the canonical (trainer-facing) form. */
export interface ChatMessage {
  readonly role: ChatRole;
  readonly content: string;
  /**
   * OpenAI's per-message weight, only on assistant messages: 0 excludes the turn from the loss, 1 (the
   * default when absent) trains on it.
   */
  readonly weight?: 0 | 1;
}

/** A line in the chat format: `{"messages":[...]}`. */
export interface MessagesExample {
  readonly messages: readonly ChatMessage[];
}

/** A line in the legacy format: `{"input":"...","target":"..."}`. */
export interface LegacyExample {
  readonly input: string;
  readonly target: string;
}

/**
 * A line in OpenAI's preference (DPO) format: a prompt that ends with a user turn, and one preferred and
 * one non-preferred assistant answer to it.
 */
export interface PreferenceExample {
  readonly input: { readonly messages: readonly ChatMessage[] };
  readonly preferred_output: readonly [ChatMessage];
  readonly non_preferred_output: readonly [ChatMessage];
}

/** One valid training example, in any accepted format. */
export type DatasetExample = MessagesExample | LegacyExample | PreferenceExample;

/** The format of one example line. */
export type ExampleFormat = "messages" | "legacy" | "preference";

/** The keys of a preference line. */
const PREFERENCE_KEYS: ReadonlySet<string> = new Set(["input", "preferred_output", "non_preferred_output"]);

/** A problem found in one example. `path` is a JSON path inside the line, e.g. `messages[2].role`. */
export interface ExampleIssue {
  readonly path: string;
  readonly code: DatasetErrorCode;
  readonly message: string;
}

/** Receives issues as they are found, so the validator's hot path allocates nothing for valid lines. */
export type IssueSink = (path: string, code: DatasetErrorCode, message: string) => void;

/**
 * Converts one valid example to the canonical messages array the trainer consumes: a legacy line becomes
 * one user and one assistant turn, a preference line its prompt and preferred answer. Accepted-but-ignored
 * keys (`name`) are dropped.
 */
export function toCanonicalMessages(example: DatasetExample): ChatMessage[] {
  if ("preferred_output" in example) {
    return toCanonicalMessages({ messages: [...example.input.messages, ...example.preferred_output] });
  }
  if ("messages" in example) {
    return example.messages.map((m) =>
      m.weight === undefined
        ? { role: m.role, content: m.content }
        : { role: m.role, content: m.content, weight: m.weight },
    );
  }
  return [
    { role: "user", content: example.input },
    { role: "assistant", content: example.target },
  ];
}

/**
 * Checks one parsed JSON line against the dataset rules. Returns the example when it is valid and the
 * issues otherwise (an example with issues is never returned).
 */
export function checkExample(value: unknown): { example?: DatasetExample; issues: ExampleIssue[] } {
  const issues: ExampleIssue[] = [];
  const format = inspectExample(value, (path, code, message) => issues.push({ path, code, message }));
  if (format === undefined || issues.length > 0) return { issues };
  return { example: value as DatasetExample, issues };
}

const ROLES: ReadonlySet<string> = new Set(["system", "user", "assistant"]);
const NOT_BLANK = /\S/;

/**
 * Reports every issue of one parsed line to `sink` and returns the line's format, or undefined when the
 * line is not recognisable as an example at all (not an object, or neither format's keys). Hand-written
 * rather than a schema library: it runs once per line on files of millions of lines.
 */
export function inspectExample(value: unknown, sink: IssueSink): ExampleFormat | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    sink("", "not_an_object", `Each line must be a JSON object; this line is ${describeType(value)}.`);
    return undefined;
  }
  const record = value as Record<string, unknown>;
  if (isPreferenceLine(record)) {
    inspectPreference(record, sink);
    return "preference";
  }
  if ("messages" in record) {
    for (const key in record) {
      if (key !== "messages") sink(keyPath("", key), "unknown_key", unknownTopLevelKey(key));
    }
    inspectMessages(record.messages, sink);
    return "messages";
  }
  if ("input" in record || "target" in record) {
    for (const key in record) {
      if (key !== "input" && key !== "target") sink(keyPath("", key), "unknown_key", unknownTopLevelKey(key));
    }
    inspectText(record, "input", "input", sink);
    inspectText(record, "target", "target", sink);
    return "legacy";
  }
  const hint =
    "prompt" in record || "completion" in record
      ? ' The OpenAI prompt/completion format is not accepted; use {"input":"...","target":"..."}.'
      : "";
  sink(
    "",
    "missing_key",
    `The line has neither "messages" nor "input"/"target"; expected {"messages":[...]}, {"input":"...","target":"..."} or a preference line {"input":{"messages":[...]},"preferred_output":[...],"non_preferred_output":[...]}.${hint}`,
  );
  return undefined;
}

/** A preference line: either output key, or an object `input` (a legacy line's `input` is a string). */
function isPreferenceLine(record: Record<string, unknown>): boolean {
  return (
    "preferred_output" in record ||
    "non_preferred_output" in record ||
    (typeof record.input === "object" && record.input !== null)
  );
}

function inspectPreference(record: Record<string, unknown>, sink: IssueSink): void {
  for (const key in record) {
    if (!PREFERENCE_KEYS.has(key)) sink(keyPath("", key), "unknown_key", unknownPreferenceKey(key));
  }
  const input = record.input;
  if (input === undefined) {
    sink("input", "missing_key", `"input" is missing: a preference line needs {"input":{"messages":[...]}}.`);
  } else if (typeof input !== "object" || input === null || Array.isArray(input)) {
    sink(
      "input",
      "invalid_type",
      `"input" must be an object {"messages":[...]}; it is ${describeType(input)}.`,
    );
  } else {
    const prompt = input as Record<string, unknown>;
    for (const key in prompt) {
      if (key !== "messages")
        sink(
          keyPath("input", key),
          "unknown_key",
          `Unknown key ${quote(key)}: "input" holds only "messages".`,
        );
    }
    if (!("messages" in prompt)) sink("input.messages", "missing_key", `"input.messages" is missing.`);
    else inspectMessages(prompt.messages, sink, "input.messages", "user");
  }
  const preferred = inspectOutput(record, "preferred_output", sink);
  const rejected = inspectOutput(record, "non_preferred_output", sink);
  if (preferred !== undefined && preferred === rejected) {
    sink(
      "non_preferred_output[0].content",
      "identical_outputs",
      "The preferred and non-preferred outputs are the same text: the pair teaches nothing.",
    );
  }
}

/** Checks one output list (exactly one assistant message); its text when it is valid. */
function inspectOutput(record: Record<string, unknown>, key: string, sink: IssueSink): string | undefined {
  const output = record[key];
  if (output === undefined) {
    sink(key, "missing_key", `${quote(key)} is missing.`);
    return undefined;
  }
  if (!Array.isArray(output) || output.length !== 1) {
    const found = Array.isArray(output) ? `${output.length} messages` : describeType(output);
    sink(key, "invalid_output", `${key} must be a list of exactly one assistant message; it is ${found}.`);
    return undefined;
  }
  const message: unknown = output[0];
  const path = `${key}[0]`;
  if (typeof message !== "object" || message === null || Array.isArray(message)) {
    sink(path, "invalid_output", `${path} must be an assistant message; it is ${describeType(message)}.`);
    return undefined;
  }
  const m = message as Record<string, unknown>;
  for (const name in m) {
    if (name !== "role" && name !== "content" && name !== "name")
      sink(keyPath(path, name), "unknown_key", unknownMessageKey(name));
  }
  if (m.role !== "assistant") {
    sink(`${path}.role`, "invalid_output", `${path}.role must be "assistant".`);
  }
  let valid = m.role === "assistant";
  inspectText(m, "content", `${path}.content`, (at, code, text) => {
    valid = false;
    sink(at, code, text);
  });
  return valid ? (m.content as string) : undefined;
}

function unknownPreferenceKey(key: string): string {
  return `Unknown key ${quote(key)}: a preference line holds only "input", "preferred_output" and "non_preferred_output".`;
}

/**
 * A conversation's rules. A training conversation (`messages`) ends with the assistant's turn; a
 * preference prompt (`input.messages`) ends with the user's turn the outputs answer.
 */
function inspectMessages(
  messages: unknown,
  sink: IssueSink,
  where = "messages",
  lastTurn: "assistant" | "user" = "assistant",
): void {
  if (!Array.isArray(messages)) {
    sink(
      where,
      "invalid_type",
      `${quote(where)} must be an array of messages; it is ${describeType(messages)}.`,
    );
    return;
  }
  let users = 0;
  let assistants = 0;
  // Alternation counts only user/assistant turns, and is not judged once a role is malformed: that
  // message already has its own error, and guessing what it meant would add noise.
  let turns = 0;
  let orderJudged = true;
  let lastRole: unknown;
  for (let i = 0; i < messages.length; i++) {
    const message: unknown = messages[i];
    const path = `${where}[${i}]`;
    if (typeof message !== "object" || message === null || Array.isArray(message)) {
      sink(
        path,
        "invalid_type",
        `${path} must be an object with "role" and "content"; it is ${describeType(message)}.`,
      );
      lastRole = undefined;
      continue;
    }
    const m = message as Record<string, unknown>;
    for (const key in m) {
      if (key !== "role" && key !== "content" && key !== "name" && key !== "weight")
        sink(keyPath(path, key), "unknown_key", unknownMessageKey(key));
    }
    const role = m.role;
    lastRole = role;
    if (role === undefined) {
      orderJudged = false;
      sink(`${path}.role`, "missing_key", `${path} has no "role".`);
    } else if (typeof role !== "string") {
      orderJudged = false;
      sink(`${path}.role`, "invalid_type", `${path}.role must be a string; it is ${describeType(role)}.`);
    } else if (!ROLES.has(role)) {
      orderJudged = false;
      sink(
        `${path}.role`,
        "unknown_role",
        `${path}.role is ${quote(role)}; expected "system", "user" or "assistant".`,
      );
    } else if (role === "system") {
      if (i !== 0)
        sink(
          `${path}.role`,
          "system_not_first",
          `${path} is a system message; only the first message may be.`,
        );
    } else {
      if (role === "user") users++;
      else assistants++;
      const expected = turns % 2 === 0 ? "user" : "assistant";
      if (role !== expected && orderJudged) {
        orderJudged = false;
        sink(
          `${path}.role`,
          "wrong_order",
          `${path}.role is "${role}" where "${expected}" was expected: after the optional system message, roles alternate user, assistant, user, ...`,
        );
      }
      turns++;
    }
    inspectText(m, "content", `${path}.content`, sink);
    if ("name" in m && typeof m.name !== "string")
      sink(`${path}.name`, "invalid_type", `${path}.name must be a string; it is ${describeType(m.name)}.`);
    if ("weight" in m) {
      if (m.weight !== 0 && m.weight !== 1)
        sink(`${path}.weight`, "invalid_weight", `${path}.weight must be 0 or 1.`);
      else if (role !== "assistant")
        sink(`${path}.weight`, "invalid_weight", `${path}.weight is only allowed on assistant messages.`);
    }
  }
  if (users === 0) sink(where, "no_user_turn", "The example has no user message.");
  if (lastTurn === "user") {
    if (users > 0 && lastRole !== "user") {
      const last = messages.length - 1;
      sink(
        `${where}[${last}]`,
        "not_ending_with_user",
        `A preference prompt must end with the user message the outputs answer; ${where}[${last}] is not one.`,
      );
    }
  } else if (assistants === 0) {
    sink(where, "no_assistant_turn", "The example has no assistant message to train on.");
  } else if (lastRole !== "assistant") {
    const last = messages.length - 1;
    sink(
      `messages[${last}]`,
      "not_ending_with_assistant",
      `The example must end with an assistant message; messages[${last}] is not one.`,
    );
  }
}

function inspectText(record: Record<string, unknown>, key: string, path: string, sink: IssueSink): void {
  const text = record[key];
  if (text === undefined) {
    sink(path, "missing_key", `${quote(key)} is missing.`);
  } else if (typeof text !== "string") {
    sink(
      path,
      "non_string_content",
      `${path} must be a string; it is ${describeType(text)} (only text content is supported).`,
    );
  } else if (!NOT_BLANK.test(text)) {
    sink(path, "empty_content", `${path} is empty or only whitespace.`);
  }
}

function unknownTopLevelKey(key: string): string {
  const hint =
    key === "tools" || key === "functions" || key === "parallel_tool_calls"
      ? " Tool and function calling are not supported for fine-tuning."
      : "";
  return `Unknown key ${quote(key)}: a line holds only "messages", or only "input" and "target".${hint}`;
}

function unknownMessageKey(key: string): string {
  const hint =
    key === "tool_calls" || key === "function_call" || key === "tool_call_id"
      ? " Tool and function calling are not supported for fine-tuning."
      : "";
  return `Unknown message key ${quote(key)}: a message holds "role", "content" and optionally "name" and "weight".${hint}`;
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** `parent.key`, or `parent["odd key"]` when the key is not an identifier. */
function keyPath(parent: string, key: string): string {
  if (!IDENTIFIER.test(key)) return `${parent}[${JSON.stringify(key)}]`;
  return parent ? `${parent}.${key}` : key;
}

/** A value quoted for a message, cut short so a huge string cannot bloat the report. */
function quote(value: string): string {
  return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
}

function describeType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (value === undefined) return "missing";
  const type = typeof value;
  return type === "object" ? "an object" : `a ${type}`;
}
