"""ZTF forced photometry through IPAC's forced photometry service (ZFPS)."""

from .facility import ZTFForcedPhotometryFacility

__all__ = ["ZTFForcedPhotometryFacility"]
