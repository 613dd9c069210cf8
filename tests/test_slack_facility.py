"""SLACK against the Slack incoming-webhook emulator: what is posted, each of Slack's error answers
as a status, update and cancel messages, limits, and the webhook token in no record or log."""

import json
import logging

import pytest

from facility_apis.core.errors import ConfigurationError
from facility_apis.core.interface import Allocation, FollowupRequest, Target
from facility_apis.core.operations import perform
from facility_apis.core.outcome import State
from facility_apis.core.transport import Transport
from facility_apis.facilities.notification import SlackFacility
from facility_apis.testing.network import loopback_egress, socket_guard
from facility_apis.testing.slack import SlackWebhookEmulator, block_problems

TOKEN = "FAKEslackTokenForTests"
TARGET = Target("ZTF21abcdefg", 150.1, 2.2)
PAYLOAD = {"observation_choices": ["ztfg", "ztfr"], "exposure_time": 120, "exposure_counts": 2}


@pytest.fixture
def slack():
    with SlackWebhookEmulator() as emulator:
        emulator.add_hook("TEXAMPLE", "BEXAMPLE", TOKEN)
        yield emulator


def facility_for(slack, **notify):
    return SlackFacility({"notify": {"slack_base_url": slack.url, "skyportal_url": "https://fritz.example.org", **notify}}, egress=loopback_egress(slack))


def make_request(altdata=None, *, payload=PAYLOAD, remote_id=None, comments=(), target=TARGET, requester="observer"):
    altdata = {"slack_workspace": "TEXAMPLE", "slack_channel": "BEXAMPLE", "slack_token": TOKEN, **(altdata or {})}
    allocation = Allocation(5, altdata, pi="A. PI", instrument_name="SEDM", filters=("ztfg", "ztfr", "ztfi"), group="Transients")
    return FollowupRequest(11, target, allocation, payload, requester=requester, remote_id=remote_id, comments=comments)


def run(slack, operation, request, **notify):
    with Transport(egress=loopback_egress(slack), backoff=0) as transport:
        return perform(facility_for(slack, **notify), operation, request, transport)


def test_submit_posts_the_notice_to_the_webhook(slack, caplog):
    caplog.set_level(logging.DEBUG)
    outcome = run(slack, "submit", make_request())
    assert outcome.state is State.SUBMITTED and outcome.status == "submitted: posted to Slack"
    assert outcome.remote_id.startswith("notice-")
    (post,) = slack.posts
    assert (post.workspace, post.channel) == ("TEXAMPLE", "BEXAMPLE")
    assert post.text == "New follow-up request: ZTF21abcdefg on SLACK, requested by observer"
    assert block_problems(post.blocks) == []
    fields = {f["text"].split("\n", 1)[0]: f["text"].split("\n", 1)[1] for b in post.blocks for f in b.get("fields", [])}
    assert fields["*RA, Dec*"] == "10:00:24.00 +02:12:00.0" and fields["*Filters*"] == "ztfg, ztfr"
    assert fields["*Exposure time (s)*"] == "120" and fields["*Number of exposures*"] == "2" and fields["*Reference*"] == outcome.remote_id
    (recorded,) = slack.requests
    assert recorded.path == f"/services/TEXAMPLE/BEXAMPLE/{TOKEN}" and recorded.headers["Content-Type"] == "application/json; charset=utf-8"
    (transaction,) = outcome.transactions
    assert transaction.url == f"{slack.url}/services/TEXAMPLE/BEXAMPLE/***"
    assert TOKEN not in repr(outcome) + json.dumps([t.as_dict() for t in outcome.transactions]) + caplog.text


def test_the_dry_run_is_what_is_posted(slack):
    facility, request = facility_for(slack), make_request()
    with socket_guard() as attempts:
        call = facility.prepare(request)
    assert attempts == []
    run(slack, "submit", request)
    assert json.loads(slack.requests[0].body) == call.json


