import { createContext } from "preact";
import { useContext } from "preact/hooks";
import type { Api } from "./api.ts";
import { type Lang, type MessageKey, translate, type Vars } from "./i18n/index.ts";

export interface Session {
  readonly api: Api;
  readonly lang: Lang;
  readonly t: (key: MessageKey, vars?: Vars) => string;
}

export const I18nContext = createContext<{ lang: Lang; t: Session["t"] }>({
  lang: "en",
  t: (key, vars) => translate("en", key, vars),
});

export const ApiContext = createContext<Api | null>(null);

export function useI18n() {
  return useContext(I18nContext);
}

/** The signed-in API client; pages render only once signed in. */
export function useApi(): Api {
  const api = useContext(ApiContext);
  if (!api) throw new Error("useApi outside a signed-in session");
  return api;
}
