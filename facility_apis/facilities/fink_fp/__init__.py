"""Fink forced photometry of Rubin (LSST) objects."""

from .facility import FinkForcedPhotometryFacility

__all__ = ["FinkForcedPhotometryFacility"]
