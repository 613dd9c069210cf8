"""The form instance generator: stable ids, every kind of probe, valid bases, branches that hold."""

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from jsonschema import Draft7Validator

from facility_apis.core.registry import default_registry
from facility_apis.core.schemas import DRAFT7
from facility_apis.core.timeutil import DATE_PATTERN, INSTANT_PATTERN, utc_date, utcnow
from facility_apis.testing.form_instances import FIXED_PROBES, NO_VALUE, TIME_FORMATS, UNKNOWN_KEY, base_instance, form_instances, format_probes, valid_value

FACILITIES = default_registry().all()

# SkyPortal-style altdata with a discriminated dependencies/oneOf (the GENERIC facility's shape).
NOTIFY = {
    "$schema": DRAFT7,
    "type": "object",
    "properties": {
        "notification_type": {"type": "string", "enum": ["API", "slack"], "title": "How to notify"},
        "retries": {"type": "integer", "minimum": 0, "maximum": 5},
        "options": {"type": "object", "properties": {"verbose": {"type": "boolean"}, "tag": {"type": "string", "maxLength": 8}}},
    },
    "required": ["notification_type"],
    "dependencies": {
        "notification_type": {
            "oneOf": [
                {
                    "properties": {
                        "notification_type": {"enum": ["API"]},
                        "endpoint": {"type": "string", "format": "uri"},
                        "api_token": {"type": "string", "minLength": 3},
                    },
                    "required": ["endpoint", "api_token"],
                },
                {
                    "properties": {
                        "notification_type": {"enum": ["slack"]},
                        "channel": {"type": "string", "pattern": "^#", "default": "#followup"},
                    },
                    "required": ["channel"],
                },
            ]
        }
    },
}


def by_id(schema, **kwargs):
    return {instance.id: instance for instance in form_instances(schema, **kwargs)}


def valid(schema, data):
    return not list(Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER).iter_errors(data))


def test_instances_are_deterministic_with_unique_ids():
    first, second = form_instances(NOTIFY), form_instances(NOTIFY)
    assert [(i.id, i.data) for i in first] == [(i.id, i.data) for i in second]
    assert len({i.id for i in first}) == len(first)
    assert all(i.note for i in first)


def reviewed_as_invalid(name, form, instance):
    """Whether the browser check's reviewed list says the package refuses this instance of the
    form (a rule its schema cannot say, such as BHTOM's "a token, or a username and password")."""
    from facility_apis.testing.browser_check import load_expected

    return any(
        (e.facility, e.form, e.mode, e.instance) == (name, form, "plain", instance) and e.python.startswith("invalid")
        for e in load_expected()
    )


@pytest.mark.parametrize("cls", FACILITIES, ids=[cls.name for cls in FACILITIES])
def test_each_facilitys_examples_and_minimal_instances_are_valid_to_the_facility(cls):
    facility = cls()
    request, altdata = by_id(facility.request_schema()), by_id(cls.altdata_schema())
    facility.validate_payload(request["example"].data)
    if not reviewed_as_invalid(cls.name, "request", "minimal"):
        facility.validate_payload(request["minimal"].data)
    facility.validate_altdata(altdata["example"].data)
    if not reviewed_as_invalid(cls.name, "altdata", "minimal"):
        facility.validate_altdata(altdata["minimal"].data)


def test_every_kind_of_probe_is_generated_for_the_atlas_request_form():
    from facility_apis.facilities.atlas import ATLASFacility

    instances = by_id(ATLASFacility().request_schema())
    expected = {
        "start_date/missing": lambda d: "start_date" not in d,
        "start_date/null": lambda d: d["start_date"] is None,
        "start_date/wrong-type": lambda d: d["start_date"] == 12345,
        "start_date/empty-string": lambda d: d["start_date"] == "",
        "start_date/pattern:mismatch": lambda d: d["start_date"].startswith(" "),
        "snr_threshold/exclusiveMinimum:at": lambda d: d["snr_threshold"] == 0,
        "snr_threshold/maximum:beyond": lambda d: d["snr_threshold"] == 101,
        "use_reduced/wrong-type": lambda d: d["use_reduced"] == "true",
        "radec_epoch_year/minimum:beyond": lambda d: d["radec_epoch_year"] == 1899,
        "propermotion_ra/dependencies:all": lambda d: {"propermotion_ra", "propermotion_dec", "radec_epoch_year"} <= set(d),
        "propermotion_ra/dependencies:without-radec_epoch_year": lambda d: "propermotion_ra" in d and "radec_epoch_year" not in d,
        "unknown-key": lambda d: d[UNKNOWN_KEY] == "x",
        "empty": lambda d: d == {},
    }
    for instance_id, holds in expected.items():
        assert holds(instances[instance_id].data), instance_id
    # The kit's date fields get one probe per spelling a date takes.
    assert {i for i in instances if i.startswith("end_date/date:")} == {f"end_date/date:{label}" for label, _ in format_probes("date")}
    assert instances["end_date/date:year-0000"].data["end_date"] == "0000-01-01"


