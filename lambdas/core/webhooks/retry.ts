/**
 * When a failed delivery is tried again. Exponential: the first retry after `baseSeconds`, each next
 * one `factor` times later, no wait longer than `maxDelaySeconds`; no attempt later than
 * `windowSeconds` after the first, after which the delivery goes to the dead-letter queue.
 *
 * The defaults (10 s, ×3, 4 h, 24 h) make 13 attempts: 10 s, 30 s, 1.5 min, 4.5 min, 13.5 min, 40.5 min,
 * ~2 h, then every 4 h, the last one 24 h after the first at the latest. Tests shorten them through
 * the environment (`WEBHOOK_RETRY_*`, see {@link retryScheduleFromEnv}).
 */
export interface RetrySchedule {
  readonly baseSeconds: number;
  readonly factor: number;
  readonly maxDelaySeconds: number;
  readonly windowSeconds: number;
}

export const DEFAULT_RETRY_SCHEDULE: RetrySchedule = {
  baseSeconds: 10,
  factor: 3,
  maxDelaySeconds: 4 * 3600,
  windowSeconds: 24 * 3600,
};

/**
 * Seconds to wait before the attempt after attempt `attempt` (1-based) failed, or undefined when
 * there is none: the next one would come after the window (counted from the first attempt, which
 * happened `elapsedSeconds` ago).
 */
export function nextRetryDelay(
  attempt: number,
  elapsedSeconds: number,
  schedule: RetrySchedule = DEFAULT_RETRY_SCHEDULE,
): number | undefined {
  if (!Number.isInteger(attempt) || attempt < 1)
    throw new Error(`attempt must be a positive integer, got ${attempt}`);
  const delay = Math.min(schedule.baseSeconds * schedule.factor ** (attempt - 1), schedule.maxDelaySeconds);
  const rounded = Math.max(0, Math.ceil(delay));
  return elapsedSeconds + rounded > schedule.windowSeconds ? undefined : rounded;
}

/** Every delay of the schedule, when every attempt fails at once (its length + 1 is the attempt count). */
export function retryDelays(schedule: RetrySchedule = DEFAULT_RETRY_SCHEDULE): number[] {
  const delays: number[] = [];
  let elapsed = 0;
  for (let attempt = 1; ; attempt++) {
    const delay = nextRetryDelay(attempt, elapsed, schedule);
    if (delay === undefined) return delays;
    delays.push(delay);
    elapsed += delay;
  }
}

/** SQS's longest message delay: a longer wait is split into hops (the message is sent again when it arrives early). */
export const MAX_QUEUE_DELAY_SECONDS = 900;

/** Environment variables of the schedule (CONFIG_ENV in infra/resources/definitions.ts names the same). */
export const RETRY_ENV = {
  baseSeconds: "WEBHOOK_RETRY_BASE_SECONDS",
  factor: "WEBHOOK_RETRY_FACTOR",
  maxDelaySeconds: "WEBHOOK_RETRY_MAX_DELAY_SECONDS",
  windowSeconds: "WEBHOOK_RETRY_WINDOW_SECONDS",
} as const;

/** The schedule with any of its variables set in `env`; a value that is not a positive number throws. */
export function retryScheduleFromEnv(env: Readonly<Record<string, string | undefined>>): RetrySchedule {
  const read = (key: keyof RetrySchedule): number => {
    const raw = env[RETRY_ENV[key]];
    if (raw === undefined || raw === "") return DEFAULT_RETRY_SCHEDULE[key];
    const value = Number(raw);
    if (!Number.isFinite(value) || value <= 0)
      throw new Error(`${RETRY_ENV[key]} must be a positive number, got '${raw}'`);
    return value;
  };
  return {
    baseSeconds: read("baseSeconds"),
    factor: read("factor"),
    maxDelaySeconds: read("maxDelaySeconds"),
    windowSeconds: read("windowSeconds"),
  };
}
