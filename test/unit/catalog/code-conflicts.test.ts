import { describe, expect, it } from "vitest";
import { DEFAULT_CATALOG } from "../../../lambdas/core/catalog/base-models.ts";
import {
  CatalogCodeConflictError,
  catalogGuard,
  checkCatalogAgainstCodes,
} from "../../../lambdas/core/catalog/code-conflicts.ts";
import { ServiceUnavailableError } from "../../../lambdas/core/errors.ts";
import { catalogWithLlama } from "../../fixtures/catalog.ts";

/** A catalog with an operator's model whose name a tenant took as a code before it was added. */
const withLlama = catalogWithLlama();

const held = (...codes: string[]) => {
  const asked: string[] = [];
  const exists = async (code: string) => {
    asked.push(code);
    return codes.includes(code);
  };
  return { exists, asked };
};

describe("checkCatalogAgainstCodes", () => {
  it("accepts a catalog none of whose names is a stored model code", async () => {
    const { exists, asked } = held("acme-bot", "chatglm3-6b-1001");
    await expect(checkCatalogAgainstCodes(DEFAULT_CATALOG, exists)).resolves.toBeUndefined();
    expect(asked).toEqual(DEFAULT_CATALOG.map((model) => model.name.toLowerCase()));
  });

  it("refuses a catalog naming a model a tenant holds as a code, ignoring case, with a clear message", async () => {
    const error = await checkCatalogAgainstCodes(withLlama, held("llama-3-8b").exists).catch((e) => e);
    expect(error).toBeInstanceOf(CatalogCodeConflictError);
    expect(error.names).toEqual(["llama-3-8b"]);
    expect(error.message).toContain("'llama-3-8b', already the model code of a tenant's fine-tuned model");
    expect(error.message).toContain("Give the catalog entry another name");
  });
});

describe("catalogGuard", () => {
  it("checks once when the catalog is fine", async () => {
    const { exists, asked } = held();
    const ready = catalogGuard(DEFAULT_CATALOG, exists, () => {});
    await ready();
    await ready();
    expect(asked).toHaveLength(DEFAULT_CATALOG.length);
  });

  it("answers 503 without naming the code, logs the conflict, and checks again on the next request", async () => {
    const codes = ["llama-3-8b"];
    const logged: Record<string, unknown>[] = [];
    const ready = catalogGuard(
      withLlama,
      async (code) => codes.includes(code),
      (_message, details) => logged.push(details),
    );
    const error = await ready().catch((e) => e);
    expect(error).toBeInstanceOf(ServiceUnavailableError);
    expect(error.code).toBe("catalog_misconfigured");
    expect(error.message).not.toContain("llama");
    expect(logged[0]).toMatchObject({ names: ["llama-3-8b"] });
    // The tenant deleted the model: the warm function serves again.
    codes.length = 0;
    await expect(ready()).resolves.toBeUndefined();
  });
});
