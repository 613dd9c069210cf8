"""KAIT: a ToO request posted to KAIT's request script.

Protocol (SkyPortal's ``kait.py`` and the exchange its test cassette recorded; KAIT publishes no
document of its own):

- ``POST <base>/cgi-bin/internal/process_kait_ztf_request.py`` with HTTP Basic authentication and
  the JSON body ``{"name": <source id>, "ra": "%.5f", "dec": "%.5f", "filters": <the filter
  letters run together, e.g. "BVRI">, "exposure": "long" | "short"}``;
- an accepted request is answered HTTP 200 ``{"success": "true", "message": "The Command
  Completed Successfully"}`` (blank lines around it); the script also answers its refusals with
  HTTP 200, as ``"success": "false"`` with a message or as an error text;
- there is no way to list, follow or cancel a request: KAIT's team does that by hand.

The script's host served plain http in SkyPortal's default; credentials never travel over plain
http here (https by default; plain http only to a loopback address, e.g. a tunnel the deployment
sets up), see ``core/egress.py``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any, ClassVar

from ...core.answers import body_line, expect, is_html
from ...core.errors import Rejected
from ...core.interface import Facility, FollowupRequest, Kind, common_config_keys
from ...core.outcome import Outcome, State
from ...core.transport import HTTPCall, Transport

DEFAULT_BASE_URL = "https://herculesii.astro.berkeley.edu"
PATH = "/cgi-bin/internal/process_kait_ztf_request.py"
SERVICE = "KAIT"
CANNOT_CANCEL = (
    "cannot cancel at KAIT: its request script offers no cancel, so the request stays in KAIT's queue; "
    "ask the KAIT team to remove it"
)


class KAITFacility(Facility):
    """KAIT (the Katzman Automatic Imaging Telescope) through its request script.

    Configuration (deployment-wide): ``base_url``, the script's host (default
    ``https://herculesii.astro.berkeley.edu``).
    """

    name: ClassVar[str] = "kait"
    title: ClassVar[str] = "KAIT"
    kind: ClassVar[Kind] = Kind.OBSERVATION
    skyportal_class: ClassVar[str] = "KAITAPI"
    example_remote_id: ClassVar[str] = "ZTF26aaexample/BVRI/long"
    config_keys: ClassVar[Mapping[str, str]] = common_config_keys("base_url")
    base_url_key: ClassVar[str | None] = "base_url"

    def __init__(self, config: Mapping[str, Any] | None = None, **options: Any):
        super().__init__(config, **options)
        self.refuse_unusable_url("KAIT base_url", self.base_url)

    @property
    def base_url(self) -> str:
        return str(self.config.get("base_url") or DEFAULT_BASE_URL).rstrip("/")

    def _body(self, request: FollowupRequest) -> dict[str, str]:
        payload, target = request.payload, request.target
        return {
            "name": target.id,
            "ra": f"{target.ra:.5f}",
            "dec": f"{target.dec:.5f}",
            "filters": "".join(payload["observation_choices"]),
            "exposure": payload["observation_type"],
        }

    def prepare(self, request: FollowupRequest) -> HTTPCall:
        altdata = request.allocation.altdata
        login = base64.b64encode(f"{altdata['username']}:{altdata['password']}".encode()).decode("ascii")
        return HTTPCall("POST", self.base_url + PATH, headers={"Authorization": f"Basic {login}"}, json=self._body(request))

    def submit(self, request: FollowupRequest, transport: Transport) -> Outcome:
        call = self.prepare(request)
        response = expect(transport.send(call), 200, service=SERVICE)
        body = call.json
        remote_id = f"{body['name']}/{body['filters']}/{body['exposure']}"
        text = (response.text or "").strip()
        answer = _json_object(text)
        if answer is not None and "success" in answer:
            message = body_line(response) if not isinstance(answer.get("message"), str) else answer["message"]
            if str(answer["success"]).lower() == "true":
                return Outcome(State.SUBMITTED, f"KAIT queued {body['filters']} ({body['exposure']}): {message}", remote_id=remote_id)
            raise Rejected(f"KAIT refused the request: {message}")
        if text and not is_html(text) and "error" in text.lower():
            raise Rejected(f"KAIT refused the request: {body_line(response)}")
        said = body_line(response)
        unsure = f"KAIT's answer does not confirm the request ({said}); it may or may not have been queued"
        return Outcome(State.FAILED, f"{unsure}: ask the KAIT team before submitting again", maybe_sent=True)

    def delete(self, request: FollowupRequest, transport: Transport) -> Outcome:
        """Before submission: deleted (nothing was sent). After: the request stays submitted and
        the detail says KAIT cannot cancel it (no exception)."""
        if not request.remote_id:
            return Outcome(State.DELETED, "nothing had been sent to KAIT")
        return Outcome(State.SUBMITTED, CANNOT_CANCEL, remote_id=request.remote_id)


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
