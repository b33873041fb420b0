import { describe, expect, it } from "vitest";
import { DICTIONARIES, LANGUAGES, preferredLang, translate } from "../../../web/console/src/i18n/index.ts";

const placeholders = (text: string) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

describe("the console's dictionaries", () => {
  const en = DICTIONARIES.en;
  const zh = DICTIONARIES["zh-CN"];

  it("have the same keys in English and Simplified Chinese", () => {
    expect(Object.keys(zh).sort()).toEqual(Object.keys(en).sort());
    expect(LANGUAGES.map((l) => l.code)).toEqual(["en", "zh-CN"]);
  });

  it("have no empty string and the same {placeholders} for each key in both languages", () => {
    for (const key of Object.keys(en) as (keyof typeof en)[]) {
      expect(en[key].trim(), key).not.toBe("");
      expect(zh[key].trim(), key).not.toBe("");
      expect(placeholders(zh[key]), key).toEqual(placeholders(en[key]));
    }
  });

  it("name the navigation as the issue asks", () => {
    expect(
      ["nav.files", "nav.fineTuning", "nav.models", "nav.playground"].map((k) =>
        translate("en", k as "nav.files"),
      ),
    ).toEqual(["Files", "Fine-tuning", "Models", "Playground"]);
    expect(
      ["nav.files", "nav.fineTuning", "nav.models", "nav.playground"].map((k) =>
        translate("zh-CN", k as "nav.files"),
      ),
    ).toEqual(["文件", "微调", "模型", "体验中心"]);
    expect(translate("en", "lang.label")).toBe("Language");
    expect(translate("zh-CN", "lang.label")).toBe("语言");
  });

  it("fills placeholders and leaves unknown ones visible", () => {
    expect(translate("en", "files.progress", { name: "a.jsonl" })).toBe("Uploading a.jsonl");
    expect(translate("zh-CN", "files.progress", { name: "a.jsonl" })).toBe("正在上传 a.jsonl");
    expect(translate("en", "files.progress")).toBe("Uploading {name}");
  });

  it("follows the browser's first language it speaks, English otherwise", () => {
    expect(preferredLang(["zh-CN", "en"])).toBe("zh-CN");
    expect(preferredLang(["zh-TW"])).toBe("zh-CN");
    expect(preferredLang(["fr-FR", "en-GB", "zh-CN"])).toBe("en");
    expect(preferredLang(["de-DE"])).toBe("en");
    expect(preferredLang([])).toBe("en");
  });
});
