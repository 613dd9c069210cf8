"""Fink forced photometry (LSST): the exact query, ids beyond 2^53 kept exact in every format, the
conversion, every answer branch and its documented status, with ``responses``."""

import importlib.util
import json
import math
import re
from pathlib import Path

import pytest
import requests
import responses
from responses import registries

from facility_apis.core.errors import ConfigurationError, PayloadError, RemoteError
from facility_apis.core.interface import Allocation, FollowupRequest, Target
from facility_apis.core.operations import perform
from facility_apis.core.outcome import State
from facility_apis.core.transport import DEFAULT_WAIT, Transport
from facility_apis.facilities.fink_fp import FinkForcedPhotometryFacility
from facility_apis.facilities.fink_fp.answers import answer_format, fink_error, rows
from facility_apis.facilities.fink_fp.facility import DEFAULT_BASE_URL, PATH, ids_in, split_ids
from facility_apis.facilities.fink_fp.photometry import TAI_MINUS_UTC_DAYS, convert, object_id
from facility_apis.gateway.policy import Schedule, next_step

URL = DEFAULT_BASE_URL + PATH
DOC = Path(__file__).resolve().parent.parent / "docs" / "facilities" / "fink_fp.md"
BIG = "313761043604045880"  # > 2^53: as a double it reads 313761043604045888
NEIGHBOUR = "313761043604045881"  # the same double as BIG
OTHER = "313699514821640259"
COLUMNS = "r:diaObjectId,r:midpointMjdTai,r:band,r:psfFlux,r:psfFluxErr"


def point(dia_id=BIG, mjd=61000.5, band="g", flux=5000.0, err=100.0):
    return {"r:diaObjectId": int(dia_id), "r:midpointMjdTai": mjd, "r:band": band, "r:psfFlux": flux, "r:psfFluxErr": err}


def records(*points):
    """Fink's JSON: integers written out in full, NaN as null."""
    return json.dumps(list(points))


def make_request(payload=None, remote_id=None, target=None):
    target = target or Target("LSST26abc", 150.1, -30.2)
    return FollowupRequest(5, target, Allocation(2, {}, instrument_id=9), {"diaObjectId": BIG} if payload is None else payload, remote_id=remote_id)


def run(operation, request, **config):
    with Transport(backoff=0, retries=1) as transport:
        return perform(FinkForcedPhotometryFacility(config), operation, request, transport)


# -- the query ---------------------------------------------------------------------------------


@responses.activate
def test_the_query_is_the_documented_post_and_the_answer_is_the_data():
    responses.post(URL, body=records(point(), point(band="r", flux=150.0)), content_type="application/json")
    outcome = run("submit", make_request())
    sent = responses.calls[0].request
    assert json.loads(sent.body) == {"diaObjectId": BIG, "columns": COLUMNS, "output-format": "json"}
    assert sent.headers["Content-Type"] == "application/json"
    assert outcome.state is State.COMPLETED and outcome.remote_id == BIG
    assert outcome.status == f"complete: 2 points (1 detection, 1 upper limit) from Fink for diaObjectId {BIG}"


@responses.activate(registry=registries.OrderedRegistry)
def test_the_query_is_repeatable_a_502_is_retried_and_a_timeout_may_be_tried_again():
    responses.post(URL, status=502)
    responses.post(URL, body=records(point()), content_type="application/json")
    assert run("submit", make_request()).state is State.COMPLETED
    assert len(responses.calls) == 2
    responses.post(URL, body=requests.ReadTimeout("slow"))
    outcome = run("submit", make_request())
    assert outcome.state is State.FAILED and outcome.poll_after == 60  # the gateway submits it again
    assert "may have reached" not in outcome.detail


@responses.activate
def test_ids_are_sent_in_batches_of_max_ids_per_call():
    responses.post(URL, body=records(point(BIG)), content_type="application/json")
    responses.post(URL, body=records(point(OTHER)), content_type="application/json")
    outcome = run("submit", make_request({"diaObjectId": f"{BIG}, {OTHER},{BIG}"}), max_ids_per_call=1)
    assert [json.loads(c.request.body)["diaObjectId"] for c in responses.calls] == [BIG, OTHER]
    assert outcome.remote_id == f"{BIG},{OTHER}"
    assert outcome.status == f"complete: 2 points (2 detections, 0 upper limits) from Fink for 2 diaObjectIds ({BIG}: 1, {OTHER}: 1)"


