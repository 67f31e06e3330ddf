"""Typed plugin errors: raise one of these and the host receives the matching WIT `plugin-error`.

The host passes a plugin error to its caller unchanged, and a flow acts on its kind: `Retryable`
is retried (`RetryAfter` no sooner than its delay), `InvalidInput` names the records to dead-letter, `Denied` is reported as the missing
capability. Raising a Python exception is the natural way to fail in Python, so the SDK converts at
the edge (see `plugin.py`); any other exception becomes `Internal` with its traceback.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence, Tuple, Union

Reasons = Union[str, Sequence[str]]


class PluginError(Exception):
    """The base of the SDK's typed errors; raise a subclass."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_wit(self):
        """The WIT `plugin-error` value for this error."""
        raise NotImplementedError


class InvalidInput(PluginError):
    """Some records do not fit what the plugin expects.

    `issues` names them by zero-based index in the input batch, each with one or more reasons:
    a mapping `{index: reasons}` or pairs `(index, reasons)`, where reasons is a string or a list
    of strings. The host dead-letters exactly these records.

        raise InvalidInput({1: "missing `id`"})
        raise InvalidInput([(0, ["not an object"]), (3, "total is negative")])
    """

    def __init__(self, issues: Union[Mapping[int, Reasons], Iterable[Tuple[int, Reasons]]]) -> None:
        pairs = issues.items() if isinstance(issues, Mapping) else issues
        self.issues = [(int(index), [reasons] if isinstance(reasons, str) else [str(r) for r in reasons])
                       for index, reasons in pairs]
        super().__init__("; ".join(f"record {i}: {', '.join(rs)}" for i, rs in self.issues))

    def to_wit(self):
        from ._wit import types
        return types.PluginError_InvalidInput([types.RecordIssue(i, rs) for i, rs in self.issues])


class InvalidConfig(PluginError):
    """The plugin's configuration is missing or malformed; the operator must fix it."""

    def to_wit(self):
        from ._wit import types
        return types.PluginError_InvalidConfig(self.message)


class Retryable(PluginError):
    """A transient failure (a 5xx answer, a refused connection, a timeout): retrying may succeed."""

    def to_wit(self):
        from ._wit import types
        return types.PluginError_Retryable(self.message)


class RetryAfter(Retryable):
    """A transient failure whose remote said how long to wait (a 429 or 503 with `Retry-After`):
    the flow's retry waits at least `delay_ms` milliseconds (up to its `max_backoff_ms`).

        raise RetryAfter("rate limited", delay_ms=30_000)
    """

    def __init__(self, message: str, delay_ms: int) -> None:
        super().__init__(message)
        # The WIT field is a u64; the host caps the wait far lower anyway.
        self.delay_ms = min(max(0, int(delay_ms)), 2**64 - 1)

    def to_wit(self):
        from ._wit import types
        return types.PluginError_RetryAfter(types.DelayedRetry(self.message, self.delay_ms))


class Denied(PluginError):
    """A capability the plugin needed (a host, a bucket, a config key) was not granted."""

    def to_wit(self):
        from ._wit import types
        return types.PluginError_Denied(self.message)


class Internal(PluginError):
    """Anything else; retrying will not help."""

    def to_wit(self):
        from ._wit import types
        return types.PluginError_Internal(self.message)
