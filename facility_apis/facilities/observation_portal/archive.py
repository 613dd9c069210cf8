"""The reduced frames of a completed request, listed by the LCO science archive.

Protocol (the archive's source, ``observatorycontrolsystem/science-archive``: ``archive/frames``
``filters.py``, ``serializers.py``, ``pagination.py``): ``GET <archive>/frames/`` with
``Authorization: Token <archive token>`` filters on ``request_id`` (a request's id, not its
request group's), ``reduction_level`` (91 for the BANZAI pipelines' reduced frames) and
``exclude_calibrations=true`` (science configuration types only), pages with ``limit``/``offset``
(at most 1,000 a page) and answers ``{"count", "next", "previous", "results": [...]}``; a result
has ``filename``, ``url`` (a download link that expires after 48 hours), ``primary_optical_element``
(the filter, or the slit of a spectrum) and ``observation_date`` (ISO 8601, UTC).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ...core.answers import expect, json_object
from ...core.egress import Origin
from ...core.errors import RemoteError
from ...core.frames import Frame
from ...core.timeutil import to_mjd
from ...core.transport import Transport

SERVICE = "LCO science archive"
PAGE_SIZE = 1000
#: More pages than this for one request means something is wrong; the listing stops with an error.
MAX_PAGES = 10


def _frame(result: Any) -> Frame | None:
    """One listed frame, or ``None`` for an entry without a name or a download link."""
    if not isinstance(result, dict):
        raise RemoteError(f"{SERVICE} listed a frame that is not an object", permanent=True)
    name, url = result.get("filename"), result.get("url")
    if not (isinstance(name, str) and name and isinstance(url, str) and url):
        return None
    element = result.get("primary_optical_element")
    try:
        mjd = round(to_mjd(result["observation_date"]), 8) if isinstance(result.get("observation_date"), str) else None
    except ValueError:
        mjd = None
    return Frame(name, url, element if isinstance(element, str) and element else None, mjd)


def list_frames(
    transport: Transport, *, archive_url: str, token: str, request_ids: Iterable[int], reduction_level: int
) -> tuple[Frame, ...]:
    """Every frame of these requests at ``reduction_level``, oldest first. A ``next`` page off
    the archive's own origin is never followed (``RemoteError``); so is a listing longer than
    ``MAX_PAGES`` pages. Raises what ``expect`` raises for a refused or failed call."""
    headers = {"Authorization": f"Token {token}", "Accept": "application/json"}
    home = Origin.of(archive_url)
    frames: dict[str, Frame] = {}
    for request_id in request_ids:
        url: str | None = f"{archive_url}/frames/"
        params: dict[str, Any] | None = {
            "request_id": request_id,
            "reduction_level": reduction_level,
            "exclude_calibrations": "true",
            "limit": PAGE_SIZE,
        }
        for _ in range(MAX_PAGES):
            response = expect(transport.request("GET", url, headers=headers, params=params), 200, service=SERVICE)
            page = json_object(response, service=SERVICE, what="the frame list")
            results = page.get("results")
            if not isinstance(results, list):
                raise RemoteError(f"{SERVICE} sent a frame list without results", permanent=True)
            for result in results:
                frame = _frame(result)
                if frame is not None:
                    frames.setdefault(frame.name, frame)
            url, params = page.get("next"), None
            if not url:
                break
            if not isinstance(url, str) or Origin.of(url) != home:
                raise RemoteError(f"{SERVICE} named a next page off its own service: not followed", permanent=True)
        else:
            raise RemoteError(f"{SERVICE} listed more than {MAX_PAGES * PAGE_SIZE} frames for request {request_id}", permanent=True)
    return tuple(sorted(frames.values(), key=lambda frame: (frame.mjd is None, frame.mjd or 0.0, frame.name)))
