"""The observation plan a payload carries (core/plan.py) and what the notifier makes of it
(notify/plan.py, attachments, a notice about something other than a source)."""

import csv
import io
import json

import pytest

from facility_apis.core.egress import EgressPolicy
from facility_apis.core.errors import PayloadError
from facility_apis.core.interface import Allocation, FollowupRequest, Target
from facility_apis.core.plan import CSV_COLUMNS, PLAN_KEY, ObservationPlan, check_plan, plan_schema
from facility_apis.core.schemas import field_errors
from facility_apis.notify import Attachment, Event, NotifySettings, plan_notice, render_blocks, render_text
from facility_apis.notify.altdata import check_notification_altdata, notification_altdata
from facility_apis.notify.mail import build_email
from facility_apis.notify.plan import event_page, file_stem
from facility_apis.testing.slack import block_problems


def plan_document(fields=3, *, filters=("ztfg", "ztfr"), exposure=300.0, event="2025-08-18T01:02:03"):
    targets = [
        {
            "request_id": n + 1,
            "field_id": 100 + n,
            "ra": (n * 7.31) % 360,
            "dec": -80 + (n * 3.7) % 160,
            "filter": filters[n % len(filters)],
            "exposure_time": exposure,
            "program_pi": "observer",
        }
        for n in range(fields)
    ]
    document = {"queue_name": "ToO_S250818k", "validity_window_mjd": [61000.25, 61000.75], "queue_type": "list", "user": "observer", "targets": targets}
    return document | ({"event": event} if event else {})


def test_the_schema_example_is_a_valid_plan_and_reads_back_as_its_queue_document():
    example = plan_schema()["examples"][0]
    assert not field_errors(plan_schema(), example)
    check_plan(example)
    plan = ObservationPlan.from_payload({PLAN_KEY: example})
    assert plan.document() == {key: value for key, value in example.items() if key != "event"}
    assert plan.event == "2025-08-18T01:02:03"


def test_rules_the_schema_cannot_say_name_the_field():
    reversed_window = plan_document() | {"validity_window_mjd": [61001.0, 61000.0]}
    with pytest.raises(PayloadError) as caught:
        check_plan(reversed_window)
    assert [e.path for e in caught.value.errors] == ["$.observation_plan.validity_window_mjd"]
    twice = plan_document()
    twice["targets"][2]["request_id"] = 1
    with pytest.raises(PayloadError) as caught:
        check_plan(twice)
    assert [e.path for e in caught.value.errors] == ["$.observation_plan.targets[2].request_id"]


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"queue_name": "../etc/passwd"}, "$.queue_name"),
        ({"queue_name": ".hidden"}, "$.queue_name"),
        ({"queue_name": "a/b"}, "$.queue_name"),
        ({"validity_window_mjd": [61000.0]}, "$.validity_window_mjd"),
        ({"targets": []}, "$.targets"),
        ({"queue_type": "List Of Things"}, "$.queue_type"),
    ],
)
def test_the_schema_refuses_what_a_receiver_could_not_take(change, path):
    assert path in {e.path for e in field_errors(plan_schema(), plan_document() | change)}


def test_a_target_with_an_unknown_key_or_an_impossible_position_is_refused():
    document = plan_document()
    document["targets"][0]["ra"] = 360.0
    document["targets"][1]["weight"] = 0.5
    paths = {e.path for e in field_errors(plan_schema(), document)}
    assert {"$.targets[0].ra", "$.targets[1].weight"} <= paths


def test_json_and_csv_serialisations_carry_every_target():
    plan = ObservationPlan.from_payload({PLAN_KEY: plan_document(4)})
    assert json.loads(plan.to_json()) == plan.document()
    rows = list(csv.reader(io.StringIO(plan.to_csv().decode())))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 5
    assert rows[1] == ["1", "100", "0.0", "-80.0", "ztfg", "300", "observer", "61000.25", "61000.75"]


def test_a_plan_of_5000_fields_is_well_within_a_1_mib_request():
    plan = ObservationPlan.from_payload({PLAN_KEY: plan_document(5000)})
    assert len(plan.to_json()) < 0.75 * 1024**2
    summary = plan.summary()
    assert summary.fields == 5000 and summary.filters == (("ztfg", 2500), ("ztfr", 2500)) and summary.total_exposure == 1_500_000


def test_file_names_and_event_links_are_safe():
    assert file_stem("ToO_S250818k night 1") == "ToO_S250818k_night_1"
    assert file_stem("ToO_2026-08-18T01:02:03.5") == "ToO_2026-08-18T01:02:03.5"
    assert event_page("https://fritz.example.org/", "2025-08-18T01:02:03") == "https://fritz.example.org/gcn_events/2025-08-18T01%3A02%3A03"
    assert event_page(None, "2025-08-18T01:02:03") is None and event_page("https://f.example.org", None) is None
    with pytest.raises(ValueError, match="file name"):
        Attachment("../plan.json", "application/json", b"{}")
    with pytest.raises(ValueError, match="content type"):
        Attachment("plan.json", "json\r\nBcc: x", b"{}")


