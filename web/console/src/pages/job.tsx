import { useCallback, useEffect, useMemo, useRef, useState } from "preact/hooks";
import {
  type Api,
  ApiError,
  type CheckpointObject,
  type JobObject,
  type List,
  TERMINAL_JOB_STATUSES,
} from "../api.ts";
import { ErrorAlert, StatusBadge, TableWrap } from "../components.tsx";
import { useApi, useI18n } from "../context.ts";
import type { MessageKey } from "../i18n/index.ts";
import { type JobEvent, lossSeries, mergeEvents } from "../lib/events.ts";
import { formatNumber, formatTime } from "../lib/format.ts";
import { routeHref } from "../lib/route.ts";
import { LossChart } from "../loss-chart.tsx";

/** How often a job that has not ended is read again: the loss curve gains its points at this pace. */
const POLL_MS = 2000;
/** Checkpoints are S3 listings: read them every few polls only. */
const CHECKPOINT_EVERY = 5;
/** At most this many pages of events at the first load (100 each). */
const MAX_EVENT_PAGES = 50;

const STAGES = ["validating_files", "queued", "running", "succeeded"] as const;

/** Every event newer than what is known, page by page until a known one (or the first) is reached. */
async function pollEvents(api: Api, jobId: string, known: readonly JobEvent[]): Promise<JobEvent[]> {
  let events = [...known];
  let after: string | undefined;
  for (let page = 0; page < MAX_EVENT_PAGES; page++) {
    const query = `limit=100${after ? `&after=${encodeURIComponent(after)}` : ""}`;
    const list = await api.get<List<JobEvent>>(
      `/fine_tuning/jobs/${encodeURIComponent(jobId)}/events?${query}`,
    );
    const merged = mergeEvents(events, list.data);
    events = merged.events;
    if (merged.reachedKnown || !list.has_more || list.data.length === 0) break;
    after = list.data[list.data.length - 1]!.id;
  }
  return events;
}

