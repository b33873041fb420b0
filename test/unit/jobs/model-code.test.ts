import { describe, expect, it } from "vitest";
import { DEFAULT_CATALOG } from "../../../lambdas/core/catalog/base-models.ts";
import { ConflictError, InvalidRequestError } from "../../../lambdas/core/errors.ts";
import {
  checkModelCodeSyntax,
  generateModelCode,
  isOfficialModelName,
  MODEL_CODE_MAX_LENGTH,
  modelCodeTaken,
  OFFICIAL_MODEL_NAMES,
  randomTag,
  shortBaseName,
  validateModelCode,
} from "../../../lambdas/core/jobs/model-code.ts";
import { catalogWithLlama } from "../../fixtures/catalog.ts";

function rejection(code: string, catalog = DEFAULT_CATALOG): InvalidRequestError {
  try {
    validateModelCode(code, catalog);
  } catch (error) {
    if (error instanceof InvalidRequestError) return error;
    throw error;
  }
  throw new Error(`expected ${code} to be rejected`);
}

describe("validateModelCode", () => {
  it.each([
    "abc",
    "support-bot",
    "support_bot.v2",
    "acme-qwen-7b",
    "my-glm",
    "7b-support",
    "a".repeat(64),
    "x.y",
    "tinyllama-clone",
  ])("accepts %j", (code) => {
    expect(() => validateModelCode(code)).not.toThrow();
  });

  it.each([
    ["", "3–64"],
    ["ab", "3–64"],
    ["a".repeat(65), "3–64"],
    ["Support-Bot", "lowercase"],
    ["-bot", "start and end"],
    [".bot", "start and end"],
    ["_bot", "start and end"],
    ["bot-", "start and end"],
    ["bot.", "start and end"],
    ["my bot", "lowercase"],
    ["my/bot", "lowercase"],
    ["my:bot", "lowercase"],
    ["bot\n", "lowercase"],
    ["bøt", "lowercase"],
  ])("rejects %j as malformed (%s)", (code, message) => {
    const error = rejection(code);
    expect(error.code).toBe("invalid_model_code");
    expect(error.param).toBe("model_code");
    expect(error.status).toBe(400);
    expect(error.message).toContain(message);
  });

  it.each(DEFAULT_CATALOG.map((model) => model.name))(
    "rejects a model code equal to the base model name %j",
    (name) => {
      expect(rejection(name).code).toBe("invalid_model_code");
    },
  );

  it("rejects a base model name in another case", () => {
    expect(() => validateModelCode("Qwen2.5-7B-Instruct")).toThrow(InvalidRequestError);
  });

  it("rejects the name of a base model added by an override, ignoring case", () => {
    const catalog = catalogWithLlama();
    expect(rejection("llama-3-8b", catalog).message).toContain("base model");
    expect(() => validateModelCode("llama-3-8b")).not.toThrow();
  });

  it.each([
    "chatglm3-6b-1001",
    "chatglm3-6b-ft",
    "chatglm_12b-legal",
    "glm-4-plus-support",
    "glm-5x",
    "qwen2.5-7b-support",
    "qwen",
    "tiny-chat-2",
    "gpt-4o-acme",
    "o4-mini-acme",
    "text-bot",
    "admin-bot",
  ])("accepts %j, which merely starts with a family or model name", (code) => {
    expect(() => validateModelCode(code)).not.toThrow();
  });

  it.each([
    "chatglm3-6b",
    "glm-4-plus",
    "glm-4.5-air",
    "glm-4-flash",
    "chatglm_turbo",
    "codegeex-4",
    "cogview-4",
    "embedding-3",
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4o-2024-08-06",
    "gpt-4-0613",
    "gpt-3.5-turbo",
    "o1-pro",
    "o3-mini",
    "o4-mini",
    "text-embedding-3-small",
    "davinci-002",
    "whisper-1",
  ])("rejects %j, an official Zhipu or OpenAI model name", (code) => {
    const error = rejection(code);
    expect(error.code).toBe("invalid_model_code");
    expect(error.message).toMatch(/official|base model/);
  });

  it.each(["ft:gpt-4o:x:y:z", "ft:gpt-4o-mini-2024-07-18:acme::abc123", "FT:x"])(
    "rejects %j, shaped like OpenAI's fine-tuned model names",
    (code) => {
      const error = rejection(code);
      expect(error.code).toBe("invalid_model_code");
      expect(error.message).toContain("OpenAI's fine-tuned model names");
    },
  );

  it.each(["ft-my-model", "ftjob-123", "ftevent-1", "ftckpt-1", "file-abc"])(
    "rejects %j for the prefix of the platform's own ids",
    (code) => {
      const error = rejection(code);
      expect(error.code).toBe("invalid_model_code");
      expect(error.message).toContain("the platform's own ids");
    },
  );

  it("keeps the official names in lowercase, and every one is refused", () => {
    for (const name of OFFICIAL_MODEL_NAMES) {
      expect(name).toBe(name.toLowerCase());
      expect(isOfficialModelName(name.toUpperCase())).toBe(true);
    }
  });

  it("reads a numeric tail of a Zhipu name as part of a tenant's code, not as a snapshot", () => {
    expect(isOfficialModelName("chatglm3-6b-0601")).toBe(false);
    expect(isOfficialModelName("gpt-4-0125")).toBe(true);
  });

  it("names a custom param", () => {
    try {
      validateModelCode("AB", DEFAULT_CATALOG, "body.model_code");
    } catch (error) {
      expect((error as InvalidRequestError).param).toBe("body.model_code");
    }
    expect.assertions(1);
  });
});

