"""BHTOM: targets on the BHTOM network's list, their photometry brought back."""

from .facility import BHTOMFacility

__all__ = ["BHTOMFacility"]