export function JobPage({ id }: { id: string }) {
  const api = useApi();
  const { t, lang } = useI18n();
  const [job, setJob] = useState<JobObject | null>(null);
  const [events, setEvents] = useState<JobEvent[]>([]);
  const [checkpoints, setCheckpoints] = useState<CheckpointObject[]>([]);
  const [error, setError] = useState<Error | null>(null);
  const [actionError, setActionError] = useState<Error | null>(null);
  const [busy, setBusy] = useState(false);
  const known = useRef<JobEvent[]>([]);
  const wake = useRef<() => void>(() => {});

  useEffect(() => {
    known.current = [];
    setJob(null);
    setEvents([]);
    setCheckpoints([]);
    setError(null);
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let round = 0;
    const tick = async () => {
      if (timer) clearTimeout(timer);
      let terminal = false;
      try {
        const path = `/fine_tuning/jobs/${encodeURIComponent(id)}`;
        const current = await api.get<JobObject>(path);
        if (stopped) return;
        setJob(current);
        terminal = TERMINAL_JOB_STATUSES.includes(current.status);
        const next = await pollEvents(api, id, known.current);
        if (stopped) return;
        if (next.length !== known.current.length) {
          known.current = next;
          setEvents(next);
        }
        if (round % CHECKPOINT_EVERY === 0 || terminal) {
          const list = await api.get<List<CheckpointObject>>(`${path}/checkpoints?limit=100`);
          if (!stopped) setCheckpoints(list.data);
        }
        setError(null);
      } catch (caught) {
        if (!stopped) setError(caught as Error);
      }
      round += 1;
      if (!stopped && !terminal) timer = setTimeout(tick, POLL_MS);
    };
    wake.current = () => void tick();
    void tick();
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    };
  }, [api, id]);

  const series = useMemo(() => lossSeries(events), [events]);

  const act = useCallback(
    async (action: "cancel" | "pause" | "resume") => {
      setBusy(true);
      setActionError(null);
      try {
        setJob(await api.post<JobObject>(`/fine_tuning/jobs/${encodeURIComponent(id)}/${action}`));
        wake.current();
      } catch (caught) {
        setActionError(caught as Error);
      } finally {
        setBusy(false);
      }
    },
    [api, id],
  );

  if (!job) {
    return (
      <>
        <h1>{t("job.heading", { id })}</h1>
        <ErrorAlert error={error instanceof ApiError && error.status === 404 ? t("job.notFound") : error} />
        {!error && <p class="muted">{t("common.loading")}</p>}
      </>
    );
  }

  const terminal = TERMINAL_JOB_STATUSES.includes(job.status);
  const canPause = job.status === "running" || job.status === "queued" || job.status === "validating_files";
  const canResume = job.status === "paused";

  return (
    <>
      <p class="breadcrumb">
        <a href="#/fine-tuning">{t("common.back")}</a> <span class="mono">{job.id}</span>
      </p>
      <h1>{t("job.heading", { id: job.model_code })}</h1>
      <ErrorAlert error={error} />
      <section class="card" aria-labelledby="timeline-heading">
        <h2 id="timeline-heading">{t("job.timeline")}</h2>
        <Timeline status={job.status} />
        <dl class="facts">
          <dt>{t("common.status")}</dt>
          <dd>
            <StatusBadge status={job.status} label={stageLabel(t, job.status)} />
          </dd>
          <dt>{t("common.id")}</dt>
          <dd class="mono">{job.id}</dd>
          <dt>{t("job.baseModel")}</dt>
          <dd>{job.model}</dd>
          <dt>{t("jobs.method")}</dt>
          <dd>{t(`jobs.method.${job.training_type}` as const)}</dd>
          <dt>{t("job.modelCode")}</dt>
          <dd class="mono">{job.model_code}</dd>
          <dt>{t("jobs.trainingFile")}</dt>
          <dd>
            <a class="mono" href={routeHref({ page: "file", id: job.training_file })}>
              {job.training_file}
            </a>
          </dd>
          {job.validation_file && (
            <>
              <dt>{t("jobs.validationFile")}</dt>
              <dd>
                <a class="mono" href={routeHref({ page: "file", id: job.validation_file })}>
                  {job.validation_file}
                </a>
              </dd>
            </>
          )}
          <dt>{t("common.created")}</dt>
          <dd>{formatTime(job.created_at, lang)}</dd>
          {job.trained_tokens !== null && (
            <>
              <dt>{t("job.trainedTokens")}</dt>
              <dd>{formatNumber(job.trained_tokens, lang, 0)}</dd>
            </>
          )}
          {!terminal && job.estimated_finish && (
            <>
              <dt>{t("job.estimatedFinish")}</dt>
              <dd>{formatTime(job.estimated_finish, lang)}</dd>
            </>
          )}
          {job.finished_at && (
            <>
              <dt>{t("job.finished")}</dt>
              <dd>{formatTime(job.finished_at, lang)}</dd>
            </>
          )}
          {job.error && (
            <>
              <dt>{t("job.error")}</dt>
              <dd class="error-text">{job.error.message ?? job.error.code}</dd>
            </>
          )}
        </dl>
        <div class="actions">
          {job.status === "succeeded" && (
            <a class="button" href={routeHref({ page: "playground", model: job.model_code })}>
              {t("job.chat")}
            </a>
          )}
          {canPause && (
            <button type="button" class="secondary" disabled={busy} onClick={() => act("pause")}>
              {t("job.pause")}
            </button>
          )}
          {canResume && (
            <button type="button" class="secondary" disabled={busy} onClick={() => act("resume")}>
              {t("job.resume")}
            </button>
          )}
          {!terminal && (
            <button type="button" class="danger" disabled={busy} onClick={() => act("cancel")}>
              {t("job.cancel")}
            </button>
          )}
        </div>
        <ErrorAlert error={actionError} />
      </section>

      <section class="card" aria-labelledby="loss-heading">
        <h2 id="loss-heading">{t("job.lossCurve")}</h2>
        <LossChart series={series} />
      </section>

      <section class="card">
        <h2 id="checkpoints-heading">{t("job.checkpoints")}</h2>
        {checkpoints.length === 0 ? (
          <p>{t("job.noCheckpoints")}</p>
        ) : (
          <TableWrap label={t("job.checkpoints")}>
            <table>
              <thead>
                <tr>
                  <th scope="col">{t("job.checkpointStep")}</th>
                  <th scope="col">{t("job.checkpointName")}</th>
                  <th scope="col">{t("job.checkpointMetrics")}</th>
                  <th scope="col">{t("common.created")}</th>
                </tr>
              </thead>
              <tbody>
                {checkpoints.map((c) => (
                  <tr key={c.id}>
                    <th scope="row">{c.step_number}</th>
                    <td class="mono">{c.fine_tuned_model_checkpoint}</td>
                    <td class="mono small">
                      {Object.entries(c.metrics)
                        .filter(([, v]) => typeof v === "number")
                        .map(([k, v]) => `${k}=${formatNumber(v as number, "en", 4)}`)
                        .join(", ")}
                    </td>
                    <td>{formatTime(c.created_at, lang)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        )}
      </section>

      <section class="card">
        <h2 id="events-heading">{t("job.events")}</h2>
        {events.length === 0 ? (
          <p>{t("job.noEvents")}</p>
        ) : (
          <TableWrap label={t("job.events")} class="events">
            <table>
              <thead>
                <tr>
                  <th scope="col">{t("job.time")}</th>
                  <th scope="col">{t("job.level")}</th>
                  <th scope="col">{t("file.message")}</th>
                </tr>
              </thead>
              <tbody>
                {events.slice(0, 200).map((event) => (
                  <tr key={event.id} class={`level-${event.level}`}>
                    <td>{formatTime(event.created_at, lang)}</td>
                    <td>{event.level}</td>
                    <td>{event.message}</td>
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

function stageLabel(t: (key: MessageKey) => string, status: string): string {
  const key = `job.stage.${status}`;
  return key in STAGE_KEYS ? t(key as MessageKey) : status.replace(/_/g, " ");
}

const STAGE_KEYS: Record<string, true> = {
  "job.stage.validating_files": true,
  "job.stage.queued": true,
  "job.stage.running": true,
  "job.stage.paused": true,
  "job.stage.succeeded": true,
  "job.stage.failed": true,
  "job.stage.cancelled": true,
};

/** The way a job goes, with the step it is at: done steps, the current one, the ones to come. */
function Timeline({ status }: { status: string }) {
  const { t } = useI18n();
  const ending = status === "failed" || status === "cancelled" ? status : "succeeded";
  const stages: string[] = [...STAGES.slice(0, 3), ...(status === "paused" ? ["paused"] : []), ending];
  const reached = status === "failed" || status === "cancelled" ? stages.length - 1 : stages.indexOf(status);
  return (
    <ol class="timeline">
      {stages.map((stage, index) => {
        const state = index < reached ? "done" : index === reached ? "current" : "todo";
        return (
          <li
            key={stage}
            class={`stage-${state} stage-${stage}`}
            aria-current={state === "current" ? "step" : undefined}
          >
            {stageLabel(t, stage)}
          </li>
        );
      })}
    </ol>
  );
}