def test_ignored_host_fields_are_not_probed():
    schema = {"type": "object", "properties": {"a": {"type": "string"}, "request_type": {"type": "string", "enum": ["x"]}}}
    ids = set(by_id(schema, ignore=["request_type"]))
    assert "a/wrong-type" in ids
    assert not any(i.startswith("request_type/") for i in ids)


def test_each_oneof_branch_is_filled_and_emptied_field_by_field():
    instances = by_id(NOTIFY)
    api, slack = instances["dependencies:notification_type=API"], instances["dependencies:notification_type=slack"]
    assert valid(NOTIFY, api.data) and api.data["notification_type"] == "API"
    assert valid(NOTIFY, slack.data) and slack.data["channel"] == "#followup"
    for branch, fields in (("API", ("endpoint", "api_token")), ("slack", ("channel",))):
        for field in fields:
            missing = instances[f"dependencies:notification_type={branch}/missing:{field}"].data
            assert field not in missing and not valid(NOTIFY, missing)
    # The branch's own properties are probed inside the branch.
    assert instances["dependencies:notification_type=API/api_token/minLength:at"].data["api_token"] == "xxx"
    assert instances["dependencies:notification_type=API/endpoint/format:relative"].data["notification_type"] == "API"
    assert instances["dependencies:notification_type=slack/channel/pattern:mismatch"].data["channel"] == " #followup"
    assert instances["notification_type/enum:slack"].data["notification_type"] == "slack"
    assert instances["notification_type/enum:outside"].data["notification_type"] == "not-an-option"


def test_without_examples_the_base_satisfies_the_branch_its_values_select():
    base = base_instance(NOTIFY)
    assert base["notification_type"] == "API" and {"endpoint", "api_token"} <= set(base)
    assert valid(NOTIFY, base)
    # Each single-field probe then starts from a valid instance.
    assert valid(NOTIFY, by_id(NOTIFY)["retries/maximum:at"].data)
    # A branch's instance carries no field of the other branch.
    assert "endpoint" not in by_id(NOTIFY)["dependencies:notification_type=slack"].data


def test_nested_objects_and_integers_are_probed():
    instances = by_id(NOTIFY)
    assert instances["options.tag/maxLength:above"].data["options"]["tag"] == "x" * 9
    assert instances["options.verbose/wrong-type"].data["options"]["verbose"] == "true"
    assert instances["retries/fraction"].data["retries"] == 3.5
    assert instances["retries/minimum:beyond"].data["retries"] == -1


def test_valid_values_respect_the_schema():
    assert valid_value({"type": "integer", "minimum": 1, "maximum": 2}) == 2
    assert valid_value({"type": "number", "exclusiveMinimum": 0}) == 1
    assert valid_value({"type": "string", "minLength": 4}) == "xxxx"
    assert valid_value({"type": "string", "format": "email"}) == FIXED_PROBES["email"][0][1]
    assert valid_value({"type": "string", "pattern": "^[A-Z]+$"}) is NO_VALUE  # no example to go by
    assert valid_value({"type": "string", "pattern": "^[A-Z]+$", "examples": ["ABC"]}) == "ABC"
    for probes in [*FIXED_PROBES.values(), *(format_probes(kind) for kind in TIME_FORMATS)]:
        assert probes[0][0] == "valid"


def test_without_examples_the_base_fills_the_required_fields():
    schema = {
        "$schema": DRAFT7,
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 10}, "day": {"type": "string", "format": "date"}, "note": {"type": "string"}},
        "required": ["n", "day"],
    }
    base = base_instance(schema)
    assert base == {"n": 11, "day": (utcnow() + timedelta(days=30)).date().isoformat()}
    assert valid(schema, base)


