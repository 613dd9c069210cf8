"""Gemini North and South ToO triggers (SkyPortal's GEMINIAPI)."""

from .facility import GeminiFacility

__all__ = ["GeminiFacility"]
