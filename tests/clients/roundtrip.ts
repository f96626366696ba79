// The TypeScript client's round trip (tests/clients/test_clients.py compiles it with the
// generated client under strict tsc and runs it with Node): create, list, get, patch,
// rotate, post an event, read its status and attempts. It prints what the receiver should
// have seen as one JSON line; any failed expectation exits non-zero.
import { createClient, createConfig } from "./client/client/index.js";
import {
  createWebhook,
  getEvent,
  getWebhook,
  listAttempts,
  listWebhooks,
  patchWebhook,
  postEvent,
  rotateWebhook,
} from "./client/sdk.gen.js";
import type { Webhook, WebhookCreate } from "./client/types.gen.js";

declare const process: { env: Record<string, string | undefined>; exit(code: number): never };

function expect(condition: unknown, what: string): asserts condition {
  if (!condition) throw new Error(`expected ${what}`);
}

function env(name: string): string {
  const value = process.env[name];
  expect(value, `$${name} to be set`);
  return value;
}

async function main() {
  const project = env("PROJECT");
  const client = createClient(createConfig({ baseUrl: env("HOOKLINE_URL"), auth: env("HOOKLINE_KEY") }));
  const path = { project };

  const draft: WebhookCreate = {
    name: "typescript client",
    url: `${env("RECEIVER")}/ts/{{ user.id }}`,
    events: ["order.placed"],
    headers: { "X-Client": "typescript", "X-Old": "gone soon" },
    body: { type: "json", fields: { order: "{{ data.order_id }}", who: "{{ user.id }}" } },
    auth: { type: "bearer", generate: true },
    timeout_seconds: 5,
  };
  const created = await createWebhook({ client, path, body: draft });
  expect(created.response.status === 201 && created.data, `201 from create, got ${created.response.status} ${JSON.stringify(created.error)}`);
  const webhook: Webhook = created.data;
  expect(webhook.signing_secret.startsWith("whsec_"), "a signing secret");
  expect(webhook.auth.type === "bearer" && webhook.auth.generated, "a generated bearer token");
  expect(webhook.auth.token.startsWith("hlt_") && !webhook.auth.token.includes("*"), "the token in full, once");

  const listed = await listWebhooks({ client, path });
  expect(listed.data?.data.map((w) => w.id).join() === webhook.id, "the listing to hold the webhook");

  const got = await getWebhook({ client, path: { project, id: webhook.id } });
  expect(got.data?.name === "typescript client", "get to return it");
  expect(got.data.body?.type === "json" && got.data.body.fields.order === "{{ data.order_id }}", "the body template back");

  const patched = await patchWebhook({
    client,
    path: { project, id: webhook.id },
    body: { name: "typescript client, renamed", headers: { "X-Old": null, "X-Patched": "yes" } },
  });
  expect(patched.data?.name === "typescript client, renamed", `the patch applied, got ${JSON.stringify(patched.error)}`);
  expect(JSON.stringify(patched.data.headers) === JSON.stringify({ "X-Client": "typescript", "X-Patched": "yes" }), "X-Old removed");

  const rotated = await rotateWebhook({ client, path: { project, id: webhook.id } });
  // Rotation renews the signing secret and a generated token, both shown once.
  expect(rotated.data && rotated.data.signing_secret !== webhook.signing_secret, "a new secret");
  expect(rotated.data.auth.type === "bearer" && rotated.data.auth.token !== webhook.auth.token, "a new token");
  const token = rotated.data.auth.token;

  const posted = await postEvent({
    client,
    path,
    body: { type: "order.placed", data: { order_id: "o-ts" }, user: { id: "u-ts" } },
  });
  expect(posted.response.status === 202 && posted.data?.matched === 1, `one match, got ${JSON.stringify(posted.data ?? posted.error)}`);
  const eventId = posted.data.event_id;

  let delivered = false;
  for (let i = 0; i < 150 && !delivered; i++) {
    const status = await getEvent({ client, path: { project, id: eventId } });
    delivered = status.data?.deliveries.length === 1 && status.data.deliveries[0].status === "delivered";
    if (!delivered) await new Promise((r) => setTimeout(r, 200));
  }
  expect(delivered, "the event delivered within 30 s");

  const attempts = await listAttempts({ client, path: { project, id: webhook.id }, query: { status: "delivered" } });
  expect(attempts.data, "the attempt log");

  const refused = await createWebhook({ client, path, body: { ...draft, url: "not a url" } });
  expect(refused.response.status === 422 && refused.error?.error.field === "url", "a 422 naming url");

  console.log(
    JSON.stringify({
      token,
      rotated_secret: rotated.data.signing_secret,
      event_id: eventId,
      attempts: attempts.data.data.map((a) => [a.event_id, a.attempt, a.status, a.status_code]),
    }),
  );
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
