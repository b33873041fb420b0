/**
 * Stable error codes of the dataset validator, with the one-line meaning shown in docs. Clients match
 * on the code, never on the message, so a code is never renamed or reused for another meaning.
 */
export const DATASET_ERROR_CODES = {
  empty_file: "The file has zero bytes.",
  file_too_large: "The file is larger than the maximum file size; reading stopped there.",
  too_few_examples: "The file has fewer valid examples than the minimum (10 by default).",
  mixed_formats:
    "The file mixes formats: `messages` lines, legacy `input`/`target` lines and preference (DPO) lines.",
  blank_line: "An empty or whitespace-only line (only one final newline at the end of the file is allowed).",
  line_too_long: "A line is longer than the maximum line size; it was skipped unread.",
  invalid_utf8: "A line is not valid UTF-8.",
  invalid_json: "A line is not valid JSON.",
  not_an_object: "A line is valid JSON but not an object (an array, string, number, boolean or null).",
  missing_key:
    "A required key is absent (`messages`, or `input` and `target`; `role` or `content` in a message).",
  unknown_key: "A key that is not part of the format, at the top level or inside a message.",
  invalid_type: "A known key holds the wrong JSON type (e.g. `messages` is not an array).",
  invalid_weight: "`weight` is not 0 or 1, or is set on a message that is not from the assistant.",
  unknown_role: "A message role other than system, user or assistant.",
  system_not_first: "A system message anywhere but first.",
  wrong_order: "After the optional system message, roles do not alternate user, assistant, user, ...",
  no_user_turn: "The example has no user message.",
  no_assistant_turn: "The example has no assistant message.",
  not_ending_with_assistant: "The example's last message is not from the assistant.",
  not_ending_with_user: "A preference example's input does not end with a user message.",
  invalid_output:
    "A preference example's `preferred_output` or `non_preferred_output` is not exactly one assistant message.",
  identical_outputs: "A preference example's preferred and non-preferred outputs are the same text.",
  empty_content: "A message (or legacy `input`/`target`) is empty or only whitespace.",
  non_string_content: "`content` (or legacy `input`/`target`) is not a string.",
  too_many_tokens: "The example has more (estimated) tokens than the configured maximum per example.",
} as const;

/** A stable validator error code. */
export type DatasetErrorCode = keyof typeof DATASET_ERROR_CODES;