@pytest.mark.parametrize(("config", "rule"), [
    ({"output_format": "votable"}, "output_format must be one of json, csv, parquet"),
    ({"max_ids_per_call": 0}, "max_ids_per_call must be an integer from 1 to 20"),
    ({"max_ids_per_call": 21}, "max_ids_per_call must be an integer from 1 to 20"),
    ({"base_url": "http://10.1.2.3/"}, "base_url is refused"),
])  # fmt: skip
def test_bad_deployment_settings_are_refused(config, rule):
    with pytest.raises(ConfigurationError, match=rule):
        FinkForcedPhotometryFacility(config)


def test_parquet_needs_the_fink_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else real(name, *a))
    with pytest.raises(ConfigurationError, match=r"install facility-apis\[fink\]"):
        FinkForcedPhotometryFacility({"output_format": "parquet"})
    monkeypatch.setitem(__import__("sys").modules, "pyarrow.parquet", None)
    with pytest.raises(RemoteError, match=r"needs pyarrow: install facility-apis\[fink\]"):
        rows(b"PAR1....PAR1", "parquet")


# -- the id: from the form, or from the source's aliases, never through a float ------------------


def test_the_id_comes_from_the_sources_aliases_when_the_form_has_none():
    facility = FinkForcedPhotometryFacility()
    target = Target("ZTF26src", 1.0, 2.0, aliases=("ZTF26src", f"LSST:{BIG}", "2MASS J123", OTHER, f"diaObjectId {BIG}"))
    assert facility.validate_payload({}, target)["diaObjectId"] == f"{BIG},{OTHER}"
    assert facility.validate_payload({"diaObjectId": "42"}, target)["diaObjectId"] == "42"  # the observer's wins
    assert facility.validate_payload({}, Target(BIG, 1.0, 2.0))["diaObjectId"] == BIG  # the source's own id
    with pytest.raises(PayloadError, match=r"\$\.diaObjectId: is required: the source has no alias"):
        facility.validate_payload({}, Target("ZTF26src", 1.0, 2.0, aliases=("ZTF26src", "99999999999999999999")))


def test_ids_are_digits_of_a_64_bit_integer():
    facility = FinkForcedPhotometryFacility()
    with pytest.raises(PayloadError, match=r"at most 9223372036854775807"):
        facility.validate_payload({"diaObjectId": "9223372036854775808"})
    for bad in ("3.1e17", "-5", "abc", "1," * 20 + "1"):
        with pytest.raises(PayloadError, match=r"\$\.diaObjectId"):
            facility.validate_payload({"diaObjectId": bad})
    assert split_ids(f" 007, {BIG} ,{BIG}") == ["7", BIG]
    assert ids_in(["lsst 0012", "Rubin_5", "x5"]) == ["12", "5"]


def test_json_ids_beyond_2_53_stay_exact():
    body = records(point(BIG), point(NEIGHBOUR)).encode()
    assert float(BIG) == float(NEIGHBOUR)  # what a float would make of them
    parsed = rows(body, "json")
    assert [row["r:diaObjectId"] for row in parsed] == [BIG, NEIGHBOUR]
    photometry, per_id = convert(parsed, [BIG])
    assert len(photometry) == 1 and per_id == {BIG: 1}
    assert photometry.notes == ("dropped 1 point(s) of other objects",)


def test_an_id_sent_as_a_float_is_never_trusted():
    parsed = rows(b'[{"r:diaObjectId": 3.1376104360404588e17, "r:midpointMjdTai": 61000.5, "r:band": "g", "r:psfFlux": 1.0, "r:psfFluxErr": 1.0}]', "json")
    assert object_id(parsed[0]["r:diaObjectId"]) is None
    photometry, _ = convert(parsed, [BIG])
    assert len(photometry) == 0 and photometry.notes == ("dropped 1 point(s) with an unreadable diaObjectId",)


def test_csv_answers_keep_ids_as_text_and_empty_cells_as_missing():
    text = f"r:diaObjectId,r:midpointMjdTai,r:band,r:psfFlux,r:psfFluxErr\n{BIG},61000.5,g,5000.0,100.0\n{NEIGHBOUR},61001.5,r,,100.0\n"
    parsed = rows(text.encode(), "csv")
    assert [row["r:diaObjectId"] for row in parsed] == [BIG, NEIGHBOUR] and parsed[1]["r:psfFlux"] is None
    assert rows(b"\n", "csv") == []
    with pytest.raises(RemoteError, match="line 2 has more values"):
        rows(b"a,b\n1,2,3\n", "csv")


