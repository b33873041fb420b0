import { useState } from "preact/hooks";
import { ApiError, type FileObject } from "../api.ts";
import { ConfirmDialog, ErrorAlert, StatusBadge, TableWrap } from "../components.tsx";
import { useApi, useI18n } from "../context.ts";
import { usePolled } from "../hooks.ts";
import { formatBytes, formatNumber, formatTime } from "../lib/format.ts";
import { countsPerReason, sortedIssues, totalErrors } from "../lib/report.ts";

export function FilePage({ id }: { id: string }) {
  const api = useApi();
  const { t, lang } = useI18n();
  const [confirming, setConfirming] = useState(false);
  const [actionError, setActionError] = useState<Error | null>(null);
  const file = usePolled(() => api.get<FileObject>(`/files/${encodeURIComponent(id)}`), [api, id], {
    intervalMs: 2000,
    keepPolling: (f) => f.status === "uploaded" || f.status === "pending_upload",
  });
  const f = file.value;

  const remove = async () => {
    try {
      await api.delete(`/files/${encodeURIComponent(id)}`);
      location.hash = "#/files";
    } catch (caught) {
      setActionError(caught as Error);
      setConfirming(false);
    }
  };

  if (!f) {
    return (
      <>
        <h1>{t("file.heading", { name: id })}</h1>
        <ErrorAlert
          error={
            file.error instanceof ApiError && file.error.status === 404 ? t("file.notFound") : file.error
          }
        />
        {!file.error && <p class="muted">{t("common.loading")}</p>}
        <p>
          <a href="#/files">{t("common.back")}</a>
        </p>
      </>
    );
  }
  const stats = f.statistics;
  const n = (value: number | undefined, digits = 2) =>
    value === undefined ? "—" : formatNumber(value, lang, digits);

  return (
    <>
      <p class="breadcrumb">
        <a href="#/files">{t("common.back")}</a> <span class="mono">{f.id}</span>
      </p>
      <h1>{t("file.heading", { name: f.filename })}</h1>
      <ErrorAlert error={file.error ?? actionError} />
      <section class="card" aria-labelledby="stats-heading">
        <h2 id="stats-heading">{t("file.statistics")}</h2>
        <dl class="facts">
          <dt>{t("common.status")}</dt>
          <dd>
            <StatusBadge status={f.status} />
          </dd>
          {f.status_details && (
            <>
              <dt>{t("file.details")}</dt>
              <dd>{f.status_details}</dd>
            </>
          )}
          <dt>{t("files.size")}</dt>
          <dd>{formatBytes(f.bytes, lang)}</dd>
          <dt>{t("common.created")}</dt>
          <dd>{formatTime(f.created_at, lang)}</dd>
          <dt>{t("file.format")}</dt>
          <dd>{f.format ?? "—"}</dd>
          {stats && (
            <>
              <dt>{t("files.examples")}</dt>
              <dd>{n(stats.examples, 0)}</dd>
              <dt>{t("file.lines")}</dt>
              <dd>{n(stats.lines, 0)}</dd>
              {stats.tokens && (
                <>
                  <dt>{t("file.tokens")}</dt>
                  <dd>
                    {t("file.tokensDetail", {
                      total: n(stats.tokens.total, 0),
                      min: n(stats.tokens.min, 0),
                      max: n(stats.tokens.max, 0),
                      mean: n(stats.tokens.mean, 1),
                      method: stats.tokens.method,
                    })}
                  </dd>
                  <dt>{t("file.assistantTokens")}</dt>
                  <dd>{n(stats.tokens.assistant, 0)}</dd>
                </>
              )}
              {stats.turns && (
                <>
                  <dt>{t("file.turns")}</dt>
                  <dd>
                    {t("file.turnsDetail", {
                      min: n(stats.turns.min, 0),
                      max: n(stats.turns.max, 0),
                      mean: n(stats.turns.mean, 1),
                    })}
                  </dd>
                </>
              )}
              {stats.characters && (
                <>
                  <dt>{t("file.characters")}</dt>
                  <dd>
                    {n(stats.characters.system, 0)} / {n(stats.characters.user, 0)} /{" "}
                    {n(stats.characters.assistant, 0)}
                  </dd>
                </>
              )}
              {stats.duplicates && (
                <>
                  <dt>{t("file.duplicates")}</dt>
                  <dd>{n(stats.duplicates.count, 0)}</dd>
                </>
              )}
              {stats.overLength && Object.keys(stats.overLength).length > 0 && (
                <>
                  <dt>{t("file.overLength")}</dt>
                  <dd>
                    {Object.entries(stats.overLength)
                      .filter(([, count]) => count > 0)
                      .map(([model, count]) => `${model}: ${count}`)
                      .join(", ") || "0"}
                  </dd>
                </>
              )}
              {stats.byteOrderMark !== undefined && (
                <>
                  <dt>{t("file.bom")}</dt>
                  <dd>{stats.byteOrderMark ? t("common.yes") : t("common.no")}</dd>
                </>
              )}
            </>
          )}
        </dl>
        <button type="button" class="danger" onClick={() => setConfirming(true)}>
          {t("common.delete")}
        </button>
      </section>

      <ValidationReport file={f} />

      <ConfirmDialog
        open={confirming}
        title={t("files.confirmTitle")}
        confirmLabel={t("common.delete")}
        onConfirm={remove}
        onClose={() => setConfirming(false)}
      >
        <p>{t("files.confirmBody", { name: f.filename })}</p>
      </ConfirmDialog>
    </>
  );
}

