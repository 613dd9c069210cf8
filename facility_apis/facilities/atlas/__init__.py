"""ATLAS forced photometry (the ATLAS project's forced photometry server)."""

from .facility import ATLASFacility

__all__ = ["ATLASFacility"]