def test_update_and_delete_post_updated_and_cancelled_messages_with_the_same_reference(slack):
    submitted = run(slack, "submit", make_request())
    changed = {**PAYLOAD, "exposure_time": 300}
    updated = run(slack, "update", make_request(payload=changed, remote_id=submitted.remote_id))
    deleted = run(slack, "delete", make_request(payload=changed, remote_id=submitted.remote_id))
    assert updated.status == "submitted: update posted to Slack" and updated.remote_id == submitted.remote_id
    assert deleted.status == "deleted: cancellation posted to Slack" and deleted.state is State.DELETED
    assert [post.blocks[0]["text"]["text"] for post in slack.posts] == [
        "New follow-up request: ZTF21abcdefg",
        "Updated follow-up request: ZTF21abcdefg",
        "Cancelled follow-up request: ZTF21abcdefg",
    ]
    assert all(submitted.remote_id in json.dumps(post.blocks) for post in slack.posts)
    assert "*Exposure time (s)*\\n300" in json.dumps(slack.posts[1].blocks)


def test_deleting_what_was_never_posted_posts_nothing(slack):
    outcome = run(slack, "delete", make_request())
    assert outcome.status == "deleted: nothing had been posted to Slack" and slack.requests == []


REFUSED = "rejected: Slack refused the message"


@pytest.mark.parametrize(
    ("setup", "status"),
    [
        (lambda s: None, f"{REFUSED} (HTTP 403): invalid_token (the webhook's token is not valid: check the allocation's slack_token)"),
        (lambda s: s.set_state("TEXAMPLE", "BEXAMPLE", "channel_deleted"), f"{REFUSED} (HTTP 404): channel_not_found (the webhook's channel does not exist)"),
        (lambda s: s.set_state("TEXAMPLE", "BEXAMPLE", "archived"), f"{REFUSED} (HTTP 410): channel_is_archived (the webhook's channel is archived)"),
        (
            lambda s: s.set_state("TEXAMPLE", "BEXAMPLE", "prohibited"),
            f"{REFUSED} (HTTP 403): action_prohibited (the workspace does not let this webhook post there)",
        ),
    ],
    ids=["invalid_token", "channel_not_found", "channel_is_archived", "action_prohibited"],
)
def test_slacks_error_answers_are_clear_rejections(slack, setup, status):
    setup(slack)
    altdata = {"slack_token": "FAKEwrongSlackToken"} if status.endswith("slack_token)") else None
    outcome = run(slack, "submit", make_request(altdata))
    assert outcome.state is State.REJECTED and outcome.status == status and outcome.poll_after is None
    assert slack.posts == [] and "FAKEwrongSlackToken" not in repr(outcome)


def test_an_unknown_webhook_is_no_service(slack):
    outcome = run(slack, "submit", make_request({"slack_channel": "B999"}))
    assert outcome.status == f"{REFUSED} (HTTP 404): no_service (there is no such webhook (removed, disabled, or a wrong workspace, channel or token))"


@pytest.mark.parametrize(("status", "body"), [(400, "invalid_blocks"), (400, "something_new"), (404, "<html><title>Not here</title></html>")])
def test_other_refusals_name_slacks_words(slack, status, body):
    slack.faults.add("status", status=status, body=body)
    outcome = run(slack, "submit", make_request())
    assert outcome.state is State.REJECTED and outcome.status.startswith(f"rejected: Slack refused the message (HTTP {status}): ")
    assert "<" not in outcome.status


def test_a_server_error_is_a_failure_never_resent_and_an_ok_less_200_is_not_a_success(slack):
    slack.faults.add("status", status=500, body="rollup_error")
    failed = run(slack, "submit", make_request())
    assert failed.status == "failed: Slack answered HTTP 500: rollup_error; the request may have reached the facility and was not sent again"
    assert failed.poll_after is None and failed.maybe_sent
    slack.faults.add("status", status=200, body="")
    odd = run(slack, "submit", make_request())
    assert odd.state is State.FAILED and "without its 'ok'" in odd.detail
    assert len(slack.requests) == 2  # each tried once


