import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import {
  type Api,
  ApiError,
  type FineTunedModelObject,
  isFineTuned,
  type List,
  type ModelObject,
} from "../api.ts";
import { ErrorAlert } from "../components.tsx";
import { useApi, useI18n } from "../context.ts";
import { usePolled } from "../hooks.ts";
import { readChatStream, StreamError } from "../lib/chat-stream.ts";

interface Message {
  readonly role: "user" | "assistant";
  readonly content: string;
}

interface Panel {
  readonly model: string;
  readonly messages: Message[];
  /** The reply being streamed, shown as it grows. */
  readonly pending: string | null;
  readonly error: string | null;
  readonly usage: { prompt_tokens?: number; completion_tokens?: number } | null;
}

const emptyPanel = (model: string): Panel => ({
  model,
  messages: [],
  pending: null,
  error: null,
  usage: null,
});

export function PlaygroundPage({ initialModel }: { initialModel?: string | undefined }) {
  const api = useApi();
  const { t } = useI18n();
  const models = usePolled(async () => (await api.get<List<ModelObject>>("/models")).data, [api]);
  const mine = useMemo(
    () => (models.value ?? []).filter(isFineTuned).filter((m) => m.status === "ready"),
    [models.value],
  );
  const base = useMemo(() => (models.value ?? []).filter((m) => !isFineTuned(m)), [models.value]);

  const [model, setModel] = useState(initialModel ?? "");
  const [system, setSystem] = useState("");
  const [temperature, setTemperature] = useState("");
  const [maxTokens, setMaxTokens] = useState("");
  const [message, setMessage] = useState("");
  const [compare, setCompare] = useState(false);
  const [panels, setPanels] = useState<Panel[]>([]);
  const [sending, setSending] = useState(false);
  const aborts = useRef<AbortController[]>([]);

  useEffect(() => {
    if (model || !models.value) return;
    setModel(mine[0]?.id ?? base.find((m) => m.id === "tiny-chat")?.id ?? base[0]?.id ?? "");
  }, [models.value, mine, base, model]);
  useEffect(
    () => () => {
      for (const a of aborts.current) a.abort();
    },
    [],
  );

  const chosen = (models.value ?? []).find((m) => m.id === model);
  const baseOfChosen = chosen && isFineTuned(chosen) ? (chosen as FineTunedModelObject).root : null;
  const comparing = compare && baseOfChosen !== null;
  const wanted = comparing ? [model, baseOfChosen] : [model];

  // The panels follow the chosen model(s); a change of model starts a new conversation.
  useEffect(() => {
    setPanels((current) => {
      const same = current.length === wanted.length && current.every((p, i) => p.model === wanted[i]);
      return same ? current : wanted.map((m) => current.find((p) => p.model === m) ?? emptyPanel(m));
    });
  }, [model, comparing, baseOfChosen]);

  const update = (index: number, change: (panel: Panel) => Panel) =>
    setPanels((current) => current.map((p, i) => (i === index ? change(p) : p)));

  const send = async (event: Event) => {
    event.preventDefault();
    const text = message.trim();
    if (!text || !model || sending) return;
    setMessage("");
    setSending(true);
    const targets = panels.length ? panels : wanted.map((m) => emptyPanel(m));
    const withUser = targets.map((p) => ({
      ...p,
      messages: [...p.messages, { role: "user" as const, content: text }],
      pending: "",
      error: null,
    }));
    setPanels(withUser);
    aborts.current = withUser.map(() => new AbortController());
    await Promise.all(
      withUser.map((panel, index) =>
        streamInto(api, panel, index, aborts.current[index]!.signal, {
          system,
          temperature,
          maxTokens,
          update,
          t,
        }),
      ),
    );
    setSending(false);
  };

  const stop = () => {
    for (const a of aborts.current) a.abort();
  };
  const clear = () => setPanels(wanted.map((m) => emptyPanel(m)));

  return (
    <>
      <h1>{t("play.heading")}</h1>
      <ErrorAlert error={models.error} />
      <form class="card playground-form" onSubmit={send}>
        <div class="form-grid">
          <label class="field">
            <span>{t("play.model")}</span>
            <select value={model} onChange={(e) => setModel(e.currentTarget.value)}>
              {model && !chosen && <option value={model}>{model}</option>}
              {mine.length > 0 && (
                <optgroup label={t("play.fineTunedGroup")}>
                  {mine.map((m) => (
                    <option key={m.id} value={m.id}>
                      {m.id}
                    </option>
                  ))}
                </optgroup>
              )}
              <optgroup label={t("play.baseGroup")}>
                {base.map((m) => (
                  <option key={m.id} value={m.id}>
                    {m.id}
                  </option>
                ))}
              </optgroup>
            </select>
          </label>
          <div class="field">
            <label class="check">
              <input
                type="checkbox"
                checked={compare}
                disabled={baseOfChosen === null}
                aria-describedby="compare-hint"
                onChange={(e) => setCompare(e.currentTarget.checked)}
              />
              <span>{t("play.compare")}</span>
            </label>
            <span id="compare-hint" class="hint">
              {baseOfChosen ? t("play.compareHint", { base: baseOfChosen }) : t("play.compareUnavailable")}
            </span>
          </div>
          <label class="field wide">
            <span>{t("play.system")}</span>
            <textarea rows={2} value={system} onInput={(e) => setSystem(e.currentTarget.value)} />
          </label>
          <label class="field">
            <span>{t("play.temperature")}</span>
            <input
              type="number"
              min={0}
              max={2}
              step={0.1}
              placeholder={t("common.auto")}
              value={temperature}
              onInput={(e) => setTemperature(e.currentTarget.value)}
            />
          </label>
          <label class="field">
            <span>{t("play.maxTokens")}</span>
            <input
              type="number"
              min={1}
              step={1}
              placeholder={t("common.auto")}
              value={maxTokens}
              onInput={(e) => setMaxTokens(e.currentTarget.value)}
            />
          </label>
          <label class="field wide">
            <span>{t("play.message")}</span>
            <textarea
              rows={3}
              value={message}
              onInput={(e) => setMessage(e.currentTarget.value)}
              onKeyDown={(e) => {
                if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
                  e.preventDefault();
                  e.currentTarget.form?.requestSubmit();
                }
              }}
            />
          </label>
        </div>
        <div class="actions">
          <button type="submit" disabled={sending || !model || !message.trim()}>
            {t("play.send")}
          </button>
          {sending && (
            <button type="button" class="secondary" onClick={stop}>
              {t("play.stop")}
            </button>
          )}
          <button type="button" class="secondary" onClick={clear} disabled={sending}>
            {t("play.clear")}
          </button>
        </div>
      </form>

      <div class={`panels panels-${panels.length}`}>
        {panels.map((panel) => (
          <section class="card panel" key={panel.model} aria-label={panel.model} data-model={panel.model}>
            <h2 class="mono">{panel.model}</h2>
            {panel.messages.length === 0 && panel.pending === null && <p class="muted">{t("play.empty")}</p>}
            <ol class="messages">
              {panel.messages.map((m, i) => (
                <li key={`${i}-${m.role}`} class={`message message-${m.role}`}>
                  <span class="who">{m.role === "user" ? t("play.you") : t("play.assistant")}</span>
                  <div class="content">{m.content}</div>
                </li>
              ))}
              {panel.pending !== null && (
                <li class="message message-assistant pending" aria-busy="true">
                  <span class="who">{t("play.assistant")}</span>
                  <div class="content" data-streaming="true">
                    {panel.pending || t("play.thinking")}
                  </div>
                </li>
              )}
            </ol>
            {panel.usage && (
              <p class="muted small">
                {t("play.usage", {
                  prompt: panel.usage.prompt_tokens ?? "?",
                  completion: panel.usage.completion_tokens ?? "?",
                })}
              </p>
            )}
            <ErrorAlert error={panel.error} />
          </section>
        ))}
      </div>
    </>
  );
}

