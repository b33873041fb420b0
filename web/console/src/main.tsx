import "uplot/dist/uPlot.min.css";
import "./styles.css";
import { render } from "preact";
import { loadConfig } from "./api.ts";
import { App } from "./app.tsx";
import { preferredLang, translate } from "./i18n/index.ts";

const root = document.getElementById("app")!;

loadConfig().then(
  (config) => {
    // The "Loading…" placeholder of index.html goes; render diffs against what is there.
    root.textContent = "";
    render(<App config={config} />, root);
  },
  (error: Error) => {
    const lang = preferredLang(navigator.languages ?? [navigator.language]);
    root.innerHTML = "";
    const message = document.createElement("p");
    message.setAttribute("role", "alert");
    message.textContent = translate(lang, "app.configError", { message: error.message });
    root.append(message);
  },
);
