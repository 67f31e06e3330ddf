"""py-bulk-sink: POSTs each batch as NDJSON (one JSON document per line) to a bulk endpoint, the
way Elasticsearch `_bulk`, Loki/Vector/Logstash HTTP inputs and most log-ingestion APIs take it.

Config:
- `url` (required): where to POST, e.g. `https://logs.example.com/ingest`;
- `content_type` (optional): default `application/x-ndjson`;
- secret `token` (optional): sent as `Authorization: Bearer <token>`.

Each record must be JSON; it is re-encoded on one line (a record that is not JSON is invalid
input, named by index, and nothing is sent). An empty batch sends nothing.

The write report: a 2xx answer accepts the whole batch, unless it is an Elasticsearch-style bulk
answer (`{"items": [...]}`, one item per line) in which case items whose action has a `status` of
300 or more, or an `error`, count as failed. A 5xx or 429 answer is retryable (the batch is sent
again); another 4xx is an internal error naming the status.
"""

from plugboard_sdk import Report, config, http, log, records, sink


def failed_items(answer, sent):
    """How many lines a bulk answer reports failed, or 0 when it has no per-line items."""
    try:
        body = answer.json()
    except Exception:  # any 2xx body is fine: not JSON means no per-line report
        return 0
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list) or len(items) != sent:
        return 0
    failed = 0
    for item in items:
        # `{"index": {"status": 201}}` in Elasticsearch; `{"status": 201}` also accepted.
        result = next(iter(item.values()), {}) if isinstance(item, dict) and "status" not in item else item
        if isinstance(result, dict) and (result.get("status", 200) >= 300 or result.get("error")):
            failed += 1
    return failed


@sink
def write(batch):
    url = config.require("url")
    values = records.parse(batch)
    if not values:
        return Report(0, 0)
    body = b"".join(records.dumps(value) + b"\n" for value in values)
    headers = {"content-type": config.get("content_type", "application/x-ndjson")}
    token = config.get("token")
    if token:
        headers["authorization"] = f"Bearer {token}"

    answer = http.post(url, body, headers=headers).raise_for_status()
    failed = failed_items(answer, len(values))
    log.info("POST %s: HTTP %d, %d lines, %d failed", url, answer.status, len(values), failed)
    return Report(len(values) - failed, failed)
