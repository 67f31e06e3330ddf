"""Log lines through `wasi:logging`; the host captures them per invocation (bounded) and shows them
with the result (`plugboard run` prints them on stderr, a server keeps them with the execution).

`print()` works too (it reaches the host as stderr lines), but has no level.
"""

from __future__ import annotations

from typing import Any

from ._wit import wasi_logging

CONTEXT = "plugin"


def _log(level, message: Any, args: tuple) -> None:
    text = str(message) % args if args else str(message)
    wasi_logging.log(level, CONTEXT, text)


def trace(message: Any, *args: Any) -> None:
    """Logs at trace level; `args`, if any, are %-formatted into `message`."""
    _log(wasi_logging.Level.TRACE, message, args)


def debug(message: Any, *args: Any) -> None:
    """Logs at debug level."""
    _log(wasi_logging.Level.DEBUG, message, args)


def info(message: Any, *args: Any) -> None:
    """Logs at info level."""
    _log(wasi_logging.Level.INFO, message, args)


def warn(message: Any, *args: Any) -> None:
    """Logs at warn level."""
    _log(wasi_logging.Level.WARN, message, args)


def error(message: Any, *args: Any) -> None:
    """Logs at error level."""
    _log(wasi_logging.Level.ERROR, message, args)