def test_parquet_answers_keep_int64_ids_exact():
    pyarrow = pytest.importorskip("pyarrow")
    import io

    import pyarrow.parquet as parquet

    buffer = io.BytesIO()
    parquet.write_table(pyarrow.Table.from_pylist([point(BIG), point(NEIGHBOUR)]), buffer)
    parsed = rows(buffer.getvalue(), "parquet")
    assert [object_id(row["r:diaObjectId"]) for row in parsed] == [BIG, NEIGHBOUR]
    with pytest.raises(RemoteError, match="cannot be read"):
        rows(b"PAR1 damaged PAR1", "parquet")


def test_the_format_follows_the_answers_content_type_then_its_bytes():
    assert answer_format("application/json", b"[]", "csv") == "json"
    assert answer_format("application/csv", b"a\n", "json") == "csv"
    assert answer_format("parquet", b"PAR1", "json") == "parquet"
    assert answer_format("application/octet-stream", b"PAR1xxxx", "json") == "parquet"
    assert answer_format("", b"[]", "json") == "json"


def test_finks_error_text_is_read_from_its_dict():
    text = str({"status": "error", "text": "A value for `diaObjectId` is required. See https://api.fink-portal.org \n"})
    assert fink_error(text) == "A value for `diaObjectId` is required. See https://api.fink-portal.org"
    assert fink_error("{'status': 'ok'}") is None and fink_error("<html>") is None and fink_error("{" + "[" * 5000 + "}") is None


# -- the conversion ------------------------------------------------------------------------------


def test_fluxes_in_njy_become_ab_magnitudes_with_limits_below_the_threshold():
    parsed = [point(flux=5000.0, err=100.0), point(band="y", flux=250.0, err=100.0), point(band="u", flux=-80.0, err=100.0)]
    photometry, _ = convert(parsed, [BIG], snr_threshold=3.0)
    assert photometry.filter == ["lsstg", "lssty", "lsstu"]
    assert photometry.mag[0] == pytest.approx(31.4 - 2.5 * math.log10(5000.0))
    assert photometry.magerr[0] == pytest.approx(1.0857 * 100.0 / 5000.0)
    assert photometry.values("mag")[1] is None and photometry.values("mag")[2] is None
    assert photometry.values("limiting_mag") == [pytest.approx(31.4 - 2.5 * math.log10(300.0))] * 3
    assert photometry.mjd[0] == pytest.approx(61000.5 - TAI_MINUS_UTC_DAYS) and photometry.origin == "fink_fp"


def test_unusable_points_and_the_mjd_window_are_counted_in_the_notes():
    parsed = [
        point(mjd=61000.5),
        point(mjd=None),
        point(band="w"),
        point(err=0.0),
        point(err=None),
        point(mjd=61100.5),
        point(mjd=60900.5),
        {**point(), "r:psfFlux": None},  # NaN in Fink's JSON: an upper limit
    ]
    photometry, _ = convert(parsed, [BIG], mjd_start=60950.0, mjd_end=61050.0)
    assert len(photometry) == 2 and photometry.values("mag")[1] is None
    assert photometry.notes == (
        "dropped 2 point(s) outside the MJD window",
        "dropped 2 point(s) without a positive uncertainty",
        "dropped 1 point(s) without a time",
        "dropped points in bands other than u, g, r, i, z, y: 1 in 'w'",
    )


# -- every answer branch, and its status on the page --------------------------------------------------


def scenarios():
    refusal = str({"status": "error", "text": "A value for `diaObjectId` is required. See https://api.fink-portal.org \n"})
    return {
        "photometry": ("submit", {}, lambda m: m.post(URL, body=records(point(), point(band="r", flux=150.0)), content_type="application/json")),
        "several ids": (
            "submit",
            {"payload": {"diaObjectId": f"{BIG},{OTHER}"}},
            lambda m: m.post(URL, body=records(point(BIG), point(OTHER, flux=10.0)), content_type="application/json"),
        ),
        "dropped points": ("submit", {}, lambda m: m.post(URL, body=records(point(), point(band="w"), point(err=0.0)), content_type="application/json")),
        "refreshed": ("get", {"payload": {}, "remote_id": BIG}, lambda m: m.post(URL, body=records(point()), content_type="application/json")),
        "unknown object": ("submit", {}, lambda m: m.post(URL, body="[]", content_type="application/json")),
        "nothing usable": ("submit", {}, lambda m: m.post(URL, body=records(point(err=0.0)), content_type="application/json")),
        "refusal": ("submit", {}, lambda m: m.post(URL, status=400, body=refusal)),
        "other 400": ("submit", {}, lambda m: m.post(URL, status=400, body="Bad Request")),
        "throttled": ("submit", {}, lambda m: m.post(URL, status=429, headers={"Retry-After": "30"})),
        "unavailable": ("submit", {}, lambda m: m.post(URL, status=503)),
        "no answer": ("submit", {}, lambda m: m.post(URL, body=requests.ReadTimeout("slow"))),
        "server error": ("submit", {}, lambda m: m.post(URL, status=500, body="Internal Server Error")),
        "malformed": ("submit", {}, lambda m: m.post(URL, body='[{"r:diaObjectId": 1', content_type="application/json")),
        "not rows": ("submit", {}, lambda m: m.post(URL, body='{"a": 1}', content_type="application/json")),
        "html": ("submit", {}, lambda m: m.post(URL, status=404, body="<html><title>404 Not Found</title></html>")),
        "no id": ("submit", {"payload": {}}, lambda m: None),
        "bad id": ("submit", {"payload": {"diaObjectId": "3.1e17"}}, lambda m: None),
    }


