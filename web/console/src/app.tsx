import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { Api, type ConsoleConfig, errorOf } from "./api.ts";
import { ApiContext, I18nContext, useI18n } from "./context.ts";
import { LANGUAGES, type Lang, preferredLang, translate } from "./i18n/index.ts";
import { parseRoute, type Route } from "./lib/route.ts";
import { FilePage } from "./pages/file.tsx";
import { FilesPage } from "./pages/files.tsx";
import { FineTuningPage } from "./pages/fine-tuning.tsx";
import { JobPage } from "./pages/job.tsx";
import { ModelsPage } from "./pages/models.tsx";
import { PlaygroundPage } from "./pages/playground.tsx";

/** The key lives in sessionStorage only: gone when the tab closes, never written anywhere else. */
const KEY_ITEM = "ft-console.api-key";
const LANG_ITEM = "ft-console.lang";

function initialLang(): Lang {
  const saved = localStorage.getItem(LANG_ITEM);
  if (saved === "en" || saved === "zh-CN") return saved;
  return preferredLang(navigator.languages?.length ? navigator.languages : [navigator.language]);
}

function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parseRoute(location.hash));
    addEventListener("hashchange", onChange);
    return () => removeEventListener("hashchange", onChange);
  }, []);
  return route;
}

const NAV = [
  { page: "files", href: "#/files", key: "nav.files" },
  { page: "fine-tuning", href: "#/fine-tuning", key: "nav.fineTuning" },
  { page: "models", href: "#/models", key: "nav.models" },
  { page: "playground", href: "#/playground", key: "nav.playground" },
] as const;

/** Which navigation entry a page belongs to (a file page to Files, a job page to Fine-tuning). */
function section(route: Route): string {
  if (route.page === "file") return "files";
  if (route.page === "job") return "fine-tuning";
  return route.page;
}

export function App({ config }: { config: ConsoleConfig }) {
  const [lang, setLang] = useState<Lang>(initialLang);
  const [key, setKey] = useState<string | null>(() => sessionStorage.getItem(KEY_ITEM));
  const route = useRoute();
  const i18n = useMemo(
    () => ({
      lang,
      t: (k: Parameters<typeof translate>[1], v?: Parameters<typeof translate>[2]) => translate(lang, k, v),
    }),
    [lang],
  );
  const api = useMemo(() => (key ? new Api(config, key) : null), [config, key]);
  const { t } = i18n;

  // After a navigation, focus goes to the new page's main content, as a page load would put it.
  const firstRoute = useRef(true);
  useEffect(() => {
    if (firstRoute.current) {
      firstRoute.current = false;
      return;
    }
    document.getElementById("main")?.focus({ preventScroll: false });
  }, [route]);

  useEffect(() => {
    document.documentElement.lang = lang;
    document.title = t("app.title");
  }, [lang, t]);

  const changeLang = (next: Lang) => {
    setLang(next);
    localStorage.setItem(LANG_ITEM, next);
  };
  const signIn = (newKey: string) => {
    sessionStorage.setItem(KEY_ITEM, newKey);
    setKey(newKey);
  };
  const signOut = () => {
    sessionStorage.removeItem(KEY_ITEM);
    setKey(null);
  };
  const current = section(route);

  return (
    <I18nContext.Provider value={i18n}>
      <ApiContext.Provider value={api}>
        <header class="site-header">
          <div class="brand">
            <span class="brand-title">{t("app.title")}</span>
            <span class="brand-subtitle">{t("app.subtitle")}</span>
          </div>
          <div class="header-tools">
            <label class="inline-field">
              <span>{t("lang.label")}</span>
              <select value={lang} onChange={(e) => changeLang(e.currentTarget.value as Lang)}>
                {LANGUAGES.map((l) => (
                  <option key={l.code} value={l.code} lang={l.code}>
                    {l.name}
                  </option>
                ))}
              </select>
            </label>
            {api && (
              <button type="button" class="secondary" onClick={signOut}>
                {t("signin.signOut")}
              </button>
            )}
          </div>
        </header>
        {api && (
          <nav class="site-nav" aria-label={t("nav.label")}>
            <ul>
              {NAV.map((item) => (
                <li key={item.page}>
                  <a href={item.href} aria-current={current === item.page ? "page" : undefined}>
                    {t(item.key)}
                  </a>
                </li>
              ))}
            </ul>
          </nav>
        )}
        <main id="main" tabIndex={-1}>
          {api ? <Page route={route} /> : <SignIn config={config} onSignedIn={signIn} />}
        </main>
      </ApiContext.Provider>
    </I18nContext.Provider>
  );
}

function Page({ route }: { route: Route }) {
  switch (route.page) {
    case "files":
      return <FilesPage />;
    case "file":
      return <FilePage id={route.id} />;
    case "fine-tuning":
      return <FineTuningPage />;
    case "job":
      return <JobPage id={route.id} />;
    case "models":
      return <ModelsPage />;
    case "playground":
      return <PlaygroundPage initialModel={route.model} />;
  }
}

function SignIn({ config, onSignedIn }: { config: ConsoleConfig; onSignedIn: (key: string) => void }) {
  const { t } = useI18n();
  const [key, setKey] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: Event) => {
    event.preventDefault();
    const trimmed = key.trim();
    setBusy(true);
    setError(null);
    try {
      // Any authenticated read tells a good key from a bad one; the API's own message says why.
      const response = await fetch(`${config.apiBaseUrl}/models`, {
        headers: { authorization: `Bearer ${trimmed}` },
      });
      if (!response.ok) throw await errorOf(response);
      onSignedIn(trimmed);
    } catch (caught) {
      setError((caught as Error).message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="signin card" aria-labelledby="signin-heading">
      <h1 id="signin-heading">{t("signin.heading")}</h1>
      <p>{t("signin.intro")}</p>
      <form onSubmit={submit}>
        <label class="field">
          <span>{t("signin.key")}</span>
          <input
            type="password"
            name="api-key"
            autoComplete="off"
            spellcheck={false}
            required
            value={key}
            onInput={(e) => setKey(e.currentTarget.value)}
          />
        </label>
        {error && (
          <p role="alert" class="error">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy}>
          {t("signin.submit")}
        </button>
        {busy && <span class="muted"> {t("signin.checking")}</span>}
      </form>
    </section>
  );
}
