"""Fink forced photometry of Rubin (LSST) objects: one query, the light curve in the answer.

Protocol (Fink's documentation, "Forced photometry"; its API code, ``fink-object-api``):
``POST <base>/api/v1/fp`` with JSON ``{"diaObjectId": "<id>[,<id>...]", "columns": "...",
"output-format": "json" | "csv" | "parquet"}`` answers the forced photometry of the objects as a
table (an empty one for an unknown object), or HTTP 400 with Fink's reason. No account. The
query changes nothing at Fink, so it is declared repeatable: the transport retries it, and a
failed submission may be tried again. Fink asks not to be abused: the deployment sets how many
ids go in one call (``max_ids_per_call``), and the gateway how often the facility is called
(``concurrency``, ``min_interval``).
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from ...core.answers import body_line, expect
from ...core.errors import ConfigurationError, PayloadError, RemoteError
from ...core.interface import Facility, FollowupRequest, Kind, Target, common_config_keys
from ...core.outcome import Outcome, State
from ...core.transport import HTTPCall, Transport
from .answers import answer_format, fink_error, rows
from .photometry import COLUMNS, convert

DEFAULT_BASE_URL = "https://api.lsst.fink-portal.org"
PATH = "/api/v1/fp"
SERVICE = "Fink"
FORMATS = ("json", "csv", "parquet")
MAX_IDS = 20
INT64_MAX = 2**63 - 1
#: An alias that names a Rubin object: its digits, optionally after "LSST" or "diaObjectId".
_ALIAS = re.compile(r"(?:(?:lsst|rubin|diaobjectid)[\s:_-]*)?(\d{1,19})", re.IGNORECASE)


def split_ids(text: str) -> list[str]:
    """The ids of a ``diaObjectId`` field, in order, each once, as written (digits)."""
    ids: list[str] = []
    for part in text.split(","):
        digits = part.strip().lstrip("0") or "0"
        if part.strip() and digits not in ids:
            ids.append(digits)
    return ids


def ids_in(names: list[str]) -> list[str]:
    """The Rubin object ids among a source's names (aliases), in order, each once."""
    found: list[str] = []
    for name in names:
        match = _ALIAS.fullmatch(name.strip())
        if match and int(match.group(1)) <= INT64_MAX and match.group(1).lstrip("0"):
            digits = match.group(1).lstrip("0")
            if digits not in found:
                found.append(digits)
    return found


