/**
 * A job's events as the console keeps them: `GET /fine_tuning/jobs/{id}/events` lists newest first,
 * 100 at most a page; each poll merges the newest page into what is known, and the loss curve is read
 * from the `metrics` events.
 */
export interface JobEvent {
  readonly id: string;
  readonly created_at: number;
  readonly level: string;
  readonly message: string;
  readonly type: "message" | "metrics" | string;
  readonly data: Readonly<Record<string, unknown>> | null;
}

/**
 * `known` (newest first) with `page` merged in; `reachedKnown` tells whether the page met an event
 * already known, i.e. whether older pages can hold nothing new.
 */
export function mergeEvents(
  known: readonly JobEvent[],
  page: readonly JobEvent[],
): { events: JobEvent[]; reachedKnown: boolean } {
  const ids = new Set(known.map((event) => event.id));
  const fresh = page.filter((event) => !ids.has(event.id));
  const reachedKnown = fresh.length < page.length;
  const events = [...fresh, ...known].sort(
    (a, b) => b.created_at - a.created_at || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0),
  );
  return { events, reachedKnown };
}

/** Points of the loss curve: per step, the training loss and the validation loss (null where not measured). */
export interface LossSeries {
  readonly steps: number[];
  readonly train: (number | null)[];
  readonly valid: (number | null)[];
}

function finite(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

/**
 * The loss curve of a job's events: every `metrics` event with a step and a training or validation
 * loss, one point per step (a later event for the same step wins), in step order.
 */
export function lossSeries(events: readonly JobEvent[]): LossSeries {
  const byStep = new Map<number, { train: number | null; valid: number | null; at: number }>();
  for (const event of events) {
    if (event.type !== "metrics" || !event.data) continue;
    const step = finite(event.data.step);
    if (step === null) continue;
    const train = finite(event.data.train_loss);
    const valid = finite(event.data.valid_loss);
    if (train === null && valid === null) continue;
    const seen = byStep.get(step);
    byStep.set(step, {
      train: train ?? seen?.train ?? null,
      valid: valid ?? seen?.valid ?? null,
      at: event.created_at,
    });
  }
  const steps = [...byStep.keys()].sort((a, b) => a - b);
  return {
    steps,
    train: steps.map((step) => byStep.get(step)!.train),
    valid: steps.map((step) => byStep.get(step)!.valid),
  };
}

/** True when any point has a validation loss: the chart shows that series only then. */
export function hasValidation(series: LossSeries): boolean {
  return series.valid.some((value) => value !== null);
}
