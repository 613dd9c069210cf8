"""SEDM on the Palomar 60-inch (SkyPortal's SEDMAPI); its status messages come back through
``facility_apis.skyportal.SEDMListener``."""

from .facility import SEDMFacility

__all__ = ["SEDMFacility"]
