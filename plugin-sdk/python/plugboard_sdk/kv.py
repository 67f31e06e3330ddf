"""State kept between invocations, through `wasi:keyvalue/store`.

A plugin may open only the buckets its manifest lists under `capabilities.key_value` and the
operator grants; opening another raises `Denied` naming the bucket. The writes of one call commit
if and only if the call succeeds (see "State guarantee" in the SDK README).

Every host call is wrapped: an error the host returns becomes an SDK error here, because one left
to propagate as the bindings raise it would crash componentize-py's error lowering.

    with kv.open("seen") as seen:
        if not seen.exists(id):
            seen.set(id, "1")
"""

from __future__ import annotations

from typing import List, Optional, Union

from ._wit import Err, wasi_keyvalue_store as store
from .errors import Denied, Internal, InvalidConfig

Value = Union[str, bytes]


def _convert(err: Err, bucket: str) -> Exception:
    value = err.value
    if isinstance(value, store.Error_AccessDenied):
        return Denied(f"key-value bucket `{bucket}` not granted")
    if isinstance(value, store.Error_NoSuchStore):
        return InvalidConfig(f"no such key-value bucket `{bucket}`")
    return Internal(f"key-value bucket `{bucket}`: {getattr(value, 'value', value)}")


class Bucket:
    """An open bucket. Values are bytes; `set` takes str (stored as UTF-8) or bytes."""

    def __init__(self, name: str, handle) -> None:
        self.name = name
        self._handle = handle

    def _call(self, method: str, *args):
        try:
            return getattr(self._handle, method)(*args)
        except Err as err:
            raise _convert(err, self.name) from None

    def get(self, key: str) -> Optional[bytes]:
        """The value of `key`, or `None` when it is not set."""
        return self._call("get", key)

    def get_text(self, key: str) -> Optional[str]:
        """The value of `key` decoded as UTF-8, or `None`."""
        value = self.get(key)
        return None if value is None else value.decode()

    def set(self, key: str, value: Value) -> None:
        """Sets `key` to `value` (keys at most 1 KiB, values at most 1 MiB)."""
        self._call("set", key, value.encode() if isinstance(value, str) else bytes(value))

    def delete(self, key: str) -> None:
        """Removes `key` (nothing happens when it is not set)."""
        self._call("delete", key)

    def exists(self, key: str) -> bool:
        """Whether `key` is set."""
        return bool(self._call("exists", key))

    def keys(self) -> List[str]:
        """Every key in the bucket, following the host's pages."""
        keys: List[str] = []
        cursor = None
        while True:
            page = self._call("list_keys", cursor)
            keys.extend(page.keys)
            if page.cursor is None:
                return keys
            cursor = page.cursor

    def close(self) -> None:
        """Releases the bucket handle (also done by `with` and when the call ends)."""
        if self._handle is not None:
            self._handle.__exit__(None, None, None)
            self._handle = None

    def __enter__(self) -> "Bucket":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open(name: str) -> Bucket:  # noqa: A001 - the WASI name
    """Opens the bucket `name`; `Denied` when it is not granted."""
    try:
        return Bucket(name, store.open(name))
    except Err as err:
        raise _convert(err, name) from None
