"""Every facility built into this package through the shipped conformance suite
(facility_apis.testing.conformance); an installed outside facility runs it in its own tests."""

from pathlib import Path

from facility_apis.core.registry import Registry
from facility_apis.testing.conformance import conformance_suite

TestConformance = conformance_suite(*Registry(group=None).all(), docs_dir=Path(__file__).resolve().parents[1] / "docs")
