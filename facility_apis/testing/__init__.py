"""Loopback emulators of the services facilities talk to, for tests and demos.

- :class:`ATLASEmulator`: the ATLAS forced photometry server (``/forcedphot``).
- :class:`SkyPortalStub`: SkyPortal's ``/api/facility``, ``/api/photometry`` and ``/api/sources``.
- :class:`LoopbackServer`: their base: a tornado server on 127.0.0.1 with injectable faults.

pytest fixtures live in :mod:`facility_apis.testing.fixtures`.
"""

from .atlas import ATLASEmulator
from .server import LoopbackServer
from .skyportal import SkyPortalStub

__all__ = ["ATLASEmulator", "LoopbackServer", "SkyPortalStub"]
