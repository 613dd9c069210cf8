"""A guide star from the host's offset-star service, when the deployment names one.

The host is SkyPortal: ``GET <skyportal>/api/sources/<obj_id>/offsets?num_offset_stars=N&obstime=
<ISO time>`` (its API reference, "Retrieve offset stars to aid in spectroscopy") answers in its
envelope with ``data.starlist_info``: the source itself (``name``, ``ra``, ``dec``), then the
offset stars nearest first (``name``, ``ra``, ``dec`` in degrees, ``mag``: Gaia RP, ``dras``,
``ddecs``, ``pa``). SkyPortal picks them from Gaia within 2 arcminutes, RP 10-18 by default,
relaxing the limits when it finds too few: the stars its own Gemini class sends. They are not
checked against the guide probe's patrol field at the template's position angle; without the
service, the trigger names no guide star and the Observing Tool picks one (the servlet's
documentation says so).

Deployment settings (``offset_stars`` in the facility's configuration)::

    offset_stars:
      url: https://skyportal.example.org/api/sources/{obj_id}/offsets   # {obj_id} is filled in
      token_file: /etc/facility-apis/skyportal-offsets.token            # or token: <token>
      probe: OIWFS                                                      # PWFS1, PWFS2, OIWFS or AOWFS
"""

from __future__ import annotations

import math
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ...core.answers import expect, json_object
from ...core.egress import EgressPolicy
from ...core.errors import ConfigurationError, Rejected, RemoteError
from ...core.secret_settings import secret_setting
from ...core.transport import Transport
from .trigger import PROBES, GuideStar

SERVICE = "the offset-star service"
#: How many offset stars to ask for (SkyPortal's default); the first usable one is taken.
ASKED = 3
_KEYS = {"url", "token", "token_file", "probe"}


@dataclass(frozen=True)
class OffsetStarService:
    """Where the host's offset stars come from: ``url`` (a template with ``{obj_id}``), the token
    sent as ``Authorization: token <token>``, and the probe the star is for."""

    url: str
    token: str | None = field(default=None, repr=False)
    probe: str = "OIWFS"

    @classmethod
    def from_config(cls, config: Any, *, egress: EgressPolicy) -> OffsetStarService | None:
        """The service of the ``offset_stars`` settings (``None``: not configured).
        ``ConfigurationError`` names the key and the rule (never the token)."""
        if config is None:
            return None
        if not isinstance(config, Mapping):
            raise ConfigurationError("offset_stars must be a mapping")
        unknown = sorted(set(config) - _KEYS)
        if unknown:
            raise ConfigurationError(f"offset_stars: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(_KEYS))}")
        url = config.get("url")
        if not isinstance(url, str) or url.count("{obj_id}") != 1:
            raise ConfigurationError("offset_stars.url must be a URL with {obj_id} where the source's id goes")
        reason = egress.refusal(url.replace("{obj_id}", "x"), secret=True)
        if reason is not None:
            raise ConfigurationError(f"offset_stars.url is refused: {reason}")
        probe = config.get("probe", "OIWFS")
        if probe not in PROBES:
            raise ConfigurationError(f"offset_stars.probe must be one of {', '.join(PROBES)}")
        return cls(url, _token(config), probe)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}", "Accept": "application/json"} if self.token else {"Accept": "application/json"}

    def guide_star(self, obj_id: str, when: datetime, transport: Transport) -> GuideStar:
        """The first offset star the service lists for ``obj_id`` at ``when``; ``Rejected`` when
        it lists none, ``RemoteError`` for an answer outside its protocol (and the transport's
        and ``expect``'s errors as they come)."""
        if self.token:
            transport.add_secrets([self.token])
        url = self.url.replace("{obj_id}", urllib.parse.quote(obj_id, safe=""))
        params = {"num_offset_stars": str(ASKED), "obstime": when.strftime("%Y-%m-%dT%H:%M:%S")}
        response = expect(transport.request("GET", url, headers=self.headers(), params=params), 200, service=SERVICE)
        body = json_object(response, service=SERVICE, what="the offset stars")
        data = body.get("data") if body.get("status") == "success" else None
        starlist = data.get("starlist_info") if isinstance(data, dict) else None
        if not isinstance(starlist, list):
            raise RemoteError(f"{SERVICE} answered without a star list", permanent=True)
        for entry in starlist:
            star = _offset_star(entry)
            if star is not None:
                return GuideStar(star[0], star[1], star[2], self.probe)
        raise Rejected(f"no guide star: {SERVICE} found no offset star near {obj_id} (Gemini's trigger was not sent)")


def _offset_star(entry: Any) -> tuple[str, float, float] | None:
    """``(name, ra, dec)`` of a star-list entry that is an offset star (it has a magnitude; the
    source's own entry has none), or ``None``."""
    if not isinstance(entry, dict) or not _finite(entry.get("mag")):
        return None
    ra, dec, name = entry.get("ra"), entry.get("dec"), entry.get("name")
    if not (_finite(ra) and _finite(dec) and 0 <= ra < 360 and -90 <= dec <= 90):
        return None
    return (name if isinstance(name, str) and name.strip() else "GS"), float(ra), float(dec)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _token(config: Mapping[str, Any]) -> str | None:
    token = secret_setting(config, "token", where="offset_stars")
    if token is not None and (not isinstance(token, str) or not token or any(not "\x21" <= c <= "\x7e" for c in token)):
        raise ConfigurationError("offset_stars.token must be printable ASCII without spaces")
    return token
