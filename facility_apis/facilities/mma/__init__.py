"""MMA observation plans delivered to a telescope's queue: API, scp, Slack or e-mail (SkyPortal's MMAAPI)."""

from .facility import MMAFacility

__all__ = ["MMAFacility"]
