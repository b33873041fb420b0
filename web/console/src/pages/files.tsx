import { useState } from "preact/hooks";
import { asApiError, type FileObject, type List } from "../api.ts";
import { ConfirmDialog, ErrorAlert, StatusBadge, TableWrap } from "../components.tsx";
import { useApi, useI18n } from "../context.ts";
import { usePolled } from "../hooks.ts";
import { formatBytes, formatTime } from "../lib/format.ts";
import { routeHref } from "../lib/route.ts";
import { percent } from "../lib/upload.ts";

const UNFINISHED = new Set(["pending_upload", "uploaded"]);

interface UploadState {
  readonly name: string;
  readonly percent: number;
  readonly done: boolean;
  readonly error?: string;
}

export function FilesPage() {
  const api = useApi();
  const { t, lang } = useI18n();
  const [upload, setUpload] = useState<UploadState | null>(null);
  const [toDelete, setToDelete] = useState<FileObject | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [actionError, setActionError] = useState<Error | null>(null);
  const files = usePolled(
    async () => (await api.get<List<FileObject>>("/files?limit=100&purpose=fine-tune")).data,
    [api],
    { intervalMs: 2000, keepPolling: (list) => list.some((file) => UNFINISHED.has(file.status)) },
  );

  const onFile = async (event: Event) => {
    const input = event.currentTarget as HTMLInputElement;
    const file = input.files?.[0];
    if (!file) return;
    setNotice(null);
    setUpload({ name: file.name, percent: 0, done: false });
    try {
      await api.upload(file, (loaded, total) =>
        setUpload({ name: file.name, percent: percent(loaded, total), done: false }),
      );
      setUpload({ name: file.name, percent: 100, done: true });
      await files.reload();
    } catch (caught) {
      const error = await asApiError(caught);
      setUpload({ name: file.name, percent: 0, done: true, error: error.message });
    } finally {
      input.value = "";
    }
  };

  const remove = async () => {
    if (!toDelete) return;
    try {
      await api.delete(`/files/${encodeURIComponent(toDelete.id)}`);
      setNotice(t("files.deleted", { name: toDelete.filename }));
      setActionError(null);
    } catch (caught) {
      setActionError(caught as Error);
    }
    setToDelete(null);
    await files.reload();
  };

  return (
    <>
      <h1>{t("files.heading")}</h1>
      <section class="card" aria-labelledby="upload-heading">
        <h2 id="upload-heading">{t("files.upload")}</h2>
        <p class="muted" id="upload-hint">
          {t("files.uploadHint")}
        </p>
        <label class="field">
          <span>{t("files.input")}</span>
          <input
            type="file"
            accept=".jsonl,.json,.txt,application/jsonl,application/x-ndjson,application/json,text/plain"
            aria-describedby="upload-hint"
            onChange={onFile}
            disabled={upload !== null && !upload.done}
          />
        </label>
        {upload && (
          <div class="upload-status">
            <progress
              max={100}
              value={upload.percent}
              aria-label={t("files.progress", { name: upload.name })}
            >
              {upload.percent}%
            </progress>
            <span aria-hidden="true">{upload.percent}%</span>
            <p role="status">
              {upload.done && !upload.error ? t("files.uploaded", { name: upload.name }) : ""}
            </p>
            <ErrorAlert
              error={
                upload.error ? t("files.uploadFailed", { name: upload.name, message: upload.error }) : null
              }
            />
          </div>
        )}
      </section>

      <section>
        <div class="section-head">
          <h2 id="files-heading">{t("files.list")}</h2>
          <button type="button" class="secondary small" onClick={() => files.reload()}>
            {t("common.refresh")}
          </button>
        </div>
        {notice && <p role="status">{notice}</p>}
        <ErrorAlert error={files.error ?? actionError} />
        {files.value === undefined && !files.error && <p class="muted">{t("common.loading")}</p>}
        {files.value?.length === 0 && <p>{t("files.empty")}</p>}
        {files.value && files.value.length > 0 && (
          <TableWrap label={t("files.list")}>
            <table>
              <thead>
                <tr>
                  <th scope="col">{t("files.name")}</th>
                  <th scope="col">{t("common.status")}</th>
                  <th scope="col">{t("files.size")}</th>
                  <th scope="col">{t("files.examples")}</th>
                  <th scope="col">{t("common.created")}</th>
                  <th scope="col">{t("common.actions")}</th>
                </tr>
              </thead>
              <tbody>
                {files.value.map((file) => (
                  <tr key={file.id} data-file-id={file.id}>
                    <th scope="row">
                      <a href={routeHref({ page: "file", id: file.id })}>{file.filename}</a>
                      <div class="muted small mono">{file.id}</div>
                    </th>
                    <td>
                      <StatusBadge status={file.status} />
                    </td>
                    <td>{formatBytes(file.bytes, lang)}</td>
                    <td>{file.statistics?.examples ?? "—"}</td>
                    <td>{formatTime(file.created_at, lang)}</td>
                    <td>
                      <button
                        type="button"
                        class="danger small"
                        aria-label={t("files.deleteLabel", { name: file.filename })}
                        onClick={() => setToDelete(file)}
                      >
                        {t("common.delete")}
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        )}
      </section>
      <ConfirmDialog
        open={toDelete !== null}
        title={t("files.confirmTitle")}
        confirmLabel={t("common.delete")}
        onConfirm={remove}
        onClose={() => setToDelete(null)}
      >
        <p>{t("files.confirmBody", { name: toDelete?.filename ?? "" })}</p>
      </ConfirmDialog>
    </>
  );
}
