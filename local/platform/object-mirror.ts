import { createHash, randomBytes } from "node:crypto";
import {
  closeSync,
  createReadStream,
  createWriteStream,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  CreateBucketCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutBucketVersioningCommand,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { BUCKETS, type BucketId } from "../../infra/resources/definitions.ts";
import { CONTRACT } from "../../lambdas/core/contract.ts";

/** What the mirror keeps of an object besides its bytes. */
interface MirroredObject {
  readonly key: string;
  readonly eTag: string;
  readonly bytes: number;
  readonly contentType?: string;
  readonly metadata?: Record<string, string>;
}

export interface ObjectMirrorOptions {
  readonly s3: S3Client;
  /** `{dir}/{bucket id}/`: one folder per bucket of the platform. */
  readonly dir: string;
  /** Physical bucket names by id. */
  readonly buckets: Readonly<Record<BucketId, string>>;
  readonly log?: (line: string) => void;
}

/**
 * Written last by the trainer (a checkpoint's manifest, a run's result): copied last too, so that a copy
 * cut short (kill -9) never keeps a manifest without the files it vouches for.
 */
const WRITTEN_LAST = [CONTRACT.s3.checkpointManifest, CONTRACT.s3.resultSummary];
const isWrittenLast = (key: string) => WRITTEN_LAST.some((name) => key === name || key.endsWith(`/${name}`));

/**
 * The platform's S3 objects kept on disk, because LocalStack community keeps S3 in memory only. Each
 * object is a file named by the SHA-256 of its key, beside a `.json` of its key, ETag, size, content
 * type and user metadata; both are written to a temporary name, flushed and renamed, the metadata
 * last, so an entry whose `.json` exists is complete (a copy cut short leaves only temporary files).
 *
 * `restore()` puts the mirrored objects back into fresh buckets at start, before anything else runs;
 * `sync()` brings the mirror up to date with the buckets (new, changed and deleted objects), and runs
 * every few seconds; `syncKeys()` and `syncPrefix()` copy at once where a record is about to say that
 * an object exists (a validated file, a trained model). Base models are not kept: every start uploads
 * them from `.cache/base-models`. Only current versions are kept (not the versioned bucket's history).
 */
export class ObjectMirror {
  private readonly index = new Map<BucketId, Map<string, MirroredObject>>();
  /** One copy pass at a time: a periodic sync and a write-through never write the same entry at once. */
  private queue: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: ObjectMirrorOptions) {
    for (const { id } of BUCKETS) {
      const entries = new Map<string, MirroredObject>();
      const root = join(options.dir, id);
      mkdirSync(root, { recursive: true });
      for (const shard of readdirSync(root)) {
        for (const file of readdirSync(join(root, shard))) {
          if (file.endsWith(".json")) {
            const entry = JSON.parse(readFileSync(join(root, shard, file), "utf8")) as MirroredObject;
            entries.set(entry.key, entry);
          } else if (file.includes(".tmp-")) {
            rmSync(join(root, shard, file), { force: true });
          }
        }
      }
      this.index.set(id, entries);
    }
  }

  /**
   * Creates the buckets (versioning as defined) where they are missing, then puts back every mirrored
   * object they lack. Runs before the bucket notifications exist, so nothing restored is sent to the
   * validator again. Objects present (a LocalStack that kept running) are left as they are.
   */
  async restore(): Promise<number> {
    let restored = 0;
    for (const def of BUCKETS) {
      const bucket = this.options.buckets[def.id];
      const entries = [...this.index.get(def.id)!.values()];
      if (entries.length === 0) continue;
      await this.ensureBucket(bucket, def.versioned);
      const present = new Set((await this.list(bucket, "")).map((object) => object.key));
      const missing = entries.filter((entry) => !present.has(entry.key));
      for (const batch of inBatches(ordered(missing), 4)) {
        await Promise.all(batch.map((entry) => this.put(def.id, entry)));
      }
      restored += missing.length;
      if (missing.length) this.options.log?.(`restored ${missing.length} objects into s3://${bucket}`);
    }
    return restored;
  }

  /** Every bucket: copies new and changed objects, forgets deleted ones. */
  sync(): Promise<void> {
    return this.serially(async () => {
      for (const { id } of BUCKETS) await this.syncUnder(id, "", true);
    });
  }

  /** The objects under `prefix` (new or changed) copied now; nothing is forgotten. */
  syncPrefix(bucket: BucketId, prefix: string): Promise<void> {
    return this.serially(() => this.syncUnder(bucket, prefix, false));
  }

  /** These objects copied now if new or changed, forgotten if deleted. */
  syncKeys(bucket: BucketId, keys: readonly string[]): Promise<void> {
    return this.serially(async () => {
      const name = this.options.buckets[bucket];
      for (const key of [...keys].sort((a, b) => Number(isWrittenLast(a)) - Number(isWrittenLast(b)))) {
        const head = await this.options.s3
          .send(new HeadObjectCommand({ Bucket: name, Key: key }))
          .catch((error: unknown) => {
            if (isNotFound(error)) return undefined;
            throw error;
          });
        if (!head) this.forget(bucket, key);
        else if (this.index.get(bucket)!.get(key)?.eTag !== head.ETag) await this.copy(bucket, key);
      }
    });
  }

  /** Syncs every `intervalMs` until `stop()`. */
  start(intervalMs: number): void {
    const tick = () => {
      this.timer = setTimeout(() => {
        this.sync()
          .catch((error: unknown) => this.options.log?.(`state sync failed: ${(error as Error).message}`))
          .finally(() => {
            if (this.timer) tick();
          });
      }, intervalMs);
    };
    tick();
  }

  /** Stops the periodic sync and makes a last one (Ctrl-C): what the buckets hold now is on disk. */
  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.sync();
  }

  private serially<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work);
    this.queue = next.catch(() => {});
    return next;
  }

  private async syncUnder(bucket: BucketId, prefix: string, forgetMissing: boolean): Promise<void> {
    const listed = (await this.list(this.options.buckets[bucket], prefix)).filter(
      (object) => !skipped(bucket, object.key),
    );
    const entries = this.index.get(bucket)!;
    for (const object of ordered(listed)) {
      if (entries.get(object.key)?.eTag !== object.eTag) await this.copy(bucket, object.key);
    }
    if (!forgetMissing) return;
    const current = new Set(listed.map((object) => object.key));
    for (const key of [...entries.keys()]) {
      if (key.startsWith(prefix) && !current.has(key)) this.forget(bucket, key);
    }
  }

  private async list(bucket: string, prefix: string): Promise<{ key: string; eTag: string }[]> {
    const objects: { key: string; eTag: string }[] = [];
    let token: string | undefined;
    do {
      const page = await this.options.s3.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix || undefined, ContinuationToken: token }),
      );
      for (const object of page.Contents ?? []) objects.push({ key: object.Key!, eTag: object.ETag ?? "" });
      token = page.NextContinuationToken;
    } while (token);
    return objects;
  }

  /** Object → `{h}` then `{h}.json`, each through a temporary file that is flushed and renamed. */
  private async copy(bucket: BucketId, key: string): Promise<void> {
    let object: GetObjectCommandOutput;
    try {
      object = await this.options.s3.send(
        new GetObjectCommand({ Bucket: this.options.buckets[bucket], Key: key }),
      );
    } catch (error) {
      if (!isNotFound(error)) throw error;
      this.forget(bucket, key);
      return;
    }
    const { data, meta } = this.paths(bucket, key);
    mkdirSync(join(data, ".."), { recursive: true });
    const temporary = `${data}.tmp-${randomBytes(4).toString("hex")}`;
    try {
      await pipeline(object.Body as Readable, createWriteStream(temporary));
      flush(temporary);
      renameSync(temporary, data);
    } finally {
      rmSync(temporary, { force: true });
    }
    const entry: MirroredObject = {
      key,
      eTag: object.ETag ?? "",
      bytes: statSync(data).size,
      ...(object.ContentType ? { contentType: object.ContentType } : {}),
      ...(object.Metadata && Object.keys(object.Metadata).length ? { metadata: object.Metadata } : {}),
    };
    writeDurably(meta, `${JSON.stringify(entry)}\n`);
    this.index.get(bucket)!.set(key, entry);
  }

  private async put(bucket: BucketId, entry: MirroredObject): Promise<void> {
    const { data } = this.paths(bucket, entry.key);
    if (statSync(data, { throwIfNoEntry: false })?.size !== entry.bytes) {
      this.options.log?.(
        `s3://${this.options.buckets[bucket]}/${entry.key}: its copy on disk is gone; dropped`,
      );
      this.forget(bucket, entry.key);
      return;
    }
    const result = await this.options.s3.send(
      new PutObjectCommand({
        Bucket: this.options.buckets[bucket],
        Key: entry.key,
        Body: createReadStream(data),
        ContentLength: entry.bytes,
        ...(entry.contentType ? { ContentType: entry.contentType } : {}),
        ...(entry.metadata ? { Metadata: entry.metadata } : {}),
      }),
    );
    // A multipart upload's ETag is not the MD5 a single PUT gets: remember the new one, not to copy it
    // back. (Datasets, whose ETag jobs pin with If-Match, are single PUTs: theirs stays the same.)
    if (result.ETag && result.ETag !== entry.eTag) {
      this.options.log?.(`s3://${this.options.buckets[bucket]}/${entry.key}: restored with a new ETag`);
      const updated = { ...entry, eTag: result.ETag };
      writeDurably(this.paths(bucket, entry.key).meta, `${JSON.stringify(updated)}\n`);
      this.index.get(bucket)!.set(entry.key, updated);
    }
  }

  private forget(bucket: BucketId, key: string): void {
    const { data, meta } = this.paths(bucket, key);
    // The metadata first: without it the entry no longer exists, whatever is left of its bytes.
    rmSync(meta, { force: true });
    rmSync(data, { force: true });
    this.index.get(bucket)!.delete(key);
  }

  private paths(bucket: BucketId, key: string): { data: string; meta: string } {
    const hash = createHash("sha256").update(key).digest("hex");
    const data = join(this.options.dir, bucket, hash.slice(0, 2), hash);
    return { data, meta: `${data}.json` };
  }

  private async ensureBucket(name: string, versioned: boolean): Promise<void> {
    try {
      await this.options.s3.send(new HeadBucketCommand({ Bucket: name }));
      return;
    } catch {
      await this.options.s3.send(new CreateBucketCommand({ Bucket: name }));
    }
    if (versioned) {
      await this.options.s3.send(
        new PutBucketVersioningCommand({ Bucket: name, VersioningConfiguration: { Status: "Enabled" } }),
      );
    }
  }
}

/** Base models are uploaded from `.cache/base-models` at every start; a copy on disk would only double them. */
const skipped = (bucket: BucketId, key: string) =>
  bucket === "artifacts" && key.startsWith(CONTRACT.s3.baseModelsPrefix);

function ordered<T extends { key: string }>(objects: readonly T[]): T[] {
  return [...objects].sort((a, b) => Number(isWrittenLast(a.key)) - Number(isWrittenLast(b.key)));
}

function inBatches<T>(items: readonly T[], size: number): T[][] {
  const batches: T[][] = [];
  for (let i = 0; i < items.length; i += size) batches.push(items.slice(i, i + size));
  return batches;
}

/** On disk before it is renamed into place: a kill -9 (or a crash of the machine) keeps all or nothing. */
function writeDurably(path: string, content: string): void {
  const temporary = `${path}.tmp-${randomBytes(4).toString("hex")}`;
  writeFileSync(temporary, content);
  flush(temporary);
  renameSync(temporary, path);
}

function flush(path: string): void {
  const fd = openSync(path, "r+");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function isNotFound(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === "NoSuchKey" || e.name === "NotFound" || e.$metadata?.httpStatusCode === 404;
}
