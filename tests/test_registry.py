"""The registry: lazy built-ins, entry points, duplicates refused, unknown names explained."""

import subprocess
import sys
from importlib.metadata import EntryPoint

import pytest

from facility_apis.core import registry as registry_module
from facility_apis.core.errors import DuplicateFacility, UnknownFacility
from facility_apis.core.interface import Facility, Kind
from facility_apis.core.registry import BUILTINS, Registry


class Dummy(Facility):
    name = "dummy"
    title = "Dummy"
    kind = Kind.NOTIFICATION
    skyportal_class = "DUMMYAPI"


def test_importing_the_package_imports_no_facility():
    code = (
        "import sys, facility_apis, facility_apis.core.registry, facility_apis.core.interface;"
        "print([m for m in sys.modules if m.startswith('facility_apis.facilities.')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_builtins_load_by_name():
    registry = Registry(group=None)
    assert registry.names() == list(BUILTINS)
    assert registry.get("atlas").name == "atlas"


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(UnknownFacility) as caught:
        Registry(group=None).get("nope")
    assert str(caught.value) == f"no facility named 'nope'; known facilities: {', '.join(BUILTINS)}"


def test_register_a_class_and_a_dotted_path():
    registry = Registry(group=None)
    registry.register("dummy", Dummy)
    assert registry.get("dummy") is Dummy
    assert registry.names() == [*BUILTINS, "dummy"]
    with pytest.raises(DuplicateFacility, match="'dummy' is claimed by both"):
        registry.register("dummy", f"{__name__}:Dummy")


def test_entry_points_are_added_and_duplicates_refused(monkeypatch):
    def fake_entry_points(group):
        assert group == "skyportal.facility_apis"
        return [
            EntryPoint("dummy", f"{__name__}:Dummy", group),
            EntryPoint("atlas", "other_pkg.atlas:ATLAS", group),
        ]

    monkeypatch.setattr(registry_module, "entry_points", fake_entry_points)
    with pytest.raises(DuplicateFacility, match="'atlas' is claimed by both facility_apis"):
        Registry()


def test_entry_point_facility_is_loaded_lazily(monkeypatch):
    monkeypatch.setattr(registry_module, "entry_points", lambda group: [EntryPoint("dummy", f"{__name__}:Dummy", group)])
    registry = Registry()
    assert "dummy" in registry
    assert registry.get("dummy") is Dummy
    assert [cls.name for cls in registry.all()] == [*BUILTINS, "dummy"]


def test_class_must_declare_the_registered_name():
    registry = Registry({"other": f"{__name__}:Dummy"}, group=None)
    with pytest.raises(DuplicateFacility, match="declares name 'dummy', registered as 'other'"):
        registry.get("other")
