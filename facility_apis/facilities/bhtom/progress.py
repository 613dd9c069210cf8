"""What one BHTOM request has done, kept between calls as its ``Outcome.cursor`` (a JSON text).

The facility keeps no state; the caller hands this back on each call (see
``facility_apis.core.outcome.Outcome.cursor``). It records:

- what the request did to the target: ``created`` it, or found it and changed its importance and
  cadence from ``before`` to ``set`` (so that deleting the request can undo exactly that);
- until when to bring photometry back (``until``, UNIX seconds);
- which points were delivered: per observing night (integer MJD), for the newest
  :data:`KEEP_NIGHTS` nights, a digest of its points (count and hash of their keys) and the MJD of
  its last point; one digest for all older nights together. A night that only grew by points
  later than its last delivered one sends exactly those; a night changed otherwise (a late upload
  between earlier points, a withdrawn or recalibrated point) is delivered again whole, and
  SkyPortal's ``PUT /api/photometry`` stores a point it already has only once.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from .light_curve import Point

#: Nights kept one by one in the cursor; older nights share one digest (bounds the cursor's size).
KEEP_NIGHTS = 200


def _count(value: str) -> int:
    return int(value.split(":", 1)[0] or 0)


def digest(points: Iterable[Point]) -> str:
    """``<count>:<hash>`` of a set of points, independent of their order."""
    keys = sorted(point.key() for point in points)
    return f"{len(keys)}:{hashlib.sha256(chr(10).join(keys).encode()).hexdigest()[:12]}"


@dataclass(frozen=True)
class Progress:
    """See the module docstring. ``before``/``set`` are ``(importance, cadence in hours)``;
    ``delivered`` counts points handed to SkyPortal; ``kept_out`` counts points kept out, by reason."""

    created: bool | None = None
    before: tuple[float, float] | None = None
    set: tuple[float, float] | None = None
    until: float | None = None
    nights: dict[int, str] = field(default_factory=dict)
    older: tuple[int, str] | None = None
    delivered: int = 0
    kept_out: dict[str, int] = field(default_factory=dict)

    @property
    def known(self) -> bool:
        """Whether this request's effect on the target is recorded (a cursor was kept)."""
        return self.created is not None

    def encode(self) -> str:
        body: dict[str, Any] = {"v": 1, "created": self.created, "before": self.before, "set": self.set, "until": self.until}
        body |= {"nights": {str(night): value for night, value in sorted(self.nights.items())}, "older": self.older}
        body |= {"delivered": self.delivered, "kept_out": self.kept_out}
        return json.dumps(body, separators=(",", ":"))

    @classmethod
    def decode(cls, text: str | None) -> Progress:
        """The progress in ``text``; an empty one for ``None`` or a text this version cannot read
        (then the request's effect is unknown and every point is delivered again)."""
        try:
            body = json.loads(text) if text else None
            if not isinstance(body, dict) or body.get("v") != 1:
                return cls()
            pair = lambda value: None if value is None else (float(value[0]), float(value[1]))  # noqa: E731
            older = body.get("older")
            return cls(
                created=None if body.get("created") is None else bool(body["created"]),
                before=pair(body.get("before")),
                set=pair(body.get("set")),
                until=None if body.get("until") is None else float(body["until"]),
                nights={int(night): str(value) for night, value in (body.get("nights") or {}).items()},
                older=None if older is None else (int(older[0]), str(older[1])),
                delivered=int(body.get("delivered") or 0),
                kept_out={str(k): int(v) for k, v in (body.get("kept_out") or {}).items()},
            )
        except (TypeError, ValueError, IndexError, KeyError):
            return cls()

    def new_points(self, points: list[Point]) -> tuple[list[Point], Progress, int]:
        """``(points to deliver, progress after delivering them, how many of them are points
        delivered before, sent again)``.

        Per night: unchanged, nothing; grown only by points later than the last one delivered,
        exactly those; otherwise (a late upload between earlier points, a point withdrawn or
        recalibrated) the whole night again.
        """
        by_night: dict[int, list[Point]] = defaultdict(list)
        for point in points:
            by_night[point.night].append(point)
        upto = self.older[0] if self.older else None
        chosen: list[Point] = []
        again = 0
        if self.older is not None:
            old = [p for night, group in by_night.items() if night <= self.older[0] for p in group]
            if digest(old) != self.older[1]:
                chosen += old
                again += _count(self.older[1])
        nights: dict[int, str] = {}
        for night, group in by_night.items():
            if upto is not None and night <= upto:
                continue
            nights[night] = f"{digest(group)}@{max(p.mjd for p in group)!r}"
            kept = self.nights.get(night)
            if kept == nights[night]:
                continue
            if kept is None:
                chosen += group
                continue
            kept_digest, _, kept_last = kept.partition("@")
            last = float(kept_last) if kept_last else math.inf
            if digest(p for p in group if p.mjd <= last) == kept_digest:
                chosen += [p for p in group if p.mjd > last]
            else:
                chosen += group
                again += _count(kept_digest)
        older = self.older
        ordered = sorted(nights)
        if len(ordered) > KEEP_NIGHTS:
            upto = ordered[-KEEP_NIGHTS - 1]
            older = (upto, digest(p for night, group in by_night.items() if night <= upto for p in group))
            nights = {night: value for night, value in nights.items() if night > upto}
        chosen.sort(key=lambda point: point.mjd)
        return chosen, replace(self, nights=nights, older=older), min(again, len(chosen))

    def counted(self, delivered: int, kept_out: Counter[str]) -> Progress:
        """This progress with ``delivered`` more points delivered and ``kept_out`` more kept out."""
        merged = Counter(self.kept_out)
        merged.update(kept_out)
        return replace(self, delivered=self.delivered + delivered, kept_out=dict(merged))
