"""A transformer: each JSON object record gets a `tag` field with the configured value.

`records.parse` turns the batch into Python values (a record that is not JSON is reported as
invalid input, by index); `records.with_json` writes a value back, keeping the record's key and
headers. Raise `InvalidInput`, `InvalidConfig`, `Retryable`, `Denied` or `Internal` from
plugboard_sdk for a typed error; any other exception reaches the host as `internal` with its
traceback.
"""

from plugboard_sdk import config, log, records, transformer


@transformer
def transform(batch):
    tag = config.get("tag", "untagged")
    values = records.parse(batch)
    log.info("tagging %d records", len(values))
    out = []
    for record, value in zip(batch, values):
        if isinstance(value, dict):
            value["tag"] = tag
        out.append(records.with_json(record, value))
    return out
