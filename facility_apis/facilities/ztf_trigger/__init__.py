"""ZTF triggering through Kowalski's ``/api/triggers/ztf``."""

from .facility import ZTFTriggerFacility

__all__ = ["ZTFTriggerFacility"]
