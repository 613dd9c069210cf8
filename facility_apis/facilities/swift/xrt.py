"""XRT products built by the UK Swift Science Data Centre ("user objects"), built by ``swifttools``.

Protocol (``swifttools.ukssdc.xrt_prods`` 1.12 and its API documentation, ``JobStatus.md``,
``RetrieveProducts.md``, ``CancelJob.md``); every call is a JSON ``POST`` to
``<base>/<script>.php`` carrying ``api_name: "xrt_prods"`` and ``api_version``, and every answer a
JSON object whose ``OK`` is 1, or 0 with ``ERROR`` (and ``listErr``: ``[{"label", "list"}]``):

- ``run_userobject.php`` with ``XRTProductRequest.getJSONDict()``: ``{"OK": 1, "JobID", "URL",
  "jobPars"}``; the products are later found at ``<URL>/<stem>.tar.gz`` (stems ``lc``, ``spec``,
  ``psf``, ``enh``, ``xastrom``);
- ``checkProductStatus.php`` ``{"UserID", "JobID", "what": "lc,spec,...", "whatProg": ...}``:
  per product ``{"statusCode", "statusText", "progress"}``; codes 1 requested, 2 queued,
  3 running, 4 done (5: an astrometric position waiting for the standard one), negative ones are
  endings without a product (-4 cancelled, -3 not built, -2/-1 internal errors);
- ``canceljob.php`` ``{"UserID", "JobID", "what"}``: ``{"OK": 1, "status", "statusCodes"}``.

The UKSSDC asks that a job be polled no more than once a minute.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import requests

from ...core.answers import expect, json_object, one_line
from ...core.egress import Origin
from ...core.errors import Rejected, RemoteError
from ...core.frames import Frame
from ...core.interface import FollowupRequest
from ...core.timeutil import parse_utc
from ...core.transport import HTTPCall
from .too import load

SERVICE = "the UKSSDC XRT products service"
DEFAULT_BASE_URL = "https://www.swift.ac.uk/user_objects"
#: Products requested, by the service's short name, with their names for people.
PRODUCTS = {"lc": "light curve", "spec": "spectrum", "psf": "standard position", "enh": "enhanced position", "xastrom": "astrometric position"}
DONE = 4
RUNNING = 3
#: Swift's mission elapsed time counts from this instant (here in UTC, leap seconds not counted).
MET_EPOCH = datetime(2001, 1, 1, tzinfo=UTC)


def prods_module() -> Any:
    """``swifttools.ukssdc.xrt_prods``, imported on first use (the ``swift`` extra)."""
    return load("swifttools.ukssdc.xrt_prods", "Swift XRT product requests")


def base_url(config: Mapping[str, Any]) -> str:
    return str(config.get("xrt_url") or DEFAULT_BASE_URL).rstrip("/")


def met(moment: str) -> float:
    """Seconds from 2001-01-01T00:00:00 UTC to ``moment`` (UTC; a light curve's time zero)."""
    return round((parse_utc(moment) - MET_EPOCH).total_seconds(), 3)


def job_json(request: FollowupRequest) -> dict[str, Any]:
    """The job ``XRTProductRequest`` builds for ``request``: every product, around the source."""
    module = prods_module()
    payload, target = request.payload, request.target
    job = module.XRTProductRequest(request.allocation.altdata["XRT_UserID"], silent=True)
    job.setGlobalPars(
        getTargs=True,
        centroid=bool(payload["detornot"]),
        name=target.id,
        RA=target.ra,
        Dec=target.dec,
        centMeth=payload["centMeth"],
        detMeth=payload["detMeth"],
        useSXPS=False,
        T0=met(payload["T0"]),
        posErr=float(payload["poserr"]),
    )
    if payload["binMeth"] == "counts":
        job.addLightCurve(binMeth="counts", pcCounts=20, wtCounts=30, dynamic=True)
    else:
        job.addLightCurve(binMeth=payload["binMeth"])
    job.addSpectrum(hasRedshift=False)
    job.addStandardPos()
    job.addEnhancedPos()
    job.addAstromPos(useAllObs=True)
    valid, why = job.isValid()
    if not valid:
        raise Rejected(f"swifttools refused the XRT product request: {one_line(why)}")
    return job.getJSONDict()


def submit_call(config: Mapping[str, Any], request: FollowupRequest) -> HTTPCall:
    return HTTPCall("POST", f"{base_url(config)}/run_userobject.php", headers={"Accept": "application/json"}, json=job_json(request))


def _call(config: Mapping[str, Any], script: str, body: dict[str, Any], *, repeatable: bool) -> HTTPCall:
    module = prods_module()
    body = {**body, "api_name": module.XRTProductRequest._apiName, "api_version": module.XRTProductRequest._apiVer}
    return HTTPCall("POST", f"{base_url(config)}/{script}", headers={"Accept": "application/json"}, json=body, repeatable=repeatable)


def status_call(config: Mapping[str, Any], request: FollowupRequest) -> HTTPCall:
    """The status of every product (a POST that only reads: repeatable)."""
    what = ",".join(PRODUCTS)
    body = {"UserID": request.allocation.altdata["XRT_UserID"], "JobID": request.remote_id, "what": what, "whatProg": what}
    return _call(config, "checkProductStatus.php", body, repeatable=True)


def cancel_call(config: Mapping[str, Any], request: FollowupRequest) -> HTTPCall:
    body = {"UserID": request.allocation.altdata["XRT_UserID"], "JobID": request.remote_id, "what": ",".join(PRODUCTS)}
    return _call(config, "canceljob.php", body, repeatable=True)


def refusal(answer: Mapping[str, Any]) -> str:
    """``ERROR`` and the ``listErr`` entries (``{"label", "list"}``) as one line."""
    parts = [one_line(str(answer.get("ERROR") or "refused without a reason"))]
    for entry in answer.get("listErr") or []:
        if isinstance(entry, dict):
            items = ", ".join(one_line(str(item)) for item in entry.get("list") or [])
            parts.append(f"{one_line(str(entry.get('label', '')))} {items}".strip())
    return "; ".join(part for part in parts if part)


def read(response: requests.Response, what: str) -> dict[str, Any]:
    """An answer of the service: the JSON object when ``OK`` is 1. ``Rejected`` with the
    service's reason when ``OK`` is 0; ``RemoteError`` for what is not the protocol."""
    answer = json_object(expect(response, 200, service=SERVICE), service=SERVICE, what=what)
    ok = answer.get("OK")
    if ok in (0, "0"):
        raise Rejected(refusal(answer))
    if ok not in (1, "1"):
        raise RemoteError(f"{SERVICE} answered without OK for {what}", http_status=response.status_code)
    return answer


def job_url(answer: Mapping[str, Any], config: Mapping[str, Any]) -> str:
    """The job's ``URL``, if on the service's own origin (products are fetched only there)."""
    url = answer.get("URL")
    if not isinstance(url, str) or Origin.of(url) != Origin.of(base_url(config)):
        raise RemoteError(f"{SERVICE} named no products URL on its own site", permanent=True)
    return url.rstrip("/")


def product_states(answer: Mapping[str, Any]) -> dict[str, tuple[int, str]]:
    """Per product short name: ``(statusCode, statusText)``; a product the answer omits, or whose
    code is unreadable, raises ``RemoteError`` (asked again later)."""
    states = {}
    for short in PRODUCTS:
        entry = answer.get(short)
        try:
            code = int(entry["statusCode"])  # type: ignore[index]
        except (TypeError, KeyError, ValueError):
            raise RemoteError(f"{SERVICE} gave no status for the {PRODUCTS[short]}") from None
        states[short] = (code, one_line(str(entry.get("statusText") or "")))
    return states


def frames(url: str, states: Mapping[str, tuple[int, str]]) -> tuple[Frame, ...]:
    """The built products as files: ``<URL>/<stem>.tar.gz``, filter named after the product."""
    return tuple(Frame(f"{short}.tar.gz", f"{url}/{short}.tar.gz", PRODUCTS[short]) for short, (code, _) in states.items() if code == DONE)


def summary(states: Mapping[str, tuple[int, str]]) -> str:
    """``light curve: Running; spectrum: Queued; ...`` (the service's own words)."""
    return "; ".join(f"{PRODUCTS[short]}: {text or f'code {code}'}" for short, (code, text) in states.items())
