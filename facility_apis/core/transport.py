"""The one way a facility talks to the network.

One ``requests.Session`` per transport; explicit timeouts; retries only where repeating cannot
hurt; 429 raised as ``Throttled`` with the wait the service asked for; redirects never followed;
every destination checked against the egress rule (``egress.py``) before a connection is made;
every call recorded as a redacted ``Transaction``.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http.cookiejar import DefaultCookiePolicy
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.cookies import extract_cookies_to_jar
from requests.structures import CaseInsensitiveDict
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util.retry import Retry

from .. import __version__
from .egress import EgressPolicy, EgressRefused
from .errors import FacilityUnavailable, Throttled
from .redact import SENSITIVE_HEADERS, Redactor, get_logger

log = get_logger(__name__)

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "DELETE", "PUT"})
TRANSIENT_STATUSES = frozenset({502, 503, 504})
DEFAULT_WAIT = 10.0
BODY_LIMIT = 16_384
USER_AGENT = f"facility_apis/{__version__} python-requests/{requests.__version__}"

_WAIT_IN_BODY = re.compile(r"available in (\d+(?:\.\d+)?) (second|minute)s?\b", re.IGNORECASE)


@dataclass(frozen=True)
class Transaction:
    """One HTTP exchange, already redacted: safe to store, log or show."""

    method: str
    url: str
    request_headers: dict[str, str]
    request_body: str | None
    status: int | None
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: str | None = None
    elapsed: float = 0.0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, in SkyPortal's FacilityTransaction ``request``/``response`` split."""
        return {
            "request": {"method": self.method, "url": self.url, "headers": self.request_headers, "body": self.request_body},
            "response": {
                "status_code": self.status,
                "headers": self.response_headers,
                "content": self.response_body,
                "elapsed": self.elapsed,
                "error": self.error,
            },
        }


@dataclass(frozen=True)
class HTTPCall:
    """A request built but not sent: what ``prepare`` returns and ``--dry-run`` prints.

    ``data`` is a form (a dict, sent form-encoded) or a raw body (``str`` or ``bytes``, e.g. an
    XML document, sent as it is with the ``Content-Type`` the headers give). ``files`` makes the
    body ``multipart/form-data`` (with ``data``'s fields, if any), as requests' ``files=``: part
    name -> ``(filename, content)`` or ``(filename, content, content type)``, e.g. SEDM's
    ``{"jsonfile": ("jsonfile", "<JSON document>")}``. The multipart boundary is chosen when the
    call is prepared, so two renderings of one call differ only in it. Text parts are recorded
    and redacted like any body.
    """

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] | None = None
    data: dict[str, Any] | str | bytes | None = None
    json: Any = None
    #: Whether sending the call twice is harmless; ``None``: by its method (see ``Transport.request``).
    repeatable: bool | None = None
    files: dict[str, Any] | None = None


@dataclass(frozen=True)
class MessageCall:
    """A delivery built but not sent that is not an HTTP request (an e-mail, a file written over
    SFTP): what ``prepare`` returns for it, and what ``--dry-run`` prints (``Transport.render``).
    ``protocol`` names it (``SMTP``, ``SFTP``), ``destination`` says where it would go
    (``smtp://mail.example.org:587``, ``sftp://host:22/in/plan.json``), ``headers`` are its
    headers (an e-mail's From, To, Subject) and ``body`` its content as text."""

    protocol: str
    destination: str
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""


def throttle_wait(response: requests.Response, *, fallback: float = DEFAULT_WAIT, cap: float = 3600.0) -> float:
    """Seconds to wait after a 429: ``Retry-After`` (seconds or HTTP date), else the body's
    "available in N second(s)/minute(s)", else ``fallback``; never more than ``cap``."""
    header = response.headers.get("Retry-After", "").strip()
    wait: float | None = None
    if header:
        try:
            wait = float(header)
        except ValueError:
            with contextlib.suppress(TypeError, ValueError, IndexError, OverflowError):
                wait = parsedate_to_datetime(header).timestamp() - time.time()
    if wait is None:
        match = _WAIT_IN_BODY.search(response.text or "")
        if match:
            wait = float(match.group(1)) * (60 if match.group(2).lower() == "minute" else 1)
    if wait is None or not math.isfinite(wait):
        wait = fallback
    return min(max(wait, 0.0), cap)


def _body_text(body: Any) -> str | None:
    if body is None:
        return None
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    return str(body)


