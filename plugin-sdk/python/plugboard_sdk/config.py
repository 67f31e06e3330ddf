"""Configuration and secrets the operator granted, through `wasi:config/store`.

A secret is a config key the manifest lists under `secret_keys`; it is read the same way. The
host refuses a key the manifest does not list (`wasi:config` `error.upstream`), which becomes
`Denied` naming the key. A listed key the operator did not set reads as `None`.
"""

from __future__ import annotations

import json as _json
from typing import Any, Optional

from ._wit import Err, wasi_config_store
from .errors import Denied, Internal, InvalidConfig


def get(key: str, default: Optional[str] = None) -> Optional[str]:
    """The value of `key`, or `default` when it is not set. `Denied` when the key is not granted."""
    try:
        value = wasi_config_store.get(key)
    except Err as err:
        reason = getattr(err.value, "value", err.value)
        if isinstance(err.value, wasi_config_store.Error_Upstream):
            raise Denied(str(reason) if f"`{key}`" in str(reason) else f"config key `{key}`: {reason}") from None
        raise Internal(f"config key `{key}`: {reason}") from None
    return default if value is None else value


def require(key: str) -> str:
    """The value of `key`, which the plugin cannot work without: `InvalidConfig` when it is not set."""
    value = get(key)
    if value is None or value == "":
        raise InvalidConfig(f"config key `{key}` is not set")
    return value


def json(key: str, default: Any = None) -> Any:
    """The value of `key` parsed as JSON; `default` when not set, `InvalidConfig` when not JSON."""
    text = get(key)
    if text is None:
        return default
    try:
        return _json.loads(text)
    except ValueError as err:
        raise InvalidConfig(f"config key `{key}` is not valid JSON: {err}") from None
