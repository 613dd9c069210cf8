"""pytest fixtures: started emulators, one per test.

Load them from a ``conftest.py`` with ``pytest_plugins = ["facility_apis.testing.fixtures"]``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .atlas import ATLASEmulator
from .skyportal import SkyPortalStub


@pytest.fixture
def atlas_emulator() -> Iterator[ATLASEmulator]:
    """An :class:`ATLASEmulator` with its defaults (token ``test-token`` for user ``tester``)."""
    with ATLASEmulator() as emulator:
        yield emulator


@pytest.fixture
def skyportal_stub() -> Iterator[SkyPortalStub]:
    """A :class:`SkyPortalStub` with its defaults (token ``skyportal-token``)."""
    with SkyPortalStub() as stub:
        yield stub
