"""Shared pytest set-up: the emulator fixtures shipped in facility_apis.testing."""

pytest_plugins = ["facility_apis.testing.fixtures"]
