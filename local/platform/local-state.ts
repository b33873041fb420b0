import { rmSync } from "node:fs";
import { join } from "node:path";
import { localStackUsing } from "../localstack/harness.ts";

/** Where `npm start` keeps one resource prefix's data between runs. */
export interface LocalStateDirs {
  /** `.cache/local-state/{prefix}/`: everything below is the platform's data. */
  readonly root: string;
  /** LocalStack's FILESYSTEM_ROOT: DynamoDB Local's tables (the harness's `stateDir`). */
  readonly localstack: string;
  /** The S3 objects (the platform's `stateDir`, local/platform/object-mirror.ts). */
  readonly objects: string;
  /** The local Batch runner's job logs and run records (`.cache/local-batch/{prefix}/`). */
  readonly batch: string;
}

export function localStateDirs(cacheDir: string, prefix: string): LocalStateDirs {
  const root = join(cacheDir, "local-state", prefix);
  return {
    root,
    localstack: join(root, "localstack"),
    objects: join(root, "s3"),
    batch: join(cacheDir, "local-batch", prefix),
  };
}

/**
 * `npm start -- --reset`: deletes the prefix's tables, objects and job logs, so the next start is
 * empty. Refused while a LocalStack of this checkout still runs on that state (a running `npm start`).
 */
export function resetLocalState(dirs: LocalStateDirs): void {
  const running = localStackUsing(dirs.localstack);
  if (running) {
    throw new Error(
      `a LocalStack (pid ${running.pid}, port ${running.port}, started by pid ${running.ownerPid}) still ` +
        `uses ${dirs.localstack}; stop that \`npm start\` first`,
    );
  }
  rmSync(dirs.root, { recursive: true, force: true });
  rmSync(dirs.batch, { recursive: true, force: true });
}
