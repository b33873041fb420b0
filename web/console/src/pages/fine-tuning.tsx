import { useEffect, useMemo, useState } from "preact/hooks";
import {
  ApiError,
  type BaseModelObject,
  type FileObject,
  isFineTuned,
  type JobObject,
  type List,
  type ModelObject,
} from "../api.ts";
import { ErrorAlert, StatusBadge, TableWrap } from "../components.tsx";
import { useApi, useI18n } from "../context.ts";
import { usePolled } from "../hooks.ts";
import { formatDuration, formatNumber, formatTime } from "../lib/format.ts";
import {
  boundOf,
  describeBound,
  type FormHyperparameter,
  fieldsFor,
  hyperparametersFromForm,
  modelCodeSyntaxOk,
} from "../lib/hyperparameters.ts";
import { routeHref } from "../lib/route.ts";

interface Estimate {
  readonly trained_tokens: number;
  readonly estimated_cost_usd: number;
  readonly estimated_duration_seconds: number;
  readonly estimated_gpu_hours: number;
  readonly queue_position: number;
  readonly model_code: string;
  readonly method: string;
  readonly resources?: {
    readonly nodes?: number;
    readonly gpus_per_node?: number;
    readonly instance_type?: string;
  };
  readonly hyperparameters: Record<string, number | string | null>;
  readonly assumptions?: {
    readonly device?: string;
    readonly gpus?: number;
    readonly instance_type?: string;
  };
}

type CodeHint = "checking" | "syntax" | "base" | "yours" | "available" | null;