class FinkForcedPhotometryFacility(Facility):
    """Forced photometry of Rubin objects from the Fink broker's API.

    Configuration (deployment-wide): ``base_url`` (default ``https://api.lsst.fink-portal.org``),
    ``output_format`` (``json``, ``csv`` or ``parquet``; default ``json``; Parquet needs
    ``facility-apis[fink]``), ``max_ids_per_call`` (ids per query, 1 to 20, default 10).
    """

    name: ClassVar[str] = "fink_fp"
    title: ClassVar[str] = "Fink forced photometry (LSST)"
    kind: ClassVar[Kind] = Kind.FORCED_PHOTOMETRY
    skyportal_class: ClassVar[str] = "FINKFPAPI"
    setup_url: ClassVar[str] = "https://api.lsst.fink-portal.org"
    example_remote_id: ClassVar[str] = "313761043604045880"
    config_keys: ClassVar[Mapping[str, str]] = {
        **common_config_keys("base_url"),
        "output_format": "what Fink is asked to answer in: json, csv or parquet (default json)",
        "max_ids_per_call": "how many diaObjectIds go in one query, 1 to 20 (default 10)",
    }
    base_url_key: ClassVar[str | None] = "base_url"

    def __init__(self, config: Mapping[str, Any] | None = None, **options: Any):
        super().__init__(config, **options)
        self.refuse_unusable_url("Fink base_url", self.base_url, secret=False)
        self.output_format = str(self.config.get("output_format", "json"))
        if self.output_format not in FORMATS:
            raise ConfigurationError(f"fink_fp: output_format must be one of {', '.join(FORMATS)}")
        if self.output_format == "parquet" and importlib.util.find_spec("pyarrow") is None:
            raise ConfigurationError("fink_fp: output_format parquet needs pyarrow: install facility-apis[fink]")
        batch = self.config.get("max_ids_per_call", 10)
        if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= MAX_IDS:
            raise ConfigurationError(f"fink_fp: max_ids_per_call must be an integer from 1 to {MAX_IDS}")
        self.max_ids_per_call = batch

    @property
    def base_url(self) -> str:
        return str(self.config.get("base_url") or DEFAULT_BASE_URL).rstrip("/")

    # -- the form ------------------------------------------------------------------------------

    def check_payload(self, payload: dict[str, Any]) -> None:
        if "diaObjectId" in payload:
            ids = split_ids(payload["diaObjectId"])
            if any(int(i) > INT64_MAX for i in ids):
                raise PayloadError.single("$.diaObjectId", f"each id must be at most {INT64_MAX} (a 64-bit integer)")
        start, end = payload.get("mjd_start"), payload.get("mjd_end")
        if start is not None and end is not None and end < start:
            raise PayloadError.single("$.mjd_end", "must not be before mjd_start")

    def fill_from_target(self, payload: dict[str, Any], target: Target) -> dict[str, Any]:
        if "diaObjectId" in payload:
            return payload
        found = ids_in([*target.aliases, target.id])[:MAX_IDS]
        if not found:
            raise PayloadError.single("$.diaObjectId", "is required: the source has no alias that is a Rubin diaObjectId (digits of a 64-bit integer)")
        payload["diaObjectId"] = ",".join(found)
        return payload

    # -- the calls -----------------------------------------------------------------------------

    def _ids(self, request: FollowupRequest) -> list[str]:
        text = request.payload.get("diaObjectId") or request.remote_id
        if not text:
            raise PayloadError.single("$.diaObjectId", "is required: give the Rubin object's id, or an alias of the source that is one")
        return split_ids(text)

    def _call(self, ids: list[str]) -> HTTPCall:
        body = {"diaObjectId": ",".join(ids), "columns": ",".join(COLUMNS), "output-format": self.output_format}
        return HTTPCall("POST", self.base_url + PATH, headers={"Accept": "application/json, application/csv, parquet"}, json=body, repeatable=True)

    def prepare(self, request: FollowupRequest) -> HTTPCall:
        """The first query (of ``max_ids_per_call`` ids; more ids make more queries)."""
        return self._call(self._ids(request)[: self.max_ids_per_call])

    def _query(self, call: HTTPCall, transport: Transport) -> list[dict[str, Any]]:
        response = transport.send(call)
        code = response.status_code
        if 400 <= code < 500 and code not in (401, 403, 404):
            # Fink refuses a query it cannot run (its words in a dict's text); asking again cannot help.
            said = fink_error(response.text or "") or body_line(response)
            raise RemoteError(f"Fink refused the query (HTTP {code}): {said}", http_status=code, permanent=True)
        expect(response, 200, service=SERVICE)
        kind = answer_format(response.headers.get("Content-Type", ""), response.content, self.output_format)
        return rows(response.content, kind)

    def _fetch(self, request: FollowupRequest, transport: Transport) -> Outcome:
        ids = self._ids(request)
        found: list[dict[str, Any]] = []
        for start in range(0, len(ids), self.max_ids_per_call):
            batch = ids[start : start + self.max_ids_per_call]
            found += self._query(self.prepare(request) if start == 0 else self._call(batch), transport)
        payload = request.payload
        photometry, per_id = convert(
            found, ids, snr_threshold=float(payload.get("snr_threshold", 3.0)), mjd_start=payload.get("mjd_start"), mjd_end=payload.get("mjd_end")
        )
        remote_id = ",".join(ids)
        named = f"diaObjectId {ids[0]}" if len(ids) == 1 else f"{len(ids)} diaObjectIds ({', '.join(f'{i}: {per_id[i]}' for i in ids)})"
        notes = list(photometry.notes)
        if not len(photometry):
            said = "Fink has no forced photometry" if not found else "Fink's forced photometry holds no usable point"
            return Outcome(State.NO_DATA, "; ".join([f"{said} for {named}", *notes]), remote_id=remote_id, photometry=photometry)
        return Outcome(State.COMPLETED, "; ".join([f"{photometry.summary()} from Fink for {named}", *notes]), remote_id=remote_id, photometry=photometry)

    def submit(self, request: FollowupRequest, transport: Transport) -> Outcome:
        """Query Fink: the answer is the data (``completed`` or ``no_data`` at once)."""
        return self._fetch(request, transport)

    def get(self, request: FollowupRequest, transport: Transport) -> Outcome:
        """Query again (the light curve grows as Rubin observes); the ids are the remote id."""
        return self._fetch(request, transport)
