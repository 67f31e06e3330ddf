"""A small blocking HTTP client over the raw `wasi:http/outgoing-handler` bindings, for sources and
sinks (a transformer has no network).

Why not `urllib` or componentize-py's `poll_loop.py`: the standard library has no sockets in a
component, and `poll_loop.py` is asyncio-based and imports `wit_world.imports.types`, which in the
connector worlds is not the wasi:http types module, so it fails to import. This client makes one
request at a time and blocks on the host's pollables, which is what a connector's `read` or
`write` needs.

Failures become SDK errors, so a plugin usually needs no `try`:

- a host the operator did not allow (`error-code.HTTP-request-denied`) -> `Denied` naming it
  (the host reports `capability-denied`);
- a malformed URL or header -> `InvalidConfig` (URLs usually come from config);
- a refused connection, a timeout, a broken exchange -> `Retryable`.

A response with any status is returned as it is; `raise_for_status()` turns 5xx and 429 into
`Retryable` and other 4xx into `Internal`.

    resp = http.get("https://api.example.com/orders?page=1", headers={"authorization": "Bearer ..."})
    resp.raise_for_status()
    items = resp.json()["items"]
"""

from __future__ import annotations

import json as _json
from typing import Any, List, Mapping, Optional, Tuple, Union
from urllib.parse import urlsplit

from . import _wit
from .errors import Denied, Internal, InvalidConfig, RetryAfter, Retryable

Err = _wit.Err
HeaderList = Union[Mapping[str, str], List[Tuple[str, str]], None]

_CHUNK = 64 * 1024


