"""The WINTER observatory's ToO API: the WINTER and SPRING cameras."""

from .cameras import SPRINGFacility, WINTERFacility

__all__ = ["SPRINGFacility", "WINTERFacility"]
