import { useEffect, useMemo, useState } from "preact/hooks";
import {
  type BaseModelObject,
  type FineTunedModelObject,
  isFineTuned,
  type List,
  type ModelObject,
} from "../api.ts";
import { ConfirmDialog, CopyButton, ErrorAlert, StatusBadge, TableWrap } from "../components.tsx";
import { useApi, useI18n } from "../context.ts";
import { usePolled } from "../hooks.ts";
import { formatTime } from "../lib/format.ts";
import { routeHref } from "../lib/route.ts";
import { SNIPPET_KINDS, snippet } from "../lib/snippets.ts";

const SETTLING = new Set(["deploying"]);

export function ModelsPage() {
  const api = useApi();
  const { t, lang } = useI18n();
  const models = usePolled(async () => (await api.get<List<ModelObject>>("/models")).data, [api], {
    intervalMs: 3000,
    keepPolling: (list) =>
      list.some(
        (m) => isFineTuned(m) && (m.status === "pending" || SETTLING.has(m.deployment?.status ?? "")),
      ),
  });
  const mine = useMemo(() => (models.value ?? []).filter(isFineTuned), [models.value]);
  const base = useMemo(
    () => (models.value ?? []).filter((m): m is BaseModelObject => !isFineTuned(m)),
    [models.value],
  );
  const [toDelete, setToDelete] = useState<FineTunedModelObject | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [actionError, setActionError] = useState<Error | null>(null);
  const [snippetModel, setSnippetModel] = useState("");

  useEffect(() => {
    if (!snippetModel && mine.length)
      setSnippetModel((mine.find((m) => m.status === "ready") ?? mine[0]!).id);
  }, [mine, snippetModel]);

  const act = async (run: () => Promise<unknown>, done?: string) => {
    setActionError(null);
    setNotice(null);
    try {
      await run();
      if (done) setNotice(done);
    } catch (caught) {
      setActionError(caught as Error);
    }
    await models.reload();
  };

  const path = (code: string) => `/models/${encodeURIComponent(code)}`;
  const remove = async () => {
    const target = toDelete;
    setToDelete(null);
    if (!target) return;
    await act(() => api.delete(path(target.id)), t("models.deleted", { name: target.id }));
    if (snippetModel === target.id) setSnippetModel("");
  };

  return (
    <>
      <h1>{t("models.heading")}</h1>
      <section>
        <div class="section-head">
          <h2 id="mine-heading">{t("models.mine")}</h2>
          <button type="button" class="secondary small" onClick={() => models.reload()}>
            {t("common.refresh")}
          </button>
        </div>
        {notice && <p role="status">{notice}</p>}
        <ErrorAlert error={models.error ?? actionError} />
        {models.value && mine.length === 0 && <p>{t("models.empty")}</p>}
        {mine.length > 0 && (
          <TableWrap label={t("models.mine")}>
            <table>
              <thead>
                <tr>
                  <th scope="col">{t("models.code")}</th>
                  <th scope="col">{t("common.status")}</th>
                  <th scope="col">{t("models.base")}</th>
                  <th scope="col">{t("models.method")}</th>
                  <th scope="col">{t("models.deployment")}</th>
                  <th scope="col">{t("common.created")}</th>
                  <th scope="col">{t("common.actions")}</th>
                </tr>
              </thead>
              <tbody>
                {mine.map((m) => {
                  const deployment = m.deployment?.status ?? "undeployed";
                  return (
                    <tr key={m.id} data-model={m.id}>
                      <th scope="row">
                        <span class="mono">{m.id}</span>
                        {m.name && <div class="small">{m.name}</div>}
                        <div class="small">
                          <a href={routeHref({ page: "job", id: m.fine_tuning_job_id })}>
                            {m.fine_tuning_job_id}
                          </a>
                        </div>
                      </th>
                      <td>
                        <StatusBadge status={m.status} />
                      </td>
                      <td>{m.root}</td>
                      <td>{t(`jobs.method.${m.method}` as const)}</td>
                      <td>
                        {m.method === "full" ? (
                          <>
                            <StatusBadge status={deployment} />
                            {m.deployment?.failure_reason && (
                              <div class="small error-text">{m.deployment.failure_reason}</div>
                            )}
                          </>
                        ) : (
                          <span class="muted">{t("models.notNeeded")}</span>
                        )}
                      </td>
                      <td>{formatTime(m.created, lang)}</td>
                      <td class="row-actions">
                        {m.status === "ready" && (
                          <a
                            class="button small secondary"
                            href={routeHref({ page: "playground", model: m.id })}
                          >
                            {t("models.try")}
                          </a>
                        )}
                        {m.method === "full" &&
                          m.status === "ready" &&
                          (deployment === "undeployed" || deployment === "failed") && (
                            <button
                              type="button"
                              class="small"
                              onClick={() => act(() => api.post(`${path(m.id)}/deploy`))}
                            >
                              {t("models.deploy")}
                            </button>
                          )}
                        {m.method === "full" && (deployment === "deployed" || deployment === "deploying") && (
                          <button
                            type="button"
                            class="small secondary"
                            onClick={() => act(() => api.delete(`${path(m.id)}/deploy`))}
                          >
                            {t("models.undeploy")}
                          </button>
                        )}
                        {m.status !== "pending" && (
                          <button
                            type="button"
                            class="small danger"
                            aria-label={t("models.deleteLabel", { name: m.id })}
                            onClick={() => setToDelete(m)}
                          >
                            {t("common.delete")}
                          </button>
                        )}
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </TableWrap>
        )}
      </section>

      {mine.length > 0 && snippetModel && (
        <section class="card" aria-labelledby="snippets-heading">
          <h2 id="snippets-heading">{t("models.snippets")}</h2>
          <label class="field">
            <span>{t("models.snippetsFor")}</span>
            <select value={snippetModel} onChange={(e) => setSnippetModel(e.currentTarget.value)}>
              {mine.map((m) => (
                <option key={m.id} value={m.id}>
                  {m.id}
                </option>
              ))}
            </select>
          </label>
          <p class="muted">{t("models.snippetsHint")}</p>
          {SNIPPET_KINDS.map((kind) => {
            const code = snippet(kind, snippetModel, api.config.chatBaseUrl);
            const name = t(`snippet.${kind}` as const);
            return (
              <div class="snippet" key={kind}>
                <div class="snippet-head">
                  <h3>{name}</h3>
                  <CopyButton text={code} label={t("snippet.copyLabel", { name })} />
                </div>
                {/* biome-ignore lint/a11y/noNoninteractiveTabindex: a scrollable block must take focus to be scrolled by keyboard */}
                <pre tabIndex={0}>
                  <code>{code}</code>
                </pre>
              </div>
            );
          })}
        </section>
      )}

      <section>
        <h2 id="base-heading">{t("models.baseModels")}</h2>
        {base.length > 0 && (
          <TableWrap label={t("models.baseModels")}>
            <table>
              <thead>
                <tr>
                  <th scope="col">{t("play.model")}</th>
                  <th scope="col">{t("models.methods")}</th>
                  <th scope="col">{t("models.maxLength")}</th>
                </tr>
              </thead>
              <tbody>
                {base.map((m) => (
                  <tr key={m.id}>
                    <th scope="row" class="mono">
                      {m.id}
                    </th>
                    <td>{m.fine_tuning_methods.map((x) => t(`jobs.method.${x}` as const)).join(", ")}</td>
                    <td>{m.max_seq_length}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        )}
      </section>

      <ConfirmDialog
        open={toDelete !== null}
        title={t("models.confirmTitle")}
        confirmLabel={t("common.delete")}
        onConfirm={remove}
        onClose={() => setToDelete(null)}
      >
        <p>{t("models.confirmBody", { name: toDelete?.id ?? "" })}</p>
      </ConfirmDialog>
    </>
  );
}
