import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import type { UploadHeaders } from "../core/files/file-record.ts";

export class ObjectNotFoundError extends Error {
  constructor(key: string) {
    super(`object ${key} not found`);
    this.name = "ObjectNotFoundError";
  }
}

/** One S3 bucket, as the platform uses it. */
export class ObjectStore {
  constructor(
    private readonly s3: S3Client,
    readonly bucket: string,
  ) {}

  async put(key: string, body: Buffer | string, contentType: string): Promise<void> {
    await this.s3.send(
      new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentType: contentType }),
    );
  }

  /**
   * Copies an object of another bucket to `key` here, inside S3 (no bytes pass through the function),
   * with `contentType` in place of the source's. Needs GetObject on the source, PutObject here.
   */
  async copyFrom(source: { bucket: string; key: string }, key: string, contentType: string): Promise<void> {
    await this.s3.send(
      new CopyObjectCommand({
        Bucket: this.bucket,
        Key: key,
        // Keys are URL-encoded in the copy source; the slashes stay.
        CopySource: `${source.bucket}/${source.key.split("/").map(encodeURIComponent).join("/")}`,
        MetadataDirective: "REPLACE",
        ContentType: contentType,
        // No tags come along: copying them would need s3:GetObjectTagging and s3:PutObjectTagging too.
        TaggingDirective: "REPLACE",
      }),
    );
  }

  /**
   * A presigned PUT that signs the key and every one of `headers` (`uploadHeaders` in
   * lambdas/core/files): S3 rejects an upload whose size or type differs from the signed ones, or that
   * leaves out `If-None-Match: *`, with 403; with it, a PUT to a key that already has an object fails
   * with 412. So a tenant cannot write elsewhere, more than declared, or twice.
   */
  async presignPut(key: string, headers: UploadHeaders, expiresIn: number): Promise<string> {
    return getSignedUrl(
      this.s3,
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: key,
        ContentLength: Number(headers["content-length"]),
        ContentType: headers["content-type"],
        IfNoneMatch: headers["if-none-match"],
      }),
      // The presigner leaves content-type unsigned unless told; the others are listed to be explicit.
      { expiresIn, signableHeaders: new Set(Object.keys(headers)) },
    );
  }

  async presignGet(key: string, expiresIn: number, filename?: string): Promise<string> {
    return getSignedUrl(
      this.s3,
      new GetObjectCommand({
        Bucket: this.bucket,
        Key: key,
        ...(filename
          ? { ResponseContentDisposition: `attachment; filename="${filename.replace(/"/g, "")}"` }
          : {}),
      }),
      { expiresIn },
    );
  }

  /** The object's bytes as a stream, read lazily; ObjectNotFoundError when it is gone. */
  async stream(key: string): Promise<{ body: ReadableStream<Uint8Array>; bytes: number; eTag: string }> {
    try {
      const object = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return {
        body: object.Body!.transformToWebStream() as ReadableStream<Uint8Array>,
        bytes: object.ContentLength ?? 0,
        eTag: object.ETag ?? "",
      };
    } catch (error) {
      if (isNotFound(error)) throw new ObjectNotFoundError(key);
      throw error;
    }
  }

  async getBytes(key: string): Promise<Buffer> {
    try {
      const object = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return Buffer.from(await object.Body!.transformToByteArray());
    } catch (error) {
      if (isNotFound(error)) throw new ObjectNotFoundError(key);
      throw error;
    }
  }

  async head(key: string): Promise<{ bytes: number; eTag: string; contentType?: string } | undefined> {
    try {
      const head = await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return {
        bytes: head.ContentLength ?? 0,
        eTag: head.ETag ?? "",
        ...(head.ContentType ? { contentType: head.ContentType } : {}),
      };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async delete(key: string): Promise<void> {
    await this.s3.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }

  /** The "folders" directly under `prefix` (which ends in `/`), e.g. `…/checkpoints/step-10/`. */
  async childPrefixes(prefix: string): Promise<string[]> {
    const prefixes: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.s3.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: prefix,
          Delimiter: "/",
          ContinuationToken: token,
        }),
      );
      for (const common of page.CommonPrefixes ?? []) if (common.Prefix) prefixes.push(common.Prefix);
      token = page.NextContinuationToken;
    } while (token);
    return prefixes;
  }

  /** The object parsed as JSON, or undefined when it does not exist. */
  async getJson(key: string): Promise<unknown> {
    try {
      return JSON.parse((await this.getBytes(key)).toString("utf8"));
    } catch (error) {
      if (error instanceof ObjectNotFoundError) return undefined;
      throw error;
    }
  }
}

function isNotFound(error: unknown): boolean {
  const name = (error as { name?: string }).name;
  return (
    name === "NoSuchKey" ||
    name === "NotFound" ||
    (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404
  );
}