function ValidationReport({ file }: { file: FileObject }) {
  const { t } = useI18n();
  const validation = file.validation;
  return (
    <section class="card" aria-labelledby="report-heading">
      <h2 id="report-heading">{t("file.report")}</h2>
      {!validation && <p>{t("file.notValidated")}</p>}
      {validation && validation.errors.length === 0 && Object.keys(validation.error_counts).length === 0 && (
        <p>{t("file.valid")}</p>
      )}
      {validation && (validation.errors.length > 0 || Object.keys(validation.error_counts).length > 0) && (
        <>
          <p>{t("file.errorCount", { count: totalErrors(validation) })}</p>
          {validation.errors_truncated && <p>{t("file.truncated", { listed: validation.errors.length })}</p>}
          <TableWrap label={t("file.countsCaption")}>
            <table>
              <caption>{t("file.countsCaption")}</caption>
              <thead>
                <tr>
                  <th scope="col">{t("file.reason")}</th>
                  <th scope="col">{t("file.count")}</th>
                  <th scope="col">{t("file.line")}</th>
                </tr>
              </thead>
              <tbody>
                {countsPerReason(validation).map((reason) => (
                  <tr key={reason.code}>
                    <th scope="row" class="mono">
                      {reason.code}
                    </th>
                    <td>{reason.count}</td>
                    <td>
                      {reason.lines.map((line) => (line === 0 ? t("file.wholeFile") : line)).join(", ")}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
          <TableWrap label={t("file.errorsCaption")}>
            <table>
              <caption>{t("file.errorsCaption")}</caption>
              <thead>
                <tr>
                  <th scope="col">{t("file.line")}</th>
                  <th scope="col">{t("file.path")}</th>
                  <th scope="col">{t("file.reason")}</th>
                  <th scope="col">{t("file.message")}</th>
                </tr>
              </thead>
              <tbody>
                {sortedIssues(validation).map((issue, index) => (
                  <tr key={`${issue.line}-${index}`} data-line={issue.line}>
                    <th scope="row">{issue.line === 0 ? t("file.wholeFile") : issue.line}</th>
                    <td class="mono">{issue.path || "—"}</td>
                    <td class="mono">{issue.code}</td>
                    <td>{issue.message}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        </>
      )}
    </section>
  );
}
