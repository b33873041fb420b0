import { describe, expect, it } from "vitest";
import { eventBody, eventFromChange, type StatusChange } from "../../../lambdas/core/webhooks/events.ts";

const job = (status: string) => ({ tenantId: "tn_a", jobId: "ftjob-1", status, model: "tiny-chat" });
const file = (status: string) => ({ tenantId: "tn_a", fileId: "file-1", status, bytes: 10 });
const change = (over: Partial<StatusChange>): StatusChange => ({
  source: "jobs",
  sequenceNumber: "100",
  createdAt: 1_700_000_000,
  ...over,
});

describe("events from status changes", () => {
  it.each([
    ["running", "succeeded", "fine_tuning.job.succeeded"],
    ["running", "failed", "fine_tuning.job.failed"],
    ["queued", "cancelled", "fine_tuning.job.cancelled"],
    ["running", "paused", "fine_tuning.job.paused"],
  ])("a job from %s to %s is %s", (from, to, type) => {
    const result = eventFromChange(change({ oldImage: job(from), newImage: job(to) }));
    expect(result).toEqual({
      tenantId: "tn_a",
      event: {
        object: "event",
        id: expect.stringMatching(/^evt_[0-9a-f]{24}$/),
        type,
        created_at: 1_700_000_000,
        data: { id: "ftjob-1" },
      },
    });
  });

  it.each([
    ["uploaded", "processed", "file.processed"],
    ["uploaded", "error", "file.error"],
  ])("a file from %s to %s is %s, with the file id as data.id", (from, to, type) => {
    const result = eventFromChange(change({ source: "files", oldImage: file(from), newImage: file(to) }));
    expect(result?.event).toMatchObject({ type, data: { id: "file-1" } });
  });

  it("counts an insert straight into an event status", () => {
    expect(eventFromChange(change({ source: "files", newImage: file("processed") }))?.event.type).toBe(
      "file.processed",
    );
  });

  it("ignores writes that keep the status, statuses without an event, removals and foreign items", () => {
    expect(
      eventFromChange(change({ oldImage: job("succeeded"), newImage: job("succeeded") })),
    ).toBeUndefined();
    expect(eventFromChange(change({ oldImage: job("queued"), newImage: job("running") }))).toBeUndefined();
    expect(eventFromChange(change({ oldImage: job("succeeded") }))).toBeUndefined();
    expect(eventFromChange(change({ newImage: { tenantId: "tn_a", status: "succeeded" } }))).toBeUndefined();
    // A file's statuses mean nothing on the jobs table, and the reverse.
    expect(
      eventFromChange(change({ source: "files", newImage: { ...file("x"), status: "succeeded" } })),
    ).toBeUndefined();
  });

  it("gives a redelivered record the same id, and another change of the same kind another id", () => {
    const first = eventFromChange(change({ oldImage: job("running"), newImage: job("paused") }));
    const again = eventFromChange(change({ oldImage: job("running"), newImage: job("paused") }));
    const later = eventFromChange(
      change({ oldImage: job("queued"), newImage: job("paused"), sequenceNumber: "200" }),
    );
    expect(again?.event.id).toBe(first?.event.id);
    expect(later?.event.id).not.toBe(first?.event.id);
  });

  it("serializes the payload exactly as OpenAI's webhook events look", () => {
    const result = eventFromChange(change({ oldImage: job("running"), newImage: job("succeeded") }))!;
    expect(JSON.parse(eventBody(result.event))).toEqual({
      object: "event",
      id: result.event.id,
      type: "fine_tuning.job.succeeded",
      created_at: 1_700_000_000,
      data: { id: "ftjob-1" },
    });
  });
});
