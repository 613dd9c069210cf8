"""What every gateway API handler shares: token auth, SkyPortal's JSON envelope, body parsing,
field-error formatting and running blocking calls off the IOLoop."""

from __future__ import annotations

import functools
import json
import math
import threading
import traceback
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import tornado.web
from tornado.httputil import responses
from tornado.ioloop import IOLoop

from .. import __version__
from ..core.egress import EgressPolicy
from ..core.errors import ConfigurationError, FieldError, UnknownFacility, ValidationFailed
from ..core.interface import Facility
from ..core.redact import get_logger, redact_everywhere
from ..core.registry import Registry
from ..skyportal.client import SkyPortalClient
from .api_schemas import MAX_ID
from .batching import GroupCommit
from .crypto import SecretBox
from .loops import store_unavailable
from .store import Conflict, NotFound, Store
from .store.requests import NewRequest

log = get_logger("facility_apis.gateway.api")

MAX_BODY_BYTES = 1 << 20
#: How deep a request body may nest objects and arrays.
MAX_DEPTH = 32
REALM = 'realm="facility_apis gateway"'

T = TypeVar("T")


class ApiError(tornado.web.HTTPError):
    """An answer other than success: ``status``, a message, and the failing fields if any."""

    def __init__(self, status: int, message: str, errors: Iterable[FieldError | str] = (), headers: Mapping[str, str] | None = None):
        super().__init__(status)
        self.message = message
        self.errors = [str(error) for error in errors]
        self.headers = dict(headers or {})

    @classmethod
    def invalid(cls, what: str, errors: list[FieldError]) -> ApiError:
        """A 400 listing every failing field."""
        return cls(400, f"invalid {what}: " + "; ".join(map(str, errors)), errors)


def under(prefix: str, errors: Iterable[FieldError]) -> list[FieldError]:
    """Errors whose JSON paths (``$.a.b``) are renamed below ``prefix`` (``altdata.a.b``); with
    no prefix, relative to the body (``a.b``; the body itself is ``body``)."""
    renamed = []
    for error in errors:
        rest = error.path[1:] if error.path.startswith("$") else f".{error.path}"
        path = f"{prefix}{rest}" if prefix else (rest.lstrip(".") or "body")
        renamed.append(FieldError(path, error.message))
    return renamed


def unstorable(value: Any, path: str = "body", depth: int = 0) -> list[FieldError]:
    """What in a parsed JSON body no database could store, one error per field: nesting deeper
    than ``MAX_DEPTH``, a number too large to be finite (``1e400``), a NUL character or a lone
    UTF-16 surrogate in a string or a key."""
    if isinstance(value, str):
        reason = _text_rule(value)
        return [FieldError(path, reason)] if reason else []
    if isinstance(value, float):
        return [] if math.isfinite(value) else [FieldError(path, "must be a finite number")]
    if not isinstance(value, (dict, list)):
        return []
    if depth >= MAX_DEPTH:
        return [FieldError(path, f"must not be nested more than {MAX_DEPTH} levels deep")]
    errors = []
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        if isinstance(key, str) and _text_rule(key):
            errors.append(FieldError(path, f"keys {_text_rule(key)}"))
            continue
        inner = f"{path}[{key}]" if isinstance(key, int) else (key if path == "body" else f"{path}.{key}")
        errors += unstorable(item, inner, depth + 1)
    return errors


def _text_rule(text: str) -> str | None:
    if "\x00" in text:
        return "must not contain the NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode (a lone surrogate such as \\ud800 is not)"
    return None


def parse_id(text: str, what: str) -> int:
    """A path id; one that cannot name a row is simply not found."""
    value = int(text) if text.isascii() and text.isdigit() and len(text) < 20 else 0
    if not 1 <= value <= MAX_ID:
        raise ApiError(404, f"no {what} {text[:20]}")
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


