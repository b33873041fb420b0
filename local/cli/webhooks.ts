import { WEBHOOK_EVENT_TYPES } from "../../lambdas/core/webhooks/events.ts";
import { UsageError } from "./admin.ts";
import { oneId } from "./files.ts";
import type { CommandSpec, ListPage } from "./tenant-api.ts";

/** `ftctl webhooks …`: the tenant's signed webhook endpoints (`/v4/webhooks`). */

export const WEBHOOKS_USAGE = `ftctl webhooks create <url> --events e1,e2   register an endpoint; prints its whsec_ secret once
ftctl webhooks list
ftctl webhooks get <webhook id>             the endpoint and its recent deliveries
ftctl webhooks delete <webhook id>
ftctl webhooks test <webhook id>            send it a signed webhook.test event`;

const CREATE_USAGE = `usage: ftctl webhooks create <url> --events <event>[,<event>...]

Events: ${WEBHOOK_EVENT_TYPES.join(", ")}.
The signing secret (whsec_…) is printed this once: verify deliveries with the openai SDK's
client.webhooks.unwrap(body, headers, secret).`;

interface EndpointObject {
  readonly id: string;
  readonly url: string;
  readonly events: readonly string[];
  readonly created_at: number;
  readonly secret?: string;
  readonly recent_deliveries?: readonly DeliveryObject[];
}

interface DeliveryObject {
  readonly event_id: string;
  readonly type: string;
  readonly status: string;
  readonly attempts: number;
  readonly last_status_code: number | null;
  readonly last_error: string | null;
}

export const WEBHOOKS_COMMANDS: Record<string, CommandSpec> = {
  "webhooks create": {
    usage: CREATE_USAGE,
    options: { events: { type: "string" } },
    run: async (ctx, args, values) => {
      const [url] = args;
      const events = typeof values.events === "string" ? values.events.split(",").map((e) => e.trim()) : [];
      if (!url || args.length !== 1 || events.length === 0) throw new UsageError(CREATE_USAGE);
      const created = await ctx.api.request<EndpointObject>("POST", "/webhooks", { json: { url, events } });
      if (ctx.json) {
        ctx.out(JSON.stringify(created, null, 2));
        return 0;
      }
      ctx.out(`Created ${created.id} → ${created.url} (${created.events.join(", ")})`);
      ctx.out(`Signing secret (shown only now): ${created.secret}`);
      return 0;
    },
  },
  "webhooks list": {
    usage: "usage: ftctl webhooks list",
    options: {},
    run: async (ctx, args) => {
      if (args.length > 0) throw new UsageError("usage: ftctl webhooks list");
      const page = await ctx.api.request<ListPage<EndpointObject>>("GET", "/webhooks");
      if (ctx.json) {
        ctx.out(JSON.stringify(page, null, 2));
        return 0;
      }
      if (page.data.length === 0) ctx.out("no webhook endpoints");
      for (const endpoint of page.data)
        ctx.out(`${endpoint.id}  ${endpoint.url}  ${endpoint.events.join(",")}`);
      return 0;
    },
  },
  "webhooks get": {
    usage: "usage: ftctl webhooks get <webhook id>",
    options: {},
    run: async (ctx, args) => {
      const id = oneId(args, "usage: ftctl webhooks get <webhook id>");
      const endpoint = await ctx.api.request<EndpointObject>("GET", `/webhooks/${encodeURIComponent(id)}`);
      if (ctx.json) {
        ctx.out(JSON.stringify(endpoint, null, 2));
        return 0;
      }
      ctx.out(`${endpoint.id}  ${endpoint.url}  ${endpoint.events.join(",")}`);
      for (const d of endpoint.recent_deliveries ?? []) {
        const outcome = d.last_status_code ?? d.last_error ?? "";
        ctx.out(`  ${d.event_id}  ${d.type}  ${d.status}  attempts ${d.attempts}  ${outcome}`.trimEnd());
      }
      return 0;
    },
  },
  "webhooks delete": {
    usage: "usage: ftctl webhooks delete <webhook id>",
    options: {},
    run: async (ctx, args) => {
      const id = oneId(args, "usage: ftctl webhooks delete <webhook id>");
      const deleted = await ctx.api.request<{ id: string }>("DELETE", `/webhooks/${encodeURIComponent(id)}`);
      ctx.out(ctx.json ? JSON.stringify(deleted, null, 2) : `Deleted ${deleted.id}.`);
      return 0;
    },
  },
  "webhooks test": {
    usage: "usage: ftctl webhooks test <webhook id>",
    options: {},
    run: async (ctx, args) => {
      const id = oneId(args, "usage: ftctl webhooks test <webhook id>");
      const sent = await ctx.api.request<{ event_id: string }>(
        "POST",
        `/webhooks/${encodeURIComponent(id)}/test`,
      );
      ctx.out(ctx.json ? JSON.stringify(sent, null, 2) : `Queued test event ${sent.event_id} for ${id}.`);
      return 0;
    },
  },
};