def _clip(text: str | None) -> str | None:
    if text is None or len(text) <= BODY_LIMIT:
        return text
    return f"{text[:BODY_LIMIT]}… ({len(text)} characters in all)"


#: What a status adds when a call that is not repeatable may have been carried out.
MAY_HAVE_ARRIVED = "the request may have reached the facility and was not sent again"

#: The attribute of a ``requests.Response`` that says whether its call was repeatable (see
#: :func:`answered_repeatable`).
REPEATABLE_ATTRIBUTE = "facility_apis_repeatable"


def answered_repeatable(response: requests.Response) -> bool:
    """Whether ``response`` answers a call that is harmless to send twice (``Transport.request``'s
    ``repeatable``). A response the transport did not make (e.g. built by a test) counts as
    repeatable."""
    return bool(getattr(response, REPEATABLE_ATTRIBUTE, True))


#: The ``repeatable`` choice of the call in flight on this thread (``None``: by its method).
_REPEATABLE: contextvars.ContextVar[bool | None] = contextvars.ContextVar("facility_apis_repeatable", default=None)


class _Retry(Retry):
    """urllib3's retry policy, except that a 429 (or 413) with ``Retry-After`` is not retried
    inside the call: it surfaces as ``Throttled`` so the caller schedules the wait instead of a
    worker sleeping through it. ``Retry-After`` on a 503 is still honoured. Whether a call that
    may have arrived is repeated (read errors, 502/503/504) follows the call's ``repeatable``;
    a connection that never opened is always retried."""

    RETRY_AFTER_STATUS_CODES = frozenset({503})

    def _is_method_retryable(self, method: str) -> bool:
        chosen = _REPEATABLE.get()
        return super()._is_method_retryable(method) if chosen is None else chosen


class _Guarded:
    """Opens a connection only to an address the egress policy accepts, and to that very
    address (not to whatever the name resolves to a moment later)."""

    egress: EgressPolicy
    url_scheme: str

    def _new_conn(self):
        addresses = self.egress.vet(self.url_scheme, self._dns_host, self.port)  # type: ignore[attr-defined]
        name, failure = self._dns_host, None  # type: ignore[attr-defined]
        for address in addresses:
            self._dns_host = address
            try:
                return super()._new_conn()  # type: ignore[misc]
            except NewConnectionError as exc:
                failure = exc
            finally:
                self._dns_host = name
        raise failure  # type: ignore[misc]


def _guarded_pools(egress: EgressPolicy) -> dict[str, type]:
    """urllib3 pool classes whose connections go through ``_Guarded`` with ``egress``."""

    def pool(base: type, connection: type, scheme: str) -> type:
        guarded = type(f"Guarded{connection.__name__}", (_Guarded, connection), {"egress": egress, "url_scheme": scheme})
        return type(f"Guarded{base.__name__}", (base,), {"ConnectionCls": guarded})

    return {"http": pool(HTTPConnectionPool, HTTPConnection, "http"), "https": pool(HTTPSConnectionPool, HTTPSConnection, "https")}


class _SessionCookies(DefaultCookiePolicy):
    """Keeps the cookies a service sets only inside ``Transport.cookie_session`` (``open``);
    outside, none is kept, so none can ride along on a later call made with other credentials."""

    def __init__(self) -> None:
        super().__init__()
        self.open = False

    def set_ok(self, cookie, request) -> bool:  # type: ignore[no-untyped-def]
        return self.open and super().set_ok(cookie, request)


class _GuardedAdapter(HTTPAdapter):
    def __init__(self, egress: EgressPolicy, **options: Any):
        self._egress = egress
        super().__init__(**options)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _guarded_pools(self._egress)