def plan_request(fields=3, **options):
    allocation = Allocation(6, {"allocation_type": "email", "email": "desk@example.org"}, pi="A. PI", proposal_id="P-2", instrument_name="ZTF", group="Group 2")
    return FollowupRequest(21, Target("2025-08-18T01:02:03", 10.0, 20.0), allocation, {PLAN_KEY: plan_document(fields, **options)}, requester="observer")


SETTINGS = NotifySettings(skyportal_url="https://fritz.example.org", app_title="Fritz")


def test_the_plan_notice_summarises_instead_of_printing_the_plan():
    request = plan_request(5000)
    plan = ObservationPlan.from_payload(request.payload)
    notice = plan_notice(request, Event.NEW, plan, facility="MMA observation plans", settings=SETTINGS, reference="ref-1", attach=True)
    text = render_text(notice)
    assert notice.heading == "New observation plan: ToO_S250818k"
    about = {item.label: item.value for item in (*notice.about(), *notice.observation)}
    assert about["Queue"] == "ToO_S250818k" and about["Instrument"] == "ZTF" and about["Group"] == "Group 2"
    assert about["Planned observations"] == "5,000" and about["Distinct fields"] == "5,000"
    assert about["Filters"] == "ztfg (2500), ztfr (2500)"
    assert about["Total exposure"] == "1,500,000 s (416.7 h)"
    assert about["Validity window"] == "2025-11-21 06:00 to 2025-11-21 18:00 UTC (12.0 h; MJD 61000.25000 to 61000.75000)"
    assert "RA, Dec" not in about and "Galactic" not in text
    assert "Event page: https://fritz.example.org/gcn_events/2025-08-18T01%3A02%3A03" in text
    assert "Attached: ToO_S250818k.json" in text and "ToO_S250818k.csv" in text
    assert "{'" not in text and "'targets'" not in text and len(text) < 2000, "a summary, never str(dict)"


def test_the_plan_travels_as_e_mail_attachments_that_read_back():
    request = plan_request(5000)
    plan = ObservationPlan.from_payload(request.payload)
    notice = plan_notice(request, Event.NEW, plan, facility="MMA", settings=SETTINGS, reference=None, attach=True)
    message = build_email(notice, sender="skyportal@example.org", recipients=["desk@example.org"], message_id="<1@example.org>")
    assert message.get_content_type() == "multipart/mixed"
    files = {part.get_filename(): part for part in message.iter_attachments()}
    assert json.loads(files["ToO_S250818k.json"].get_content()) == plan.document()
    assert files["ToO_S250818k.csv"].get_content_type() == "text/csv"
    assert message.get_body(("plain",)).get_content().startswith("New observation plan: ToO_S250818k")


def test_slack_names_attachments_it_cannot_carry_and_stays_within_block_kit():
    request = plan_request(5000)
    plan = ObservationPlan.from_payload(request.payload)
    linked = render_blocks(plan_notice(request, Event.NEW, plan, facility="MMA", settings=SETTINGS, reference="r", attach=False))
    assert block_problems(linked) == []
    button = next(block for block in linked if block["type"] == "actions")["elements"][0]
    assert button["text"]["text"] == "Event page in Fritz" and button["url"].endswith("/gcn_events/2025-08-18T01%3A02%3A03")
    attached = render_blocks(plan_notice(request, Event.NEW, plan, facility="MMA", settings=SETTINGS, reference="r", attach=True))
    assert block_problems(attached) == []
    assert "Not attached here" in json.dumps(attached)


def test_the_notification_branch_can_hang_on_another_key():
    base = {"type": "object", "properties": {"allocation_type": {"type": "string", "title": "Delivery", "enum": ["API"]}}, "required": ["allocation_type"]}
    merged = notification_altdata(base, key="allocation_type")
    assert merged["properties"]["allocation_type"]["enum"] == ["API", "slack", "email"]
    branches = merged["dependencies"]["allocation_type"]["oneOf"]
    assert [branch["properties"]["allocation_type"] for branch in branches] == [{"enum": ["slack"]}, {"enum": ["email"]}]
    assert "notification_type" not in merged["properties"]
    with pytest.raises(Exception, match=r"\$\.email"):
        check_notification_altdata({"allocation_type": "email", "email": "not an address"}, merged, key="allocation_type")


def test_an_ssh_origin_is_an_allowance_and_an_internal_ssh_host_is_refused():
    policy = EgressPolicy.allowing("ssh://127.0.0.1:2222")
    assert policy.host_refusal("ssh", "127.0.0.1", 2222) is None
    assert "private or internal" in policy.host_refusal("ssh", "127.0.0.1", 22)
    assert "private or internal" in EgressPolicy().host_refusal("ssh", "10.1.2.3", 22)
    assert "private or internal" in EgressPolicy().host_refusal("ssh", "localhost", 22)
    assert EgressPolicy().host_refusal("ssh", "queue.example.org", 22) is None
    assert EgressPolicy().host_refusal("ssh", "queue.example.org", 0) == "names no valid host and port"
    with pytest.raises(ValueError, match="not an origin"):
        EgressPolicy.allowing("ftp://127.0.0.1:21")
