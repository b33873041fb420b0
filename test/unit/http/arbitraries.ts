import fc from "fast-check";

/**
 * fast-check arbitraries for the request properties: random inputs, and mutations of a valid input (a
 * field dropped, retyped or added; the serialized text truncated or edited), which reach much deeper
 * into a parser than random inputs alone.
 */

/** A JSON value small enough to keep runs fast. */
export const jsonValue = (): fc.Arbitrary<unknown> => fc.jsonValue({ maxDepth: 2 });

/** Any text: ASCII, any code point (lone surrogates included), or one of the awkward ones. */
export const anyText = (maxLength = 24): fc.Arbitrary<string> =>
  fc.oneof(
    fc.string({ maxLength }),
    fc.string({ unit: "binary", maxLength }),
    fc.constantFrom("", " ", "%", "\u0000", "\ud800", "__proto__", "constructor", "NaN", "1e309", "-0"),
  );

/** Sets an own property even for `__proto__`, as JSON.parse would. */
function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

type Edit = { readonly drop: string } | { readonly key: string; readonly value: unknown };

/**
 * `valid` with one or two edits: a key dropped, or a key (its own or a new one) set to another value;
 * `values` adds domain-aware values to the random JSON (e.g. near-valid messages for chat).
 */
export function mutatedObject(
  valid: Record<string, unknown>,
  values: fc.Arbitrary<unknown> = jsonValue(),
): fc.Arbitrary<unknown> {
  const keys = Object.keys(valid);
  const key = fc.oneof(fc.constantFrom(...keys), anyText(12));
  const edit: fc.Arbitrary<Edit> = fc.oneof(
    fc.constantFrom(...keys).map((drop) => ({ drop })),
    fc.record({ key, value: fc.oneof(values, jsonValue(), anyText()) }),
  );
  return fc.oneof(
    {
      weight: 5,
      arbitrary: fc.array(edit, { minLength: 1, maxLength: 2 }).map((edits) => {
        const copy = JSON.parse(JSON.stringify(valid)) as Record<string, unknown>;
        for (const e of edits) {
          if ("drop" in e) delete copy[e.drop];
          else setOwn(copy, e.key, e.value);
        }
        return copy;
      }),
    },
    { weight: 1, arbitrary: jsonValue() },
  );
}

/** `text` truncated, with characters inserted, or with one replaced. */
export function mutatedText(text: string): fc.Arbitrary<string> {
  return fc.oneof(
    fc.nat(text.length).map((at) => text.slice(0, at)),
    fc
      .tuple(fc.nat(text.length), anyText(3))
      .map(([at, inserted]) => text.slice(0, at) + inserted + text.slice(at)),
    fc
      .tuple(fc.nat(Math.max(0, text.length - 1)), fc.string({ unit: "binary", minLength: 1, maxLength: 1 }))
      .map(([at, c]) => text.slice(0, at) + c + text.slice(at + 1)),
  );
}

/** A request body for an endpoint whose valid body is `valid`: mostly near-valid JSON, sometimes noise. */
export function bodyFor(
  valid: Record<string, unknown>,
  values?: fc.Arbitrary<unknown>,
): fc.Arbitrary<string | Buffer | null> {
  const text = JSON.stringify(valid);
  return fc.oneof(
    { weight: 1, arbitrary: fc.constant(text) },
    { weight: 6, arbitrary: mutatedObject(valid, values).map((value) => JSON.stringify(value) ?? "") },
    { weight: 3, arbitrary: mutatedText(text) },
    { weight: 1, arbitrary: anyText(64) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes)) },
    { weight: 1, arbitrary: fc.constant(null) },
  );
}

/** Content types a client might send, JSON or not, well-formed or not. */
export const contentType = (): fc.Arbitrary<string | undefined> =>
  fc.oneof(
    {
      weight: 4,
      arbitrary: fc.constantFrom("application/json", "application/json; charset=utf-8", "APPLICATION/JSON"),
    },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        undefined,
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/json; charset=latin1",
        "application/json;;;=",
        "multipart/form-data",
        "multipart/form-data; boundary=",
      ),
    },
    { weight: 1, arbitrary: anyText(40) },
  );

/** Methods: the declared ones, others HTTP knows, and nonsense. */
export const method = (): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom("GET", "POST", "DELETE") },
    { weight: 2, arbitrary: fc.constantFrom("PUT", "PATCH", "HEAD", "OPTIONS", "TRACE", "get") },
    { weight: 1, arbitrary: fc.string({ minLength: 1, maxLength: 8 }) },
  );

const SEGMENTS = [
  "v4",
  "files",
  "uploads",
  "content",
  "fine_tuning",
  "jobs",
  "cancel",
  "events",
  "checkpoints",
  "fine_tuned_models",
  "models",
  "deploy",
  "usage",
] as const;

/** A path parameter: an id or name, escapes (often malformed), a URL-safe segment, or anything. */
const parameter = (): fc.Arbitrary<string> =>
  fc.oneof(
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        "file-001k892a2fse5r8e5481r",
        "ftjob-001k892a2fse5r8e5481r",
        "tiny-chat",
        "acme-bot",
        "uploads",
      ),
    },
    { weight: 2, arbitrary: fc.stringMatching(/^(?:%[0-9A-Fa-fgz]{0,2}|[a-z0-9._~-]){1,8}$/) },
    { weight: 2, arbitrary: fc.webSegment().filter((segment) => segment.length > 0) },
    { weight: 1, arbitrary: anyText(10) },
  );

/** Paths: a route pattern with random parameters (and maybe a trailing slash), or random segments. */
export function path(patterns: readonly string[]): fc.Arbitrary<string> {
  const templated = fc
    .tuple(fc.constantFrom(...patterns), fc.array(parameter(), { minLength: 3, maxLength: 3 }), fc.boolean())
    .map(([pattern, params, slash]) => {
      let i = 0;
      return pattern.replace(/\{\w+\}/g, () => params[i++] ?? "") + (slash ? "/" : "");
    });
  const free = fc
    .array(fc.oneof(fc.constantFrom(...SEGMENTS), parameter()), { maxLength: 6 })
    .map((segments) => `/${segments.join("/")}`);
  return fc.oneof({ weight: 4, arbitrary: templated }, { weight: 1, arbitrary: free });
}

/** A query string's parameters as API Gateway passes them: known names, unknown ones, odd values. */
export function query(names: readonly string[]): fc.Arbitrary<Record<string, string> | null> {
  const value = fc.oneof(
    fc.integer({ min: -5, max: 200 }).map(String),
    fc.constantFrom("fine-tune", "fine-tune-results", "batch", "desc", "asc", "2026-01-01", "2026-12-31", ""),
    anyText(12),
  );
  const name = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...names) },
    { weight: 1, arbitrary: anyText(8) },
  );
  return fc.oneof(fc.constant(null), fc.dictionary(name, value, { maxKeys: 4 }));
}
