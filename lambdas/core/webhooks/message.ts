import { z } from "zod";
import { TEST_EVENT_TYPE, WEBHOOK_EVENT_TYPES } from "./events.ts";
import type { DeliveryMessage } from "./ports.ts";

const seconds = z.number().int().nonnegative();

/** A `webhook-deliveries` queue message, as the fan-out, the API's test and the delivery function send it. */
export const deliveryMessageSchema = z.object({
  tenantId: z.string().min(1),
  endpointId: z.string().min(1),
  event: z.object({
    object: z.literal("event"),
    id: z.string().startsWith("evt_"),
    type: z.enum([...WEBHOOK_EVENT_TYPES, TEST_EVENT_TYPE]),
    created_at: seconds,
    data: z.object({ id: z.string().min(1) }),
  }),
  attempt: z.number().int().positive(),
  firstAttemptAt: seconds.optional(),
  notBefore: seconds.optional(),
}) satisfies z.ZodType<DeliveryMessage>;

/** The message from a queue body, or undefined when it is not one (dropped: redelivery would not fix it). */
export function parseDeliveryMessage(body: string): DeliveryMessage | undefined {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return undefined;
  }
  const parsed = deliveryMessageSchema.safeParse(json);
  return parsed.success ? parsed.data : undefined;
}
