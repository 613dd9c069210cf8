"""Nothing SkyPortal reads at start-up may raise.

SkyPortal computes every class's forms while it imports its handlers: an exception there stops the
whole app, every other facility and endpoint with it. What SkyPortal reads to render and offer
forms (the form properties, ``implements``, ``frontend_render_info``) is wrapped in
:func:`never_raises`, which logs the failure once and answers a harmless fallback instead; the
operations report the same problem in the request's status when they are called.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from ..core.redact import get_logger

log = get_logger("facility_apis.skyportal")

T = TypeVar("T")

_logged: set[tuple[str, str]] = set()
_lock = threading.Lock()


def log_once(where: str, message: str) -> None:
    """Log ``message`` as an error the first time it is seen for ``where`` (SkyPortal reads the
    forms on every page; the log must not fill with one line per read)."""
    with _lock:
        if (where, message) in _logged:
            return
        _logged.add((where, message))
    log.error("%s: %s", where, message)


def forget_logged() -> None:
    """Log every problem again when next seen (after the settings were reloaded)."""
    with _lock:
        _logged.clear()


def never_raises(fallback: Callable[[], Any]) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Wrap a class-level reader (``f(cls, ...)``): any exception is logged once, with the class and
    the reader named, and ``fallback()`` answered instead."""

    def wrap(function: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(function)
        def guarded(cls: Any, *args: Any, **kwargs: Any) -> T:
            try:
                return function(cls, *args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - SkyPortal must start whatever a facility does
                log_once(f"{getattr(cls, '__name__', cls)}.{function.__name__}", f"{type(exc).__name__}: {exc}")
                return fallback()

        return guarded

    return wrap