def test_sixty_fields_and_a_ten_thousand_character_comment_are_accepted(slack):
    facility = facility_for(slack)

    class Wide(SlackFacility):  # a form with sixty fields (SLACK's own has three)
        name = "slack"

        def request_schema(self):
            schema = super().request_schema()
            schema["properties"].update({f"field_{n:02d}": {"type": "string", "title": f"Field {n}"} for n in range(60)})
            return schema

    wide = Wide(facility.config, egress=facility.egress)
    payload = {**PAYLOAD, **{f"field_{n:02d}": "x" * 100 for n in range(60)}}
    request = make_request({"include_comments": True}, payload=payload, comments=("c" * 10_000,))
    with Transport(egress=loopback_egress(slack)) as transport:
        outcome = perform(wide, "submit", request, transport)
    assert outcome.state is State.SUBMITTED, outcome.status
    assert slack.refusals == [] and len(slack.posts[0].blocks) <= 50
    assert sum(1 for b in slack.posts[0].blocks for f in b.get("fields", []) if f["text"].startswith("*Field ")) == 60
    assert "".join(b["text"]["text"] for b in slack.posts[0].blocks if "text" in b and b["text"]["text"].startswith("c")) == "c" * 10_000


def test_comments_are_shared_only_when_the_allocation_says_so(slack):
    run(slack, "submit", make_request(comments=("alice: looks like a SN Ia",)))
    run(slack, "submit", make_request({"include_comments": True}, comments=("alice: looks like a SN Ia",)))
    assert "SN Ia" not in json.dumps(slack.posts[0].blocks) and "alice: looks like a SN Ia" in json.dumps(slack.posts[1].blocks)


def test_a_filter_the_instrument_lacks_is_rejected_and_the_form_offers_its_filters(slack):
    outcome = run(slack, "submit", make_request(payload={**PAYLOAD, "observation_choices": ["sdssu"]}))
    assert outcome.status == "rejected: invalid payload: $.observation_choices: must be among the instrument's filters: ztfg, ztfr, ztfi"
    facility = facility_for(slack)
    form = facility.instrument_form(facility.request_schema(), name="SEDM", filters=("ztfg", "ztfr"))
    assert form["properties"]["observation_choices"]["items"]["enum"] == ["ztfg", "ztfr"]


@pytest.mark.parametrize(
    ("altdata", "path", "rule"),
    [
        ({"slack_token": None}, "$.slack_token", "is required"),
        ({"slack_channel": "B01/../x"}, "$.slack_channel", "must be letters and digits only"),
        ({"slack_workspace": "T 1"}, "$.slack_workspace", "must be letters and digits only"),
        ({"slack_token": "abc\r\ndef"}, "$.slack_token", "must be letters and digits only"),
        ({"webhook": "https://x"}, "$.webhook", "is not an allowed property"),
    ],
)
def test_bad_altdata_names_the_field(slack, altdata, path, rule):
    from facility_apis.core.errors import AltdataError

    merged = {"slack_workspace": "TEXAMPLE", "slack_channel": "BEXAMPLE", "slack_token": TOKEN, **altdata}
    with pytest.raises(AltdataError) as caught:
        facility_for(slack).validate_altdata({k: v for k, v in merged.items() if v is not None})
    assert [(e.path, e.message[: len(rule)]) for e in caught.value.errors] == [(path, rule)]
    assert "abc\r\ndef" not in str(caught.value)


def test_the_base_url_is_held_to_the_egress_rule():
    with pytest.raises(ConfigurationError, match="only over https"):
        SlackFacility({"notify": {"slack_base_url": "http://hooks.example.org"}})
    with pytest.raises(ConfigurationError, match="private or internal"):
        SlackFacility({"notify": {"slack_base_url": "https://10.1.2.3"}})
    assert SlackFacility().notifier.settings.slack_base_url == "https://hooks.slack.com"


def test_an_untouched_form_with_no_filter_chosen_is_accepted():
    from facility_apis.facilities.notification import SlackFacility

    facility = SlackFacility()
    assert "observation_choices" not in facility.request_schema()["required"]
    assert facility.validate_payload({})["observation_choices"] == []
