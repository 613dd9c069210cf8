"""Data files a facility lists for a request: the ``frames`` of an ``Outcome``.

A facility that gives back files rather than photometry (an observatory archive's reduced
images or spectra) hands them on as :class:`Frame` values; callers store and show them (the
gateway keeps the newest list with the request, ``GET /api/followup_request/<id>`` shows it).
SkyPortal has no endpoint for such a list, so nothing is posted to it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Frame:
    """One file: ``name`` (its file name), ``url`` (where to download it: the facility's page
    says who may and for how long), ``filter`` (the facility's own name of the filter or other
    optical element, ``None`` when it names none), ``mjd`` (when the exposure started, MJD UTC;
    ``None`` when unknown)."""

    name: str
    url: str
    filter: str | None = None
    mjd: float | None = None

    def __post_init__(self) -> None:
        if not self.name or not self.url:
            raise ValueError("a frame needs a name and a url")
        if self.mjd is not None and not math.isfinite(self.mjd):
            raise ValueError("a frame's mjd must be finite")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"name", "url", "filter", "mjd"}``."""
        return {"name": self.name, "url": self.url, "filter": self.filter, "mjd": self.mjd}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Frame:
        return cls(data["name"], data["url"], data.get("filter"), data.get("mjd"))


def frames_summary(frames: Iterable[Frame], noun: str = "frame") -> str:
    """``"3 frames (gp ×2, rp)"``: how many of ``noun`` (made plural), and how many in each
    filter, in first-seen order."""
    frames = list(frames)
    counts = Counter(frame.filter or "no filter" for frame in frames)
    parts = [name if count == 1 else f"{name} ×{count}" for name, count in counts.items()]
    return f"{len(frames)} {noun}{'' if len(frames) == 1 else 's'}" + (f" ({', '.join(parts)})" if parts else "")