describe("checkModelCodeSyntax", () => {
  it("checks format, id prefixes and official names without a catalog", () => {
    expect(() => checkModelCodeSyntax("ftjob-x")).toThrow(/own ids/);
    expect(() => checkModelCodeSyntax("glm-4-plus")).toThrow(/official/);
    expect(() => checkModelCodeSyntax("UPPER")).toThrow(/lowercase/);
    expect(() => checkModelCodeSyntax("good-code")).not.toThrow();
  });
});

describe("shortBaseName", () => {
  it.each([
    ["qwen2.5-7b-instruct", "qwen2.5-7b"],
    ["qwen2.5-0.5b-instruct", "qwen2.5-0.5b"],
    ["glm-4-9b-chat", "glm-4-9b"],
    ["chatglm3-6b", "chatglm3-6b"],
    ["chatglm_130b", "chatglm_130b"],
    ["tiny-chat", "tiny"],
    ["Llama-3-8B-Instruct", "llama-3-8b"],
    ["my model+x", "my-model-x"],
    ["_odd", "odd"],
    ["___", "model"],
  ])("shortens %j to %j", (name, short) => {
    expect(shortBaseName(name)).toBe(short);
  });
});

describe("generateModelCode", () => {
  it("is {base-short}-{suffix}-{tag}", () => {
    expect(generateModelCode("qwen2.5-7b-instruct", "support-bot", "k3j9x2")).toBe(
      "qwen2.5-7b-support-bot-k3j9x2",
    );
  });

  it("is {base-short}-{tag} without a suffix", () => {
    expect(generateModelCode("glm-4-9b-chat", null, "000abc")).toBe("glm-4-9b-000abc");
    expect(generateModelCode("glm-4-9b-chat", undefined, "000abc")).toBe("glm-4-9b-000abc");
    expect(generateModelCode("glm-4-9b-chat", "", "000abc")).toBe("glm-4-9b-000abc");
  });

  it("cuts the head, not the tag, to stay within 64 characters", () => {
    const code = generateModelCode("x".repeat(20), "y".repeat(40), "abcdef");
    expect(code).toBe(`${"x".repeat(20)}-${"y".repeat(36)}-abcdef`);
    expect(code).toHaveLength(MODEL_CODE_MAX_LENGTH);
  });

  it("does not cut a code that fits", () => {
    expect(generateModelCode("qwen2.5-0.5b-instruct", "y".repeat(40), "abcdef")).toHaveLength(60);
  });

  it("drops separators left at the cut", () => {
    const code = generateModelCode("x".repeat(17), `${"a".repeat(38)}-b`, "abcdef");
    expect(code).toBe(`${"x".repeat(17)}-${"a".repeat(38)}-abcdef`);
  });

  it("makes codes that pass the format and base-name rules for every base model and many suffixes", () => {
    for (const model of DEFAULT_CATALOG) {
      for (const suffix of [null, "a", "my_bot-2", "z".repeat(40), "-lead", "trail_"]) {
        const code = generateModelCode(model.name, suffix);
        expect(code.length).toBeLessThanOrEqual(64);
        expect(code).toMatch(/^[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?$/);
        expect(DEFAULT_CATALOG.some((m) => m.name.toLowerCase() === code)).toBe(false);
      }
    }
  });

  it("uses a fresh random tag each time", () => {
    const codes = new Set(Array.from({ length: 100 }, () => generateModelCode("tiny-chat", "bot")));
    expect(codes.size).toBe(100);
  });

  it("refuses a malformed tag", () => {
    expect(() => generateModelCode("tiny-chat", "bot", "ABC")).toThrow();
    expect(() => generateModelCode("tiny-chat", "bot", "")).toThrow();
  });
});

describe("randomTag", () => {
  it("is 6 base36 characters", () => {
    for (let i = 0; i < 50; i++) expect(randomTag()).toMatch(/^[0-9a-z]{6}$/);
  });
});

describe("modelCodeTaken", () => {
  it("is a 409 model_code_taken naming model_code", () => {
    const error = modelCodeTaken("support-bot");
    expect(error).toBeInstanceOf(ConflictError);
    expect(error.status).toBe(409);
    expect(error.code).toBe("model_code_taken");
    expect(error.param).toBe("model_code");
    expect(error.message).toContain("'support-bot'");
  });
});