export function FineTuningPage() {
  const api = useApi();
  const { t, lang } = useI18n();
  const models = usePolled(async () => (await api.get<List<ModelObject>>("/models")).data, [api]);
  const files = usePolled(
    async () => (await api.get<List<FileObject>>("/files?limit=100&purpose=fine-tune")).data,
    [api],
  );
  const jobs = usePolled(
    async () => (await api.get<List<JobObject>>("/fine_tuning/jobs?limit=50")).data,
    [api],
    {
      intervalMs: 5000,
      keepPolling: (list) => list.some((job) => !["succeeded", "failed", "cancelled"].includes(job.status)),
    },
  );

  const baseModels = useMemo(
    () => (models.value ?? []).filter((m): m is BaseModelObject => !isFineTuned(m)),
    [models.value],
  );
  const processed = useMemo(() => (files.value ?? []).filter((f) => f.status === "processed"), [files.value]);

  const [model, setModel] = useState("");
  const [method, setMethod] = useState<"lora" | "full">("lora");
  const [trainingFile, setTrainingFile] = useState("");
  const [validationFile, setValidationFile] = useState("");
  const [modelCode, setModelCode] = useState("");
  const [hp, setHp] = useState<Partial<Record<FormHyperparameter, string>>>({});
  const [estimate, setEstimate] = useState<Estimate | null>(null);
  const [busy, setBusy] = useState<"estimate" | "create" | null>(null);
  const [error, setError] = useState<Error | null>(null);
  const [codeHint, setCodeHint] = useState<CodeHint>(null);

  const chosen = baseModels.find((m) => m.id === model);
  const methods = chosen?.fine_tuning_methods ?? [];

  // Defaults once the lists arrive: tiny-chat or the first base model, the newest processed file.
  useEffect(() => {
    if (!model && baseModels.length)
      setModel((baseModels.find((m) => m.id === "tiny-chat") ?? baseModels[0]!).id);
  }, [baseModels, model]);
  useEffect(() => {
    if (!trainingFile && processed.length) setTrainingFile(processed[0]!.id);
  }, [processed, trainingFile]);
  useEffect(() => {
    if (methods.length && !methods.includes(method)) setMethod(methods[0]!);
  }, [methods, method]);

  // Any change to the request makes the estimate stale.
  useEffect(() => setEstimate(null), [model, method, trainingFile, validationFile, modelCode, hp]);

  // The availability hint: syntax here; a base model's name or one of the tenant's own codes through
  // GET /models/{code}. A code held by another tenant is only found by the create (409 model_code_taken).
  useEffect(() => {
    const code = modelCode.trim();
    if (!code) {
      setCodeHint(null);
      return;
    }
    if (!modelCodeSyntaxOk(code)) {
      setCodeHint("syntax");
      return;
    }
    setCodeHint("checking");
    let stale = false;
    const timer = setTimeout(async () => {
      try {
        const found = await api.get<ModelObject>(`/models/${encodeURIComponent(code)}`);
        if (!stale) setCodeHint(isFineTuned(found) ? "yours" : "base");
      } catch (caught) {
        if (!stale) setCodeHint(caught instanceof ApiError && caught.status === 404 ? "available" : null);
      }
    }, 350);
    return () => {
      stale = true;
      clearTimeout(timer);
    };
  }, [api, modelCode]);

  const parsed = hyperparametersFromForm(hp, method, chosen?.max_seq_length);

  const body = (dryRun: boolean) => ({
    model,
    training_file: trainingFile,
    ...(validationFile ? { validation_file: validationFile } : {}),
    method: { type: method, hyperparameters: parsed.hyperparameters },
    ...(modelCode.trim() ? { model_code: modelCode.trim() } : {}),
    ...(dryRun ? { dry_run: true } : {}),
  });

  const runEstimate = async (event: Event) => {
    event.preventDefault();
    if (parsed.invalid.length) return;
    setBusy("estimate");
    setError(null);
    try {
      setEstimate(await api.post<Estimate>("/fine_tuning/jobs", body(true)));
    } catch (caught) {
      setError(caught as Error);
    } finally {
      setBusy(null);
    }
  };

  const create = async () => {
    setBusy("create");
    setError(null);
    try {
      const job = await api.post<JobObject>("/fine_tuning/jobs", body(false));
      location.hash = routeHref({ page: "job", id: job.id });
    } catch (caught) {
      setError(caught as Error);
      setBusy(null);
    }
  };

  const codeHintText =
    codeHint === "checking"
      ? t("jobs.code.checking")
      : codeHint
        ? t(`jobs.code.${codeHint}` as const)
        : t("jobs.modelCodeHint");

  return (
    <>
      <h1>{t("jobs.heading")}</h1>
      <section class="card" aria-labelledby="create-heading">
        <h2 id="create-heading">{t("jobs.create")}</h2>
        <ErrorAlert error={models.error ?? files.error} />
        <form onSubmit={runEstimate} class="form-grid">
          <label class="field">
            <span>{t("jobs.baseModel")}</span>
            <select value={model} onChange={(e) => setModel(e.currentTarget.value)} required>
              {baseModels.map((m) => (
                <option key={m.id} value={m.id}>
                  {m.id}
                </option>
              ))}
            </select>
          </label>
          <label class="field">
            <span>{t("jobs.method")}</span>
            <select value={method} onChange={(e) => setMethod(e.currentTarget.value as "lora" | "full")}>
              {methods.map((m) => (
                <option key={m} value={m}>
                  {t(`jobs.method.${m}` as const)}
                </option>
              ))}
            </select>
          </label>
          <label class="field">
            <span>{t("jobs.trainingFile")}</span>
            <select value={trainingFile} onChange={(e) => setTrainingFile(e.currentTarget.value)} required>
              {processed.length === 0 && <option value="">{t("jobs.noProcessedFiles")}</option>}
              {processed.map((f) => (
                <option key={f.id} value={f.id}>
                  {f.filename} ({f.id})
                </option>
              ))}
            </select>
          </label>
          <label class="field">
            <span>{t("jobs.validationFile")}</span>
            <select value={validationFile} onChange={(e) => setValidationFile(e.currentTarget.value)}>
              <option value="">{t("common.none")}</option>
              {processed.map((f) => (
                <option key={f.id} value={f.id}>
                  {f.filename} ({f.id})
                </option>
              ))}
            </select>
          </label>
          <div class="field wide">
            <label class="field-label" for="model-code">
              {t("jobs.modelCode")}
            </label>
            <input
              id="model-code"
              type="text"
              value={modelCode}
              spellcheck={false}
              autoComplete="off"
              aria-describedby="code-hint"
              aria-invalid={codeHint === "syntax" || codeHint === "base" || codeHint === "yours"}
              onInput={(e) => setModelCode(e.currentTarget.value)}
            />
            <span id="code-hint" class={`hint hint-${codeHint ?? "none"}`} aria-live="polite">
              {codeHintText}
            </span>
          </div>
          <fieldset class="wide">
            <legend>{t("jobs.hyperparameters")}</legend>
            <div class="hp-grid">
              {fieldsFor(method).map((name) => {
                const bound = boundOf(name, chosen?.max_seq_length);
                const bad = parsed.invalid.includes(name);
                return (
                  <div class="field" key={name}>
                    <label class="field-label" for={`hp-${name}`}>
                      {t(`hp.${name}` as const)}
                    </label>
                    <input
                      id={`hp-${name}`}
                      type="text"
                      inputMode="decimal"
                      placeholder={t("common.auto")}
                      value={hp[name] ?? ""}
                      aria-invalid={bad}
                      aria-describedby={`hp-${name}-hint`}
                      onInput={(e) => setHp({ ...hp, [name]: e.currentTarget.value })}
                    />
                    <span id={`hp-${name}-hint`} class={bad ? "hint hint-syntax" : "hint"}>
                      {bad
                        ? t("hp.invalid", { name: t(`hp.${name}` as const), min: bound.min, max: bound.max })
                        : `${t("common.auto")} · ${describeBound(bound)}`}
                    </span>
                  </div>
                );
              })}
            </div>
          </fieldset>
          <div class="actions wide">
            <button
              type="submit"
              disabled={busy !== null || !model || !trainingFile || parsed.invalid.length > 0}
            >
              {busy === "estimate" ? t("jobs.estimating") : t("jobs.estimate")}
            </button>
          </div>
        </form>
        <ErrorAlert error={error} />
        {estimate && (
          <section class="estimate" aria-labelledby="estimate-heading">
            <h3 id="estimate-heading">{t("jobs.estimateHeading")}</h3>
            <dl class="facts">
              <dt>{t("est.tokens")}</dt>
              <dd data-field="trained_tokens">{formatNumber(estimate.trained_tokens, lang, 0)}</dd>
              <dt>{t("est.cost")}</dt>
              <dd data-field="estimated_cost_usd">
                US$ {formatNumber(estimate.estimated_cost_usd, lang, 4)}
              </dd>
              <dt>{t("est.duration")}</dt>
              <dd data-field="estimated_duration_seconds">
                {formatDuration(estimate.estimated_duration_seconds)}
              </dd>
              <dt>{t("est.gpuHours")}</dt>
              <dd>{formatNumber(estimate.estimated_gpu_hours, lang, 3)}</dd>
              <dt>{t("est.resources")}</dt>
              <dd data-field="resources">
                {t("est.resourcesDetail", {
                  nodes: estimate.resources?.nodes ?? 1,
                  instance: estimate.resources?.instance_type ?? estimate.assumptions?.instance_type ?? "—",
                  gpus: estimate.resources?.gpus_per_node ?? estimate.assumptions?.gpus ?? 0,
                })}
                {estimate.assumptions?.device ? ` (${estimate.assumptions.device})` : ""}
              </dd>
              <dt>{t("est.queue")}</dt>
              <dd data-field="queue_position">{estimate.queue_position}</dd>
              <dt>{t("est.modelCode")}</dt>
              <dd class="mono">{estimate.model_code}</dd>
              <dt>{t("est.hyperparameters")}</dt>
              <dd class="mono small">
                {Object.entries(estimate.hyperparameters)
                  .filter(([, v]) => v !== null)
                  .map(([k, v]) => `${k}=${v}`)
                  .join(", ")}
              </dd>
            </dl>
            <button type="button" onClick={create} disabled={busy !== null}>
              {busy === "create" ? t("jobs.creating") : t("jobs.createJob")}
            </button>
          </section>
        )}
      </section>

      <section>
        <div class="section-head">
          <h2 id="jobs-heading">{t("jobs.list")}</h2>
          <button type="button" class="secondary small" onClick={() => jobs.reload()}>
            {t("common.refresh")}
          </button>
        </div>
        <ErrorAlert error={jobs.error} />
        {jobs.value?.length === 0 && <p>{t("jobs.empty")}</p>}
        {jobs.value && jobs.value.length > 0 && (
          <TableWrap label={t("jobs.list")}>
            <table>
              <thead>
                <tr>
                  <th scope="col">{t("jobs.job")}</th>
                  <th scope="col">{t("jobs.model")}</th>
                  <th scope="col">{t("jobs.baseModel")}</th>
                  <th scope="col">{t("jobs.method")}</th>
                  <th scope="col">{t("common.status")}</th>
                  <th scope="col">{t("common.created")}</th>
                </tr>
              </thead>
              <tbody>
                {jobs.value.map((job) => (
                  <tr key={job.id}>
                    <th scope="row">
                      <a class="mono" href={routeHref({ page: "job", id: job.id })}>
                        {job.id}
                      </a>
                    </th>
                    <td class="mono">{job.model_code}</td>
                    <td>{job.model}</td>
                    <td>{t(`jobs.method.${job.training_type}` as const)}</td>
                    <td>
                      <StatusBadge status={job.status} />
                    </td>
                    <td>{formatTime(job.created_at, lang)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        )}
      </section>
    </>
  );
}
