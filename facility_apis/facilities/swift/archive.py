"""Archived Swift observations of a source: the ToO API's observation query, built by ``swifttools``.

Protocol (``swifttools`` 4, ``ObsQuery``/``SwiftAFST``): ``GET <api>/swift/obsquery`` with
``ra``, ``dec`` (degrees), ``radius`` (degrees), ``begin``, ``end`` (UTC), anonymous; the answer
is the as-flown timeline: ``{"entries": [{"obs_id", "begin", "settle", "end", "target_name",
...}], "status": ...}``, one entry per snapshot, several snapshots per observation (``obs_id``,
eleven digits). The data of an observation are in the HEASARC archive under
``<archive>/<YYYY_MM of its start>/<obs_id>/`` (HEASARC's Swift archive layout).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests

from ...core.answers import expect, json_object, one_line
from ...core.errors import PayloadError, Rejected, RemoteError
from ...core.frames import Frame
from ...core.interface import FollowupRequest
from ...core.timeutil import parse_utc, to_mjd
from ...core.transport import HTTPCall
from .too import SERVICE, api_url, swift_too_module

DEFAULT_ARCHIVE_URL = "https://heasarc.gsfc.nasa.gov/FTP/swift/data/obs"
#: At most this many observations are named in a status (all are in the frames).
NAMED = 10


@dataclass(frozen=True)
class Observation:
    """One Swift observation: its id, first and last instants (UTC) and exposure (s)."""

    obs_id: str
    begin: datetime
    end: datetime
    exposure: float


def query_call(config: Mapping[str, Any], request: FollowupRequest) -> HTTPCall:
    """The observation query, its parameters as ``swifttools``' ``ObsQuery`` builds them."""
    module = swift_too_module("obsquery")
    payload, target = request.payload, request.target
    end = parse_utc(payload["end_date"]).replace(tzinfo=None) + timedelta(days=1)  # the end date is included
    query = module.SwiftAFST(
        autosubmit=False, ra=target.ra, dec=target.dec, radius=float(payload["radius"]) / 60.0, begin=payload["start_date"], end=end
    )
    params = {key: str(value) for key, value in query._build_get_args().items()}
    return HTTPCall("GET", f"{api_url(config)}/swift/obsquery", headers={"Accept": "application/json"}, params=params)


def _instant(value: Any, what: str) -> datetime:
    try:
        return parse_utc(value)
    except (TypeError, ValueError):
        raise RemoteError(f"{SERVICE} listed an observation with an unreadable {what}") from None


def read(response: requests.Response) -> list[Observation]:
    """The observations in the answer, grouped by ``obs_id``, earliest first. A status of
    ``Rejected`` with errors raises ``Rejected``; anything not the protocol ``RemoteError``."""
    if response.status_code == 422:
        raise Rejected(f"{SERVICE} refused the observation query: {one_line(response.text)[:300]}")
    answer = json_object(expect(response, 200, service=SERVICE), service=SERVICE, what="the observation query")
    status = answer.get("status")
    if isinstance(status, dict) and status.get("status") == "Rejected":
        raise Rejected("; ".join(one_line(str(e)) for e in status.get("errors") or []) or f"{SERVICE} rejected the query")
    entries = answer.get("entries")
    if not isinstance(entries, list):
        raise RemoteError(f"{SERVICE} answered the observation query without entries")
    grouped: dict[str, list[tuple[datetime, datetime, datetime]]] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("obs_id"), str) or not entry["obs_id"].isdigit():
            raise RemoteError(f"{SERVICE} listed an observation without a readable obs_id")
        begin, end = _instant(entry.get("begin"), "begin"), _instant(entry.get("end"), "end")
        settle = _instant(entry["settle"], "settle") if entry.get("settle") else begin
        grouped.setdefault(entry["obs_id"], []).append((begin, settle, end))
    observations = [
        Observation(obs_id, min(b for b, _, _ in spans), max(e for _, _, e in spans), sum(max(0.0, (e - s).total_seconds()) for _, s, e in spans))
        for obs_id, spans in grouped.items()
    ]
    return sorted(observations, key=lambda obs: obs.begin)


def archive_url(config: Mapping[str, Any]) -> str:
    return str(config.get("archive_url") or DEFAULT_ARCHIVE_URL).rstrip("/")


def frames(config: Mapping[str, Any], observations: list[Observation]) -> tuple[Frame, ...]:
    """Each observation as its archive directory: name ``obs_id``, ``mjd`` of its start."""
    base = archive_url(config)
    return tuple(Frame(obs.obs_id, f"{base}/{obs.begin:%Y_%m}/{obs.obs_id}/", None, round(to_mjd(obs.begin), 6)) for obs in observations)


def summary(observations: list[Observation], payload: Mapping[str, Any]) -> str:
    """``3 Swift observations within 5 arcmin from 2025-01-01 to 2025-12-31: 00012345001
    (2025-03-02, 1.9 ks), ...`` (the first ``NAMED``, then how many more)."""
    where = f"within {payload['radius']:g} arcmin from {payload['start_date']} to {payload['end_date']}"
    count = len(observations)
    head = f"{count} Swift observation{'' if count == 1 else 's'} {where}"
    if not observations:
        return f"no Swift observation {where}"
    named = ", ".join(f"{obs.obs_id} ({obs.begin:%Y-%m-%d}, {obs.exposure / 1000:.1f} ks)" for obs in observations[:NAMED])
    more = f", and {count - NAMED} more" if count > NAMED else ""
    return f"{head}: {named}{more}"


def check_window(payload: Mapping[str, Any]) -> None:
    if payload["end_date"] < payload["start_date"]:
        raise PayloadError.single("$.end_date", "must not be before start_date")
