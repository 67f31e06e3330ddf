"""Records as JSON: parse a batch into Python values and build records from values.

A record's `value` is bytes and holds JSON by convention; its `key` and `headers` travel with it
through a flow (partitioning, identity, tracing), so a transformer that rewrites the value should
keep them: `with_json(record, value)` does. `parse(batch)` reports every record that is not JSON
in one `InvalidInput`, so a flow dead-letters exactly those and keeps the rest.

`Record` and `Header` are the WIT types themselves (`plugboard:plugin/types`):
`Record(key: bytes | None, value: bytes, headers: list[Header])`, `Header(name: str, value: bytes)`.
"""

from __future__ import annotations

import json as _json
from typing import Any, Iterable, List, Mapping, Optional, Tuple, Union

from ._wit import types
from .errors import InvalidInput

Record = types.Record
Header = types.Header

Text = Union[str, bytes]
Headers = Union[Mapping[str, Text], Iterable[Tuple[str, Text]], Iterable[Header]]


def _bytes(text: Text) -> bytes:
    return text if isinstance(text, bytes) else str(text).encode()


def dumps(value: Any) -> bytes:
    """`value` as compact UTF-8 JSON, the encoding the SDK writes records in."""
    return _json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def loads(record: Record) -> Any:
    """The JSON value of one record; `ValueError` (with the position) when it is not JSON."""
    return _json.loads(record.value)


def parse(batch: List[Record]) -> List[Any]:
    """The JSON value of every record, in order.

    Raises `InvalidInput` naming every record that is not UTF-8 JSON, with the parser's reason.
    """
    values: List[Any] = []
    issues = []
    for index, record in enumerate(batch):
        try:
            values.append(_json.loads(record.value))
        except ValueError as err:  # JSONDecodeError and UnicodeDecodeError
            issues.append((index, f"not JSON: {err}"))
    if issues:
        raise InvalidInput(issues)
    return values


def headers_of(headers: Optional[Headers]) -> List[Header]:
    """WIT headers from a dict, `(name, value)` pairs or `Header`s; values may be str or bytes."""
    if headers is None:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [h if isinstance(h, Header) else Header(str(h[0]), _bytes(h[1])) for h in items]


def from_json(value: Any, key: Optional[Text] = None, headers: Optional[Headers] = None) -> Record:
    """A new record holding `value` as JSON, with an optional key (str or bytes) and headers."""
    return Record(None if key is None else _bytes(key), dumps(value), headers_of(headers))


def with_json(record: Record, value: Any) -> Record:
    """`record` with its value replaced by `value` as JSON; its key and headers are kept."""
    return Record(record.key, dumps(value), list(record.headers))


def key(record: Record) -> Optional[str]:
    """The record's key as text (`None` when it has none; undecodable bytes are replaced)."""
    return None if record.key is None else record.key.decode(errors="replace")


def header(record: Record, name: str) -> Optional[str]:
    """The first header called `name` (case-insensitive) as text, if any."""
    for h in record.headers:
        if h.name.lower() == name.lower():
            return h.value.decode(errors="replace")
    return None
