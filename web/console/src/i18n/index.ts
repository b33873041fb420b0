import { en, type MessageKey } from "./en.ts";
import { zh } from "./zh.ts";

export type { MessageKey } from "./en.ts";

/** The console's languages: English and Simplified Chinese. */
export type Lang = "en" | "zh-CN";

export const LANGUAGES: readonly { readonly code: Lang; readonly name: string }[] = [
  { code: "en", name: "English" },
  { code: "zh-CN", name: "简体中文" },
];

export const DICTIONARIES: Readonly<Record<Lang, Readonly<Record<MessageKey, string>>>> = {
  en,
  "zh-CN": zh,
};

export type Vars = Readonly<Record<string, string | number>>;

/** The string of `key` in `lang`, with each `{name}` replaced by `vars[name]`. */
export function translate(lang: Lang, key: MessageKey, vars?: Vars): string {
  const template = DICTIONARIES[lang][key] ?? en[key];
  if (!vars) return template;
  return template.replace(/\{(\w+)\}/g, (whole, name: string) =>
    vars[name] === undefined ? whole : String(vars[name]),
  );
}

/** The browser's first language the console speaks (any `zh*` is Simplified Chinese); English otherwise. */
export function preferredLang(languages: readonly string[]): Lang {
  for (const language of languages) {
    const lower = language.toLowerCase();
    if (lower.startsWith("zh")) return "zh-CN";
    if (lower.startsWith("en")) return "en";
  }
  return "en";
}
