"""The store's two refusals, raised by every kind of record alike."""

from __future__ import annotations

from ...core.errors import FacilityError


class NotFound(FacilityError):
    """No such row, or not one the caller may see (the two are not told apart)."""


class Conflict(FacilityError):
    """The row exists but cannot take this change (e.g. cancelling a finished request)."""
