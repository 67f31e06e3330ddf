"""The bindings componentize-py generated for the world being built, under one set of names.

componentize-py generates a `wit_world` package per build, for exactly one world, and the module
names depend on the world: the shared types are `wit_world.imports.types` in `transformer` but
`wit_world.imports.plugboard_plugin_types` in `source` and `sink` (there `types` would clash with
`wasi:http/types`, which becomes `wasi_http_types`), and only connectors have the HTTP modules.
Every other SDK module imports the bindings from here, so one SDK works in all three worlds.

Nothing here is for plugin authors: use the SDK's modules instead.
"""

from componentize_py_types import Err, Ok  # noqa: F401  (re-exported for the SDK)
from wit_world import exports
from wit_world.imports import logging as wasi_logging  # noqa: F401
from wit_world.imports import wasi_config_store, wasi_keyvalue_store  # noqa: F401

try:  # source and sink
    from wit_world.imports import plugboard_plugin_types as types
except ImportError:  # transformer
    from wit_world.imports import types  # type: ignore[no-redef]

try:  # source and sink: outbound HTTP
    from wit_world.imports import outgoing_handler, streams
    from wit_world.imports import wasi_http_types as http_types
except ImportError:  # transformer: no network
    outgoing_handler = streams = http_types = None  # type: ignore[assignment]

if hasattr(exports, "Transform"):
    WORLD = "transformer"
elif hasattr(exports, "Reader"):
    WORLD = "source"
elif hasattr(exports, "Writer"):
    WORLD = "sink"
else:  # pragma: no cover - a world Plugboard does not define
    WORLD = "unknown"
