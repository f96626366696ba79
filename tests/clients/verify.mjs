// A receiver's check with npm's `standardwebhooks` (pinned in package.json): reads
// {"secret", "body", "headers"} as JSON on stdin and prints {"verified": true, "payload"}
// or {"verified": false, "error"} (tests/clients/test_verifiers.py).
import { Webhook, WebhookVerificationError } from "standardwebhooks";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const { secret, body, headers } = JSON.parse(input);
try {
  const payload = new Webhook(secret).verify(body, headers);
  console.log(JSON.stringify({ verified: true, payload }));
} catch (e) {
  if (!(e instanceof WebhookVerificationError)) throw e;
  console.log(JSON.stringify({ verified: false, error: e.message }));
}
