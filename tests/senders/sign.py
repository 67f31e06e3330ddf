"""Signs a webhook delivery with the sender's own Python library, as that sender does, for the
webhook tests (tests/all/senders.rs). Reads {"scheme", "secret", "body", "timestamp", "id", ...}
as JSON on stdin; prints {"headers": {...}, "body": "..."} on stdout.

  standard-webhooks: standardwebhooks' Webhook.sign (the specification's reference library)
  slack:             slack_sdk's SignatureVerifier.generate_signature (Slack's SDK)
  cloudevents-*:     cloudevents' HTTP binding (the CNCF SDK), structured, binary or a batch
  shopify:           Shopify's documented recipe (base64 HMAC-SHA256 of the body); Shopify ships
                     no stand-alone signing library
"""

import base64
import datetime
import hashlib
import hmac
import json
import sys


def main():
    given = json.load(sys.stdin)
    scheme, secret, body = given["scheme"], given.get("secret", ""), given.get("body", "")
    timestamp = int(given.get("timestamp", 0))
    headers = {}
    if scheme == "standard-webhooks":
        from standardwebhooks.webhooks import Webhook

        sent = datetime.datetime.fromtimestamp(timestamp, tz=datetime.timezone.utc)
        signature = Webhook(secret).sign(given["id"], sent, body)
        headers = {"webhook-id": given["id"], "webhook-timestamp": str(timestamp), "webhook-signature": signature}
    elif scheme == "slack":
        from slack_sdk.signature import SignatureVerifier

        signature = SignatureVerifier(secret).generate_signature(timestamp=str(timestamp), body=body)
        headers = {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": signature}
    elif scheme == "shopify":
        digest = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
        headers = {"X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode()}
    elif scheme.startswith("cloudevents-"):
        from cloudevents.core.bindings import http
        from cloudevents.core.formats.json import JSONFormat
        from cloudevents.core.v1.event import CloudEvent

        events = [CloudEvent(attributes=e["attributes"], data=e.get("data")) for e in given["events"]]
        if scheme == "cloudevents-structured":
            message = http.to_structured_event(events[0])
        elif scheme == "cloudevents-binary":
            message = http.to_binary_event(events[0])
        else:
            # The SDK writes each event; a batch is the JSON array of them (CloudEvents JSON
            # format, section 4, with its own media type).
            written = [json.loads(JSONFormat().write(event)) for event in events]
            message = None
            body = json.dumps(written)
            headers = {"content-type": "application/cloudevents-batch+json"}
        if message is not None:
            headers = dict(message.headers)
            body = message.body.decode() if isinstance(message.body, bytes) else message.body
        headers["Authorization"] = "Bearer " + secret
    else:
        raise SystemExit("no Python sender for scheme " + scheme)
    json.dump({"headers": headers, "body": body}, sys.stdout)


main()
