"""KAIT through its request script."""

from .facility import KAITFacility

__all__ = ["KAITFacility"]
