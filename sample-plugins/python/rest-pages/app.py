"""py-rest-pages: reads a REST API that pages with `?page=N&per_page=M`; the records are the items.

Config:
- `url` (required): the collection, e.g. `https://api.example.com/v1/orders` (it may carry its own
  query; `page` and `per_page` are appended);
- `per_page` (optional): the page size asked for; default 100, or the read's `max_records` when
  that is smaller. Set it to keep page numbers stable if the batch size may change. It may not
  exceed `max_records`;
- `items_field` (optional): where the items are in an object answer; default `items`. An answer
  that is a JSON array is the items themselves;
- secret `token` (optional): sent as `Authorization: Bearer <token>`.

The cursor is the number of the next page to read; pages start at 1. A full page moves the cursor
to the next page. A short or empty page is the end for now: the cursor stays on that page, so the
next run reads it again and picks up what was appended to it since (its earlier items are read
again: delivery is at least once).

Errors: 5xx and 429 are retryable, other 4xx and an answer without items are internal, a host the
operator did not allow is denied.
"""

from plugboard_sdk import InvalidConfig, Internal, Page, config, http, log, records, source


def page_size(max_records):
    text = config.get("per_page")
    if text is None:
        return min(100, max_records)
    if not text.isdigit() or int(text) == 0:
        raise InvalidConfig(f"config key `per_page` must be a positive whole number, not `{text}`")
    if int(text) > max_records:
        raise InvalidConfig(f"per_page {text} is more than the {max_records} records one read may return")
    return int(text)


@source
def read(cursor, max_records):
    url = config.require("url")
    page = int(cursor) if cursor else 1
    per_page = page_size(max_records)
    headers = {"accept": "application/json"}
    token = config.get("token")
    if token:
        headers["authorization"] = f"Bearer {token}"

    answer = http.get(f"{url}{'&' if '?' in url else '?'}page={page}&per_page={per_page}", headers=headers)
    body = answer.raise_for_status().json()
    field = config.get("items_field", "items")
    items = body if isinstance(body, list) else body.get(field) if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise Internal(f"GET {answer.url}: the answer has no `{field}` list")
    items = items[:per_page]
    log.info("page %d: %d items", page, len(items))
    next_page = page + 1 if len(items) == per_page else page
    return Page([records.from_json(item) for item in items], str(next_page))