/** Streams one model's answer into its panel; errors become the panel's message. */
async function streamInto(
  api: Api,
  panel: Panel,
  index: number,
  signal: AbortSignal,
  options: {
    system: string;
    temperature: string;
    maxTokens: string;
    update: (index: number, change: (panel: Panel) => Panel) => void;
    t: (key: "error.generic", vars: { message: string }) => string;
  },
): Promise<void> {
  const { update } = options;
  const body: Record<string, unknown> = {
    model: panel.model,
    messages: [
      ...(options.system.trim() ? [{ role: "system", content: options.system.trim() }] : []),
      ...panel.messages,
    ],
    stream_options: { include_usage: true },
  };
  if (options.temperature.trim() !== "") body.temperature = Number(options.temperature);
  if (options.maxTokens.trim() !== "") body.max_tokens = Number(options.maxTokens);
  let text = "";
  try {
    const response = await api.chat(body, signal);
    const outcome = await readChatStream(response.body!, (piece) => {
      text += piece;
      const shown = text;
      update(index, (p) => ({ ...p, pending: shown }));
    });
    update(index, (p) => ({
      ...p,
      messages: [...p.messages, { role: "assistant", content: outcome.text }],
      pending: null,
      usage: outcome.usage,
    }));
  } catch (caught) {
    const aborted = signal.aborted;
    const message =
      caught instanceof ApiError || caught instanceof StreamError
        ? caught.message
        : options.t("error.generic", { message: (caught as Error).message });
    update(index, (p) => ({
      ...p,
      messages: text ? [...p.messages, { role: "assistant", content: text }] : p.messages,
      pending: null,
      error: aborted ? null : message,
    }));
  }
}
