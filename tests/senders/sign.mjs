// Signs a webhook delivery with the sender's own npm library, as that sender does, for the
// webhook tests (tests/all/senders.rs). Reads {"scheme", "secret", "body", "timestamp"} as JSON
// on stdin; prints {"headers": {...}} on stdout.
//   stripe:  stripe's webhooks.generateTestHeaderString (what Stripe's SDKs offer for tests)
//   github:  @octokit/webhooks-methods sign() (GitHub's own Octokit)
//   verify-github: the same library's verify(), over {"requests": [{"headers", "body"}]}
import { createRequire } from "node:module";
import { sign, verify } from "@octokit/webhooks-methods";

const require = createRequire(import.meta.url);
const input = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
let headers;
switch (input.scheme) {
  case "stripe": {
    const Stripe = require("stripe");
    const stripe = new Stripe("sk_test_plugboard");
    const header = stripe.webhooks.generateTestHeaderString({
      payload: input.body,
      secret: input.secret,
      timestamp: input.timestamp,
    });
    headers = { "Stripe-Signature": header };
    break;
  }
  case "github":
    headers = { "X-Hub-Signature-256": await sign(input.secret, input.body) };
    break;
  case "verify-github": {
    // A receiver written for GitHub checking what Plugboard sent.
    const verdicts = [];
    for (const request of input.requests) {
      verdicts.push(await verify(input.secret, request.body, request.headers["x-hub-signature-256"] ?? ""));
    }
    process.stdout.write(JSON.stringify(verdicts));
    process.exit(0);
  }
  default:
    throw new Error(`no Node.js sender for scheme ${input.scheme}`);
}
process.stdout.write(JSON.stringify({ headers }));
