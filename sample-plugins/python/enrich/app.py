"""py-enrich: adds data from a lookup table to each JSON record.

Config:
- `key` (required): the top-level field whose value is looked up, e.g. `country`;
- `table` (required): a JSON object from that value to the data to add, e.g.
  `{"DE": {"region": "EU", "vat": 19}, "US": {"region": "NA", "vat": 0}}`;
  numbers, booleans and null are looked up as their JSON text (`7` as "7", `true` as "true");
- `into` (optional): the field that receives the entry. Unset, the entry (then every entry must be
  a JSON object) is merged into the record, overwriting fields of the same name;
- `default` (optional, JSON): what a record gets when its field is missing or its value is not in
  the table. Unset, such a record passes through unchanged.

A record that is not a JSON object is invalid input (named by index); keys and headers are kept.
"""

import json

from plugboard_sdk import InvalidConfig, InvalidInput, config, log, records, transformer

MISSING = object()


def settings():
    key = config.require("key")
    table = config.json("table")
    if not isinstance(table, dict):
        raise InvalidConfig("config key `table` must be a JSON object from a value to its data")
    into = config.get("into") or None
    default = config.json("default", MISSING)
    if into is None:
        bad = [k for k, v in table.items() if not isinstance(v, dict)]
        if bad or (default is not MISSING and not isinstance(default, dict)):
            what = f"entry `{bad[0]}`" if bad else "`default`"
            raise InvalidConfig(f"without `into`, table entries are merged into records and must be objects; {what} is not")
    return key, table, into, default


JSON_TYPES = {dict: "object", list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}


def lookup_key(value):
    return value if isinstance(value, str) else json.dumps(value)


@transformer
def transform(batch):
    key, table, into, default = settings()
    values = records.parse(batch)
    issues = {i: f"expected a JSON object, found {JSON_TYPES[type(v)]}" for i, v in enumerate(values) if not isinstance(v, dict)}
    if issues:
        raise InvalidInput(issues)
    out, hits = [], 0
    for record, value in zip(batch, values):
        entry = table.get(lookup_key(value[key]), MISSING) if key in value else MISSING
        hits += entry is not MISSING
        if entry is MISSING:
            entry = default
        if entry is not MISSING:
            if into is None:
                value.update(entry)
            else:
                value[into] = entry
        out.append(records.with_json(record, value))
    log.info("enriched %d of %d records from `%s`", hits, len(batch), key)
    return out
