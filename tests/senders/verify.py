"""Verifies webhooks Plugboard sent (the webhook-sink sample) with Svix's own library, as a
receiver behind Svix would. Reads {"secret": "whsec_…", "requests": [{"headers": {...},
"body": "..."}]} as JSON on stdin; prints one verdict per request, in order: "ok" or the error.
"""

import json
import sys

from svix.webhooks import Webhook, WebhookVerificationError


def main():
    given = json.load(sys.stdin)
    receiver = Webhook(given["secret"])
    verdicts = []
    for request in given["requests"]:
        try:
            receiver.verify(request["body"], request["headers"])
            verdicts.append("ok")
        except WebhookVerificationError as err:
            verdicts.append(f"refused: {err}")
    json.dump(verdicts, sys.stdout)


main()