class Transport:
    """HTTP for facilities: shared session, safe retries, throttling, redacted records.

    Parameters
    ----------
    timeout:
        ``(connect, read)`` seconds for every call.
    retries:
        How many times an idempotent call (GET, HEAD, DELETE, PUT) is repeated after a connection
        error or a 502/503/504. A POST is repeated only when the connection could not be opened.
    backoff:
        Backoff factor in seconds (doubling per attempt); ``Retry-After`` is honoured up to
        ``max_wait``.
    secrets:
        Values to mask in every record made by this transport (the secrets of one call are given
        to ``recording``, and mask only that call's records).
    egress:
        Where calls may go beyond the public internet (default: nowhere); see ``egress.py``.
    pool_size:
        Connections kept open to each host (one pool per host, reused from call to call).
    pools_of:
        Another transport whose connection pools (one per host) this one uses, instead of its
        own: the transports of a thread pool then share one pool per remote host (connections
        reused by every thread; ``pool_size`` of the owner should cover the threads). Only
        the connections are shared, and only the owner's ``close()`` closes them; records,
        secrets, cookies and headers stay this transport's own.
    """

    def __init__(
        self,
        *,
        timeout: tuple[float, float] = (5.0, 30.0),
        retries: int = 3,
        backoff: float = 0.5,
        max_wait: float = 300.0,
        secrets: Iterable[str] = (),
        egress: EgressPolicy | None = None,
        pool_size: int = 16,
        pools_of: Transport | None = None,
    ):
        self.timeout = timeout
        self.max_wait = max_wait
        self.egress = egress if egress is not None else EgressPolicy()
        self._base_secrets = [s for s in secrets if isinstance(s, str) and s]
        self._redactors: list[Redactor] = [Redactor(self._base_secrets)]
        self._records: list[list[Transaction]] = []
        self.session = requests.Session()
        # No .netrc, proxy or environment overrides: what we set is what is sent, where we said.
        self.session.trust_env = False
        self.session.verify = True
        self._cookies = _SessionCookies()
        self.session.cookies = requests.cookies.RequestsCookieJar(self._cookies)
        self.session.headers["User-Agent"] = USER_AGENT
        retry = _Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            other=0,
            allowed_methods=IDEMPOTENT,
            status_forcelist=TRANSIENT_STATUSES,
            backoff_factor=backoff,
            backoff_max=max_wait,
            respect_retry_after_header=True,
            retry_after_max=int(max_wait),
            raise_on_status=False,
        )
        if pools_of is not None:
            adapter = pools_of._adapter
            if adapter._egress != self.egress or adapter.max_retries.total != retries:
                raise ValueError("a transport shares the pools of one with the same egress policy and retries only")
        else:
            adapter = _GuardedAdapter(self.egress, max_retries=retry, pool_maxsize=pool_size)
        self._adapter, self._owns_pools = adapter, pools_of is None
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)

    @property
    def redactor(self) -> Redactor:
        """The redactor of the innermost ``recording`` block (the transport's own outside one)."""
        return self._redactors[-1]

    def add_secrets(self, secrets: Iterable[str]) -> None:
        """Mask these values too, for the life of this transport (a client's own token)."""
        secrets = [s for s in secrets if isinstance(s, str) and s]
        self._base_secrets += secrets
        for redactor in self._redactors:
            redactor.add(secrets)

    def close(self) -> None:
        if self._owns_pools:
            self.session.close()

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def recording(self, secrets: Iterable[str] = ()) -> Iterator[list[Transaction]]:
        """Collect the transactions made inside the block (nested blocks each get theirs).

        ``secrets`` are masked, with the transport's own, in what is recorded and raised inside
        the block, and nowhere else: a transport reused for another allocation's call does not
        mask (nor reveal, through masking) this one's secrets.
        """
        records: list[Transaction] = []
        redactor = Redactor([*self._base_secrets, *self.redactor.secrets(), *secrets])
        self._records.append(records)
        self._redactors.append(redactor)
        try:
            yield records
        finally:
            self._redactors.remove(redactor)
            self._records.remove(records)

    @contextlib.contextmanager
    def cookie_session(self) -> Iterator[None]:
        """Calls inside the block share the cookies the services set (a login's session cookie)
        and no others: the cookie jar is emptied on entry and on exit, and outside a block no
        cookie is kept at all. A transport is reused for other allocations' calls (the gateway
        keeps one per worker thread), so a session opened with one allocation's credentials must
        never ride along on another's call. Cookie values are masked whole in every record
        (``Cookie``/``Set-Cookie`` headers)."""
        self.session.cookies.clear()
        self._cookies.open = True
        try:
            yield
        finally:
            self._cookies.open = False
            self.session.cookies.clear()

    def send(self, call: HTTPCall) -> requests.Response:
        """Send a prepared ``HTTPCall`` (see ``request``)."""
        return self.request(
            call.method,
            call.url,
            headers=call.headers,
            params=call.params,
            data=call.data,
            json=call.json,
            files=call.files,
            repeatable=call.repeatable,
        )

    def render(self, call: HTTPCall | MessageCall) -> str:
        """The exact HTTP request (or message) ``call`` would send, as text, with secrets masked."""
        if isinstance(call, MessageCall):
            lines = [f"{call.protocol} {self.redactor.text(call.destination)}"]
            lines += [f"{name}: {self.redactor.text(value)}" for name, value in call.headers.items()]
            return "\n".join(lines) + ("\n\n" + self.redactor.text(call.body) if call.body else "") + "\n"
        prepared = self._prepare(call.method, call.url, headers=call.headers, params=call.params, data=call.data, json=call.json, files=call.files)
        lines = [f"{prepared.method} {self.redactor.text(prepared.url or '')}"]
        lines += [f"{name}: {value}" for name, value in sorted(self.redactor.headers(prepared.headers).items())]
        body = _body_text(prepared.body)
        return "\n".join(lines) + ("\n\n" + self.redactor.text(body) if body else "") + "\n"

    def _prepare(
        self, method: str, url: str, *, headers: Mapping[str, str] | None = None, params: Any = None, data: Any = None, json: Any = None, files: Any = None
    ) -> requests.PreparedRequest:
        """The request as it goes on the wire: the session's headers (a ``None`` value drops one)
        and, inside ``cookie_session``, its cookies. Built step by step rather than through
        ``Session.prepare_request`` and ``Session.send``, whose merging of cookie jars, hooks, auth,
        proxies and redirects this transport never uses: together they were a fifth to a quarter of
        a status read's CPU (measured against a loopback server)."""
        merged = CaseInsensitiveDict(self.session.headers)
        merged.update(headers or {})
        prepared = requests.PreparedRequest()
        prepared.prepare_method(method.upper())
        prepared.prepare_url(url, params)
        prepared.prepare_headers({name: value for name, value in merged.items() if value is not None})
        if self._cookies.open:
            prepared.prepare_cookies(self.session.cookies)
        prepared.prepare_body(data, files, json)
        return prepared

    def _send(self, prepared: requests.PreparedRequest) -> requests.Response:
        """Send through this transport's adapter, never following a redirect, the body read whole
        (which frees the connection); inside ``cookie_session`` the cookies set are kept."""
        response = self._adapter.send(prepared, stream=False, timeout=self.timeout, verify=True, proxies={})
        if self._cookies.open:
            extract_cookies_to_jar(self.session.cookies, prepared, response.raw)
        response.content  # noqa: B018 - read the body now, as Session.send does
        return response

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        data: Any = None,
        json: Any = None,
        files: Mapping[str, Any] | None = None,
        repeatable: bool | None = None,
    ) -> requests.Response:
        """Send one request; raise ``EgressRefused`` (before any connection) for a destination the
        egress rule forbids, ``Throttled`` on 429 and ``FacilityUnavailable`` when the service
        cannot be reached or stays in a transient error. Other answers, redirects included, are
        returned as they are.

        ``repeatable`` says whether sending the call twice is harmless: by default GET, HEAD,
        OPTIONS, DELETE and PUT are, POST and PATCH are not. A call that changes something at the
        facility although it is a GET (IPAC's request CGI) passes ``False``; a POST that only reads
        (Fink's query) passes ``True``. A repeatable call is retried after read errors and
        502/503/504; any call is retried when its connection could not be opened.

        ``files`` sends a ``multipart/form-data`` body (see :class:`HTTPCall`).
        """
        method = method.upper()
        repeatable = method in IDEMPOTENT if repeatable is None else repeatable
        prepared = self._prepare(method, url, headers=headers, params=params, data=data, json=json, files=files)
        started = time.monotonic()
        token = _REPEATABLE.set(repeatable)
        try:
            self.egress.check(prepared.url or "", secret=self._carries_secret(prepared))
            response = self._send(prepared)
        except EgressRefused as exc:
            refused = EgressRefused(self.redactor.text(str(exc)))
            self._record(prepared, None, time.monotonic() - started, str(refused))
            raise refused from None
        except requests.RequestException as exc:
            elapsed = time.monotonic() - started
            error = self._unavailable(exc, repeatable)
            self._record(prepared, None, elapsed, str(error))
            raise error from None
        finally:
            _REPEATABLE.reset(token)
        elapsed = time.monotonic() - started
        self._record(prepared, response, elapsed, None)
        setattr(response, REPEATABLE_ATTRIBUTE, repeatable)
        if response.status_code == 429:
            wait = throttle_wait(response, cap=self.max_wait)
            cause = f"rate limit reached at {self._host(url)}"
            raise Throttled(wait, f"{cause}; retry in {wait:g} s", cause=cause)
        if response.status_code in TRANSIENT_STATUSES:
            text = f"{self._host(url)} answered HTTP {response.status_code} (temporarily unavailable)"
            if not repeatable:  # a proxy's 502/504 may hide a request the facility did take
                text += f"; {MAY_HAVE_ARRIVED}"
            raise FacilityUnavailable(text, sent=not repeatable)
        return response

    def record_exchange(
        self,
        method: str,
        url: str,
        *,
        request_headers: Mapping[str, str] | None = None,
        request_body: str | None = None,
        status: int | None = None,
        response_body: str | None = None,
        elapsed: float = 0.0,
        error: str | None = None,
        secrets: Iterable[str] = (),
    ) -> Transaction:
        """Record an exchange made without HTTP (an SMTP delivery, say) as a ``Transaction`` in
        every open ``recording``, redacted exactly as HTTP exchanges are, plus ``secrets`` (e.g. a
        deployment's SMTP password). ``method`` names the protocol's verb (``SMTP``), ``url`` the
        server (``smtp://host:587``). Returns the redacted record."""
        redact = Redactor([*self.redactor.secrets(), *secrets])
        transaction = Transaction(
            method=method,
            url=redact.text(url),
            request_headers=redact.headers(request_headers),
            request_body=_clip(redact.text(request_body)) if request_body is not None else None,
            status=status,
            response_body=_clip(redact.text(response_body)) if response_body is not None else None,
            elapsed=round(elapsed, 6),
            error=redact.text(error) if error else None,
        )
        log.debug("%s %s -> %s in %.3f s", transaction.method, transaction.url, transaction.status or transaction.error, elapsed)
        for records in self._records:
            records.append(transaction)
        return transaction

    def _unavailable(self, exc: requests.RequestException, repeatable: bool) -> FacilityUnavailable:
        """Classify a transport failure: could the request have reached the service, and would
        that matter? (``sent`` is True only for a call that may have arrived and is not
        repeatable: repeating a repeatable one does no harm.)"""
        reason = exc.__context__ or exc
        never_sent = isinstance(exc, requests.ConnectTimeout) or any(
            isinstance(cause, (NewConnectionError, ConnectTimeoutError)) for cause in _chain(exc)
        )
        host = self._host(exc.request.url if exc.request is not None else "")
        if isinstance(exc, requests.ReadTimeout):
            text = f"no answer from {host} within {self.timeout[1]:g} s"
        elif never_sent:
            text = f"could not connect to {host}"
        else:
            text = f"connection to {host} failed: {type(reason).__name__}"
        if not never_sent and not repeatable:
            text += f"; {MAY_HAVE_ARRIVED}"
        return FacilityUnavailable(self.redactor.text(text), sent=not never_sent and not repeatable)

    def _carries_secret(self, prepared: requests.PreparedRequest) -> bool:
        """Whether a credential travels in this request: a credential header, or a known secret
        anywhere in the URL, headers or body."""
        if any(str(name).lower() in SENSITIVE_HEADERS for name in prepared.headers):
            return True
        parts = [prepared.url or "", *map(str, prepared.headers.values()), _body_text(prepared.body) or ""]
        return any(self.redactor.text(part) != part for part in parts)

    @staticmethod
    def _host(url: str) -> str:
        return requests.utils.urlparse(url).netloc or "the facility"

    def _record(self, prepared: requests.PreparedRequest, response: requests.Response | None, elapsed: float, error: str | None) -> None:
        redact = self.redactor
        transaction = Transaction(
            method=prepared.method or "",
            url=redact.text(prepared.url or ""),
            request_headers=redact.headers(prepared.headers),
            request_body=_clip(redact.text(b) if (b := _body_text(prepared.body)) is not None else None),
            status=response.status_code if response is not None else None,
            response_headers=redact.headers(response.headers) if response is not None else {},
            response_body=_clip(redact.text(response.text)) if response is not None else None,
            elapsed=round(elapsed, 6),
            error=redact.text(error) if error else None,
        )
        log.debug("%s %s -> %s in %.3f s", transaction.method, transaction.url, transaction.status or transaction.error, elapsed)
        for records in self._records:
            records.append(transaction)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, its causes/contexts and the ``reason`` of urllib3 wrappers."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack += [current.__cause__, current.__context__, getattr(current, "reason", None)]
        stack += [arg for arg in getattr(current, "args", ()) if isinstance(arg, BaseException)]
