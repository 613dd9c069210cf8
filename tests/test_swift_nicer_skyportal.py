"""Swift and NICER under SkyPortal's own class names: Swift's ``request_type`` is the observer's
choice of request kind, not SkyPortal's forced-photometry marker, so it is shown in the form and
reaches the facility; the marker itself is still hidden and stripped."""

from __future__ import annotations

import pytest

from facility_apis.skyportal import api_classes, configure
from facility_apis.skyportal.snapshot import core_request, facility_payload
from facility_apis.testing.skyportal_models import make_request


@pytest.fixture(autouse=True)
def _configured():
    configure()


def test_swifts_request_type_reaches_the_facility_and_skyportals_marker_does_not():
    assert facility_payload({"request_type": "XRT API", "poserr": 1}) == {"request_type": "XRT API", "poserr": 1}
    assert facility_payload({"request_type": "forced_photometry", "start_date": "2026-01-01"}) == {"start_date": "2026-01-01"}
    assert facility_payload({"request_type": "triggered"}) == {}
    request = make_request(payload={"request_type": "XRT API", "poserr": 2}, instrument=(3, "UVOTXRT", []), api_classname="UVOTXRTAPI")
    assert core_request(request).payload == {"request_type": "XRT API", "poserr": 2}


def test_the_swift_form_shows_its_request_type_and_atlas_still_hides_the_marker():
    classes = api_classes()
    assert "request_type" not in classes["UVOTXRTAPI"].ui_json_schema
    assert classes["ATLASAPI"].ui_json_schema["request_type"] == {"ui:widget": "hidden"}


@pytest.mark.parametrize(("name", "facility", "order"), [("UVOTXRTAPI", "swift", "desc"), ("NICERAPI", "nicer", "asc")])
def test_each_is_served_under_skyportals_own_class_name(name, facility, order):
    cls = api_classes()[name]
    info = cls.frontend_render_info({"id": 3, "name": name, "filters": []}, None)
    assert info["priorityOrder"] == order
    assert cls.facility_class.name == facility and info["formSchema"]["title"]
