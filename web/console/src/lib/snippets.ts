/**
 * Ready-to-copy code for calling a model: the zhipuai SDK, the openai SDK and curl, each with only the
 * base URL and the key set (the key is read from FT_API_KEY so that a copied snippet never holds it).
 */
export type SnippetKind = "zhipuai" | "openai" | "curl";

export const SNIPPET_KINDS: readonly SnippetKind[] = ["zhipuai", "openai", "curl"];

export function snippet(kind: SnippetKind, model: string, baseUrl: string): string {
  const m = JSON.stringify(model);
  const url = JSON.stringify(baseUrl);
  switch (kind) {
    case "zhipuai":
      return `# pip install zhipuai
import os
from zhipuai import ZhipuAI

client = ZhipuAI(api_key=os.environ["FT_API_KEY"], base_url=${url})
response = client.chat.completions.create(
    model=${m},
    messages=[{"role": "user", "content": "你好"}],
    stream=True,
)
for chunk in response:
    print(chunk.choices[0].delta.content or "", end="", flush=True)
`;
    case "openai":
      return `# pip install openai
import os
from openai import OpenAI

client = OpenAI(api_key=os.environ["FT_API_KEY"], base_url=${url})
stream = client.chat.completions.create(
    model=${m},
    messages=[{"role": "user", "content": "Hello"}],
    stream=True,
)
for chunk in stream:
    print(chunk.choices[0].delta.content or "", end="", flush=True)
`;
    case "curl":
      return `curl -N ${shellQuote(`${baseUrl}/chat/completions`)} \\
  -H "Authorization: Bearer $FT_API_KEY" \\
  -H "Content-Type: application/json" \\
  -d ${shellQuote(JSON.stringify({ model, messages: [{ role: "user", content: "Hello" }], stream: true }))}
`;
  }
}

/** Single quotes for a POSIX shell. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}
