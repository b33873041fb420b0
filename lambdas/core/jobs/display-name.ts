import { z } from "zod";

/**
 * A fine-tuned model's display name (`name` on create, `POST /v4/models/{code}`): what a console shows
 * beside the model code, in any script. Unlike the code it need not be unique and may change.
 * 1–128 characters counted as Unicode code points (so 128 Chinese characters fit), no control
 * characters (a name ends up in logs and table cells), not blank.
 */
export const DISPLAY_NAME_MAX_LENGTH = 128;

export const displayNameSchema = z
  .string({ error: "must be a string" })
  .refine((name) => name.trim().length > 0, { error: "must not be empty or blank" })
  .refine((name) => [...name].length <= DISPLAY_NAME_MAX_LENGTH, {
    error: `may be at most ${DISPLAY_NAME_MAX_LENGTH} characters`,
  })
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this refuses.
  .refine((name) => !/[\u0000-\u001f\u007f-\u009f]/.test(name), {
    error: "must not hold control characters (line breaks, tabs)",
  });

/** `POST /v4/models/{code}`: the one editable field; `null` clears the name. */
export const modelUpdateSchema = z.object({ name: displayNameSchema.nullable() }).strict();