class Response:
    """A complete response: `status`, `headers` (a list of `(name, bytes)`), `body` (bytes)."""

    def __init__(self, method: str, url: str, status: int, headers: List[Tuple[str, bytes]], body: bytes) -> None:
        self.method = method
        self.url = url
        self.status = status
        self.headers = headers
        self.body = body

    def __repr__(self) -> str:
        return f"<Response {self.method} {self.url} {self.status}, {len(self.body)} bytes>"

    @property
    def ok(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status < 300

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (invalid bytes replaced)."""
        return self.body.decode(errors="replace")

    def header(self, name: str) -> Optional[str]:
        """The first header called `name` (case-insensitive) as text, if any."""
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value.decode(errors="replace")
        return None

    def json(self) -> Any:
        """The body parsed as JSON; `Internal` naming the request when it is not JSON."""
        try:
            return _json.loads(self.body)
        except ValueError as err:
            raise Internal(f"{self.method} {_shown(self.url)}: answer is not JSON: {err}") from None

    def retry_after_ms(self) -> Optional[int]:
        """The delay in milliseconds a 429 or 503 answer's `Retry-After` asks for, when it gives
        one in seconds (the host also reads HTTP-dates, and makes any retryable error of the
        invocation wait what the remote asked)."""
        if self.status not in (429, 503):
            return None
        value = (self.header("retry-after") or "").strip()
        if not (value.isdigit() and value.isascii() and len(value) <= 15):
            return None
        return min(int(value), 86_400) * 1000  # at most a day; the host caps the wait lower still

    def raise_for_status(self) -> "Response":
        """Returns the response when its status is below 400: `Retryable` for 5xx and 429 (worth
        retrying later; `RetryAfter` when the answer says how long to wait), `Internal` for other
        4xx (the request itself is wrong), with the start of the body in the message."""
        if self.status < 400:
            return self
        detail = f"{self.method} {_shown(self.url)}: HTTP {self.status}: {self.text[:200]}"
        if self.status >= 500 or self.status == 429:
            delay = self.retry_after_ms()
            raise Retryable(detail) if delay is None else RetryAfter(detail, delay)
        raise Internal(detail)


def _shown(url: str) -> str:
    """A URL as error messages show it: without its query and fragment, where API keys and tokens
    travel (the host also blanks every granted secret out of errors and logs)."""
    return url.split("?", 1)[0].split("#", 1)[0]


def get(url: str, headers: HeaderList = None) -> Response:
    """`GET url`."""
    return request("GET", url, headers=headers)


def post(url: str, body: Union[bytes, str, None] = None, headers: HeaderList = None, *, json: Any = None) -> Response:
    """`POST url` with `body` (bytes or str), or with `json=value` sent as JSON."""
    return request("POST", url, body=body, headers=headers, json=json)


def put(url: str, body: Union[bytes, str, None] = None, headers: HeaderList = None, *, json: Any = None) -> Response:
    """`PUT url`, like `post`."""
    return request("PUT", url, body=body, headers=headers, json=json)


def delete(url: str, headers: HeaderList = None) -> Response:
    """`DELETE url`."""
    return request("DELETE", url, headers=headers)


def request(method: str, url: str, body: Union[bytes, str, None] = None, headers: HeaderList = None,
            *, json: Any = None) -> Response:
    """Sends one request and reads the whole answer. A body without a `content-type` header is
    sent as `application/json`; it is sent with a `content-length`."""
    ht = _wit.http_types
    if ht is None:
        raise Denied(f"{method} {_shown(url)}: a {_wit.WORLD} has no outbound HTTP (only source and sink plugins do)")
    if json is not None:
        body = _json.dumps(json, separators=(",", ":"), ensure_ascii=False)
    if isinstance(body, str):
        body = body.encode()
    method = method.upper()
    scheme, authority, path = _split(url)
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers or [])
    names = {name.lower() for name, _ in pairs}
    if body is not None:
        if "content-type" not in names:
            pairs.append(("content-type", "application/json"))
        if "content-length" not in names:
            pairs.append(("content-length", str(len(body))))
    try:
        fields = ht.Fields.from_list([(name, value.encode() if isinstance(value, str) else bytes(value))
                                      for name, value in pairs])
    except Err as err:
        raise InvalidConfig(f"{method} {_shown(url)}: invalid header: {_code(err.value)}") from None

    what = f"{method} {_shown(url)}"
    try:
        req = ht.OutgoingRequest(fields)
        for setter, value, name in ((req.set_method, _method(method), "method"),
                                    (req.set_scheme, scheme, "scheme"),
                                    (req.set_authority, authority, "host"),
                                    (req.set_path_with_query, path, "path")):
            try:
                setter(value)
            except Err:
                raise InvalidConfig(f"{what}: invalid {name}") from None
        outgoing = req.body()
        pending = _wit.outgoing_handler.handle(req, None)
        if body is not None:
            _write_all(outgoing, body)
        ht.OutgoingBody.finish(outgoing, None)
        return _receive(pending, method, url)
    except Err as err:
        raise _transport(what, authority, err.value) from None


def _split(url: str):
    ht = _wit.http_types
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise InvalidConfig(f"`{_shown(url)}` is not an http:// or https:// URL")
    if not parts.netloc:
        raise InvalidConfig(f"`{_shown(url)}` has no host")
    scheme = ht.Scheme_Https() if parts.scheme == "https" else ht.Scheme_Http()
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return scheme, parts.netloc, path


def _method(name: str):
    ht = _wit.http_types
    known = {"GET": ht.Method_Get, "HEAD": ht.Method_Head, "POST": ht.Method_Post, "PUT": ht.Method_Put,
             "DELETE": ht.Method_Delete, "CONNECT": ht.Method_Connect, "OPTIONS": ht.Method_Options,
             "TRACE": ht.Method_Trace, "PATCH": ht.Method_Patch}
    return known[name]() if name in known else ht.Method_Other(name)


def _write_all(outgoing, body: bytes) -> None:
    """Writes as much per call as the stream permits, then flushes (`blocking_write_and_flush`
    would cap each write at 4 KiB)."""
    stream = outgoing.write()
    ready = stream.subscribe()
    try:
        view = memoryview(body)
        while view:
            permitted = stream.check_write()
            if permitted == 0:
                ready.block()
                continue
            stream.write(bytes(view[:permitted]))
            view = view[permitted:]
        try:
            stream.blocking_flush()
        except Err as err:
            # With a content-length the host may close the stream once it has every byte.
            if not isinstance(err.value, _wit.streams.StreamError_Closed):
                raise
    finally:
        ready.__exit__(None, None, None)
        stream.__exit__(None, None, None)


def _receive(pending, method: str, url: str) -> Response:
    ht = _wit.http_types
    ready = pending.subscribe()
    try:
        while (answer := pending.get()) is None:
            ready.block()
    finally:
        ready.__exit__(None, None, None)
    pending.__exit__(None, None, None)
    if isinstance(answer, Err):
        raise Retryable(f"{method} {_shown(url)}: response already taken")
    inner = answer.value
    if isinstance(inner, Err):
        raise Err(inner.value)
    response = inner.value
    status = response.status()
    with response.headers() as fields:
        headers = [(name, bytes(value)) for name, value in fields.entries()]
    incoming = response.consume()
    stream = incoming.stream()
    chunks = []
    try:
        while True:
            try:
                chunks.append(stream.blocking_read(_CHUNK))
            except Err as err:
                if isinstance(err.value, _wit.streams.StreamError_Closed):
                    break
                raise
    finally:
        stream.__exit__(None, None, None)
    trailers = ht.IncomingBody.finish(incoming)
    trailers.__exit__(None, None, None)
    response.__exit__(None, None, None)
    return Response(method, url, status, headers, b"".join(chunks))


def _code(value: Any) -> str:
    """`ConnectionRefused` -> `connection-refused`, with the payload when there is one."""
    name = type(value).__name__.split("_", 1)[-1]
    kebab = "".join(f"-{c.lower()}" if c.isupper() else c for c in name).lstrip("-")
    payload = getattr(value, "value", None)
    if payload is not None and not isinstance(payload, (str, int)):
        to_text = getattr(payload, "to_debug_string", None)
        payload = to_text() if to_text else payload
    return f"{kebab} ({payload})" if payload not in (None, "") else kebab


def _transport(what: str, authority: str, value: Any) -> Exception:
    ht = _wit.http_types
    if isinstance(value, ht.ErrorCode_HttpRequestDenied):
        return Denied(f"{what}: the host denied outbound HTTP to `{authority}` (not among the allowed hosts)")
    if isinstance(value, ht.ErrorCode_HttpRequestUriInvalid):
        return InvalidConfig(f"{what}: invalid URL")
    if isinstance(value, _wit.streams.StreamError_LastOperationFailed):
        return Retryable(f"{what}: {value.value.to_debug_string()}")
    return Retryable(f"{what}: {_code(value)}")