@dataclass
class Gateway:
    """What the handlers share: the store, the facilities and the helpers of the deployment."""

    store: Store
    registry: Registry
    box: SecretBox
    skyportal: SkyPortalClient | None = None
    executor: Executor | None = None
    facility_config: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    egress: EgressPolicy = field(default_factory=EgressPolicy)
    loops: Callable[[], dict[str, Any]] | None = None
    _facilities: dict[str, Facility] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    #: Requests accepted at the same moment are stored in one transaction (``batching.py``).
    _intake: GroupCommit[NewRequest, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._intake = GroupCommit(self.store.requests.add_many, retry_alone=lambda exc: not store_unavailable(exc))

    def accept(self, request: NewRequest) -> int:
        """Store an accepted request (blocking: call it on the executor); its id. Requests
        accepted meanwhile by other threads share its transaction, each stored exactly once;
        ``NotFound`` as ``Requests.add``."""
        return self._intake.submit(request)

    def facility_class(self, name: str) -> type[Facility]:
        """A stored allocation's facility class; a 500 if it is no longer installed."""
        try:
            return self.registry.get(name)
        except UnknownFacility:
            raise ApiError(500, f"facility {name!r} is not installed in this gateway") from None

    def facility(self, name: str) -> Facility:
        """The facility instance (built once, with its deployment config)."""
        with self._lock:
            if name not in self._facilities:
                try:
                    self._facilities[name] = self.facility_class(name)(dict(self.facility_config.get(name) or {}), egress=self.egress)
                except ConfigurationError as exc:
                    raise ApiError(500, f"facility {name!r} is misconfigured: {redact_everywhere(str(exc))}") from None
            return self._facilities[name]


def _refusing_first(verb: Callable[..., Any]) -> Callable[..., Any]:
    """``verb``, preceded by the refusal ``prepare`` found, if any."""

    @functools.wraps(verb)
    async def guarded(self: BaseHandler, *args: Any) -> None:
        if self._refusal is not None:
            raise self._refusal
        await verb(self, *args)

    return guarded


@tornado.web.stream_request_body
class BaseHandler(tornado.web.RequestHandler):
    """Token auth, JSON bodies and SkyPortal's envelope; subclasses implement the verbs.

    The body is streamed in, so that one over ``MAX_BODY_BYTES`` is answered 413 in the envelope
    (from its ``Content-Length`` before it is read, or once its chunks pass the limit) and never
    held in memory. Any other refusal found before the body arrives (no token, no such route)
    is answered once the body is in: closing a connection with unread bytes would reset it, and
    the client would see no answer at all.
    """

    VERBS = ("get", "head", "post", "put", "delete", "patch", "options")
    _refusal: ApiError | None = None

    async def _unsupported(self, *args: Any) -> None:
        if self._refusal is not None:
            raise self._refusal
        raise tornado.web.HTTPError(405)

    get = head = post = put = delete = patch = options = _unsupported  # what a route does not override

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for verb in cls.VERBS:
            if verb in cls.__dict__:
                setattr(cls, verb, _refusing_first(cls.__dict__[verb]))

    #: False only for routes a remote facility calls without a token.
    auth_required = True
    client_id: int | None = None

    @property
    def gateway(self) -> Gateway:
        return self.settings["gateway"]

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")

    def initialize(self) -> None:
        self._chunks: list[bytes] = []
        self._received = 0

    async def prepare(self) -> None:
        length = self.request.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > MAX_BODY_BYTES:
            raise self._too_large()
        try:
            await self.admit()
        except ApiError as exc:
            self._refusal = exc

    async def admit(self) -> None:
        """Refuse (``ApiError``) a request before its body is read: here, one without a valid token."""
        if self.auth_required:
            self.client_id = await self.blocking(self.gateway.store.clients.authenticate, self._token())
            if self.client_id is None:
                raise self._unauthorized("the API token is not valid")

    def _token(self) -> str:
        header = self.request.headers.get("Authorization")
        if not header:
            raise self._unauthorized("authentication required: send 'Authorization: token <token>'")
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() not in ("token", "bearer") or not token.strip():
            raise self._unauthorized("the Authorization header must be 'token <token>' or 'Bearer <token>'")
        return token.strip()

    def data_received(self, chunk: bytes) -> None:
        self._received += len(chunk)
        if self._received <= MAX_BODY_BYTES:
            self._chunks.append(chunk)
        else:
            self._chunks.clear()  # kept count of, not kept

    @staticmethod
    def _too_large() -> ApiError:
        return ApiError(413, f"the body is larger than {MAX_BODY_BYTES} bytes", [FieldError("body", f"must be at most {MAX_BODY_BYTES} bytes")])

    def body(self) -> bytes:
        """The request body (``ApiError`` 413 when it was too large)."""
        if self._received > MAX_BODY_BYTES:
            raise self._too_large()
        return b"".join(self._chunks)

    @staticmethod
    def _unauthorized(message: str) -> ApiError:
        return ApiError(401, message, headers={"WWW-Authenticate": f"Token {REALM}"})

    async def blocking(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking call (store, SkyPortal) on the executor, never on the IOLoop."""
        return await IOLoop.current().run_in_executor(self.gateway.executor, functools.partial(fn, *args, **kwargs))

    def json_body(self) -> dict[str, Any]:
        """The body as a JSON object a database can store, or a 400 saying why not."""
        try:
            body = json.loads(self.body().decode("utf-8"), parse_constant=_reject_constant)
        except RecursionError:
            raise ApiError.invalid("body", [FieldError("body", f"must not be nested more than {MAX_DEPTH} levels deep")]) from None
        except (UnicodeDecodeError, ValueError):
            raise ApiError(400, "the body is not JSON", [FieldError("body", "must be JSON")]) from None
        if not isinstance(body, dict):
            raise ApiError(400, "the body must be a JSON object", [FieldError("body", "must be of type object")])
        errors = unstorable(body)
        if errors:
            raise ApiError.invalid("body", errors)
        return body

    def success(self, data: Any) -> None:
        self.finish(json.dumps({"status": "success", "data": data, "version": __version__}))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message, errors = responses.get(status_code, "error"), []
        if isinstance(exc, ApiError):
            message, errors = exc.message, exc.errors
            for name, value in exc.headers.items():
                self.set_header(name, value)
        elif isinstance(exc, (NotFound, Conflict)):
            self.set_status(404 if isinstance(exc, NotFound) else 409)
            message = str(exc)
        elif isinstance(exc, ValidationFailed):
            self.set_status(400)
            message, errors = str(exc), [str(e) for e in exc.errors]
        elif status_code >= 500:
            message = "internal error (see the gateway's log)"
        self.finish(json.dumps({"status": "error", "message": message, "data": {"errors": errors}, "version": __version__}))

    def log_exception(self, typ: Any, value: BaseException | None, tb: Any) -> None:
        if isinstance(value, ApiError) and value.status_code >= 500:
            log.error("%s %s: %s", self.request.method, self.log_path(), value.message)
            return
        if isinstance(value, (tornado.web.HTTPError, NotFound, Conflict, ValidationFailed)):
            return  # an answer, not a fault: the access log line says enough
        text = redact_everywhere("".join(traceback.format_exception(typ, value, tb)))
        log.error("unexpected error in %s %s\n%s", self.request.method, self.log_path(), text)

    def log_path(self) -> str:
        """The path as it may be logged (subclasses mask capability segments)."""
        return self.request.path


class NotFoundHandler(BaseHandler):
    """Any path no route serves."""

    auth_required = False

    async def admit(self) -> None:
        raise ApiError(404, f"no such API route: {self.request.path[:200]}")


def log_request(handler: tornado.web.RequestHandler) -> None:
    """One access-log line: method, path, status, time. No query string, body or header."""
    path = handler.log_path() if isinstance(handler, BaseHandler) else handler.request.path
    client = getattr(handler, "client_id", None)
    elapsed = 1000.0 * handler.request.request_time()
    log.info("%s %s %d %.1f ms client=%s", handler.request.method, path, handler.get_status(), elapsed, client if client is not None else "-")