EXPECTED = {
    "photometry": State.COMPLETED, "several ids": State.COMPLETED, "dropped points": State.COMPLETED, "refreshed": State.COMPLETED,
    "unknown object": State.NO_DATA, "nothing usable": State.NO_DATA, "refusal": State.FAILED, "other 400": State.FAILED,
    "throttled": State.THROTTLED, "unavailable": State.FAILED, "no answer": State.FAILED, "server error": State.FAILED,
    "malformed": State.FAILED, "not rows": State.FAILED, "html": State.FAILED, "no id": State.REJECTED, "bad id": State.REJECTED,
}  # fmt: skip
RETRIED = {"throttled", "unavailable", "no answer"}


def _status_spans() -> set[str]:
    text = DOC.read_text()
    section = text[text.index("(fink_fp-statuses)=") : text.index("(fink_fp-photometry)=")]
    spans = re.findall(r"``(.+?)``|`([^`]+)`", section)  # a status holding a backtick is in a double-backtick span
    return {re.sub(r"\d+", "N", double or single) for double, single in spans}


@pytest.mark.parametrize("scenario", list(scenarios()))
def test_every_answer_ends_in_its_state_with_a_documented_status(scenario):
    operation, parts, setup = scenarios()[scenario]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        setup(mock)
        outcome = run(operation, make_request(**parts))
    assert outcome.state is EXPECTED[scenario], outcome.status
    if outcome.state in (State.FAILED, State.THROTTLED):
        assert (outcome.poll_after is not None) == (scenario in RETRIED), (scenario, outcome.poll_after)
    assert re.sub(r"\d+", "N", outcome.status) in _status_spans(), f"{scenario}: {outcome.status!r} is not in {DOC.name}"


def test_every_scenario_has_an_expected_state():
    assert set(scenarios()) == set(EXPECTED)


@pytest.mark.parametrize(
    ("answer", "waits"),
    [
        ({"status": 429, "headers": {"Retry-After": "30"}}, [30.0, 30.0]),  # as long as Fink asks, every time
        ({"status": 429}, [DEFAULT_WAIT, DEFAULT_WAIT]),  # Fink's API documents no wait: the transport's own
        ({"status": 503}, [Schedule().backoff(1), Schedule().backoff(2)]),  # the gateway's backoff, doubling
    ],
)
def test_the_gateway_queries_again_after_the_documented_wait(answer, waits):
    """One truth for the retry waits the docs state: a throttle waits as long as Fink's 429 asks
    (Retry-After), else the transport's default; a transient failure waits the gateway's backoff
    (``backoff_base_seconds``, 30 s by default, doubling), not the 60 s a direct driver would."""
    schedule, now, failures, seen = Schedule(), 1_000_000.0, 0, []
    for _ in waits:
        with responses.RequestsMock() as mock:
            mock.post(URL, **answer)
            outcome = run("submit", make_request())
        step = next_step(
            outcome, operation="submit", previous_state=State.PENDING, previous_status="pending submission", failures=failures,
            can_poll=True, give_up_at=now + schedule.horizon, now=now, schedule=schedule,
        )  # fmt: skip
        seen.append(step.next_poll_at - now)
        failures = step.failures
    assert seen == waits
    text = DOC.read_text()
    assert f"after the wait Fink asks (`Retry-After`), else {DEFAULT_WAIT:g} s" in text
    assert f"after the gateway's backoff (`backoff_base_seconds`: {schedule.backoff_base:g} s by default" in text
