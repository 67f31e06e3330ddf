"""Plugboard's Python SDK: write a transformer, source or sink as a plain function.

    from plugboard_sdk import transformer, records, config

    @transformer
    def transform(batch):
        tag = config.get("tag", "untagged")
        return [records.with_json(r, {**v, "tag": tag}) for r, v in zip(batch, records.parse(batch))]

Build with componentize-py against Plugboard's WIT, for the world the manifest's `kind` names;
the decorator generates the export class componentize-py looks for. See README.md.

Modules: `records` (JSON records), `config`, `log`, `kv`, `http` (sources and sinks), and the
errors `InvalidInput`, `InvalidConfig`, `Retryable` (and `RetryAfter`, with a delay), `Denied`,
`Internal`.
"""

from . import config, http, kv, log, records
from .errors import Denied, Internal, InvalidConfig, InvalidInput, PluginError, RetryAfter, Retryable
from .plugin import Page, Report, sink, source, transformer
from .records import Header, Record

__all__ = [
    "config", "http", "kv", "log", "records",
    "PluginError", "InvalidInput", "InvalidConfig", "Retryable", "RetryAfter", "Denied", "Internal",
    "transformer", "source", "sink", "Page", "Report", "Record", "Header",
]