# -- date and time probes move with the calendar, so their verdicts do not --------------------


DAYS = [datetime(2026, 11, 30, 13, 45, tzinfo=UTC), datetime(2027, 2, 20, 23, 59, tzinfo=UTC), datetime(2031, 12, 31, 0, 1, tzinfo=UTC)]


@pytest.mark.parametrize("today", DAYS)
def test_date_probes_are_spelled_from_the_day_the_check_runs(today):
    dates = dict(format_probes("date", {}, today))
    ahead = (today + timedelta(days=30)).date()
    assert dates["valid"] == ahead.isoformat() and date.fromisoformat(dates["valid"]) > today.date()
    leap = date.fromisoformat(dates["leap-day"])
    assert (leap.month, leap.day) == (2, 29) and leap >= ahead + timedelta(days=60)  # after every default window
    assert dates["with-time"].startswith(dates["valid"] + " ") and dates["date-time"].startswith(dates["valid"] + "T")
    for label in ("impossible-day", "month-13", "year-0000", "no-dashes", "one-digit-month"):
        with pytest.raises(ValueError):
            utc_date(dates[label])
    assert dates["year-0000"] == "0000-01-01"


def test_time_probes_of_a_field_with_a_default_are_spelled_from_its_default():
    """A valid probe of a window's field stays inside the form's default window, whatever the day."""
    spec = {"type": "string", "pattern": INSTANT_PATTERN, "default": "2031-03-04T05:06:07Z"}
    probes = dict(format_probes("instant", spec))
    assert probes["valid"] == "2031-03-04T05:06:07Z" and probes["space"] == "2031-03-04 05:06:07"
    assert probes["offset"] == "2031-03-04T05:06:07+02:00" and probes["fraction"] == "2031-03-04T05:06:07.250Z"
    assert probes["leap-second"] == "2031-12-31T23:59:60Z" and probes["year-0000"] == "0000-01-01T00:00:00Z"
    assert dict(format_probes("date", {"default": "2031-03-04"}))["valid"] == "2031-03-04"


def test_the_kits_instant_fields_get_every_spelling_of_a_date_and_time():
    schema = {"type": "object", "properties": {"start": {"type": "string", "pattern": INSTANT_PATTERN}}, "required": ["start"]}
    instances = by_id(schema)
    labels = {label for label, _ in format_probes("instant")}
    assert {i for i in instances if i.startswith("start/instant:")} == {f"start/instant:{label}" for label in labels}
    for label in ("valid", "offset", "fraction", "no-zone", "space"):  # what the pattern takes
        assert re.fullmatch(INSTANT_PATTERN.strip("^$"), instances[f"start/instant:{label}"].data["start"]), label
    for label in ("leap-second", "date-only", "year-0000"):
        assert not re.fullmatch(INSTANT_PATTERN.strip("^$"), instances[f"start/instant:{label}"].data["start"]), label


def test_the_base_takes_a_window_from_its_defaults_not_from_the_examples_fixed_dates():
    """Probes are spelled from the defaults; against an example's fixed window their verdicts
    would change as the calendar moves past it."""
    today = utcnow().date().isoformat()
    schema = {
        "type": "object",
        "properties": {
            "start_date": {"type": "string", "pattern": DATE_PATTERN, "default": today},
            "end_date": {"type": "string", "pattern": DATE_PATTERN},
            "n": {"type": "integer", "default": 1},
        },
        "examples": [{"start_date": "2026-10-01", "end_date": "2026-10-31", "n": 5}],
    }
    assert base_instance(schema) == {"start_date": today, "end_date": "2026-10-31", "n": 5}
    instances = by_id(schema)
    assert instances["example"].data == schema["examples"][0]  # the example itself is submitted as written
    assert instances["start_date/date:valid"].data["start_date"] == today


def test_the_leap_day_lies_after_the_day_the_check_runs_even_for_a_window_in_the_past():
    today = datetime(2027, 12, 20, 9, 0, tzinfo=UTC)
    past = {"default": "2027-11-20"}  # a forced-photometry start, 30 days back
    leap = date.fromisoformat(dict(format_probes("date", past, today))["leap-day"])
    assert leap == date(2028, 2, 29) and leap >= today.date() + timedelta(days=60)
    assert dict(format_probes("date", past, datetime(2028, 1, 5, tzinfo=UTC)))["leap-day"] == "2032-02-29"
