"""GENERICAPI and SLACKAPI through SkyPortal's own call shape (fake models): the form per
instrument, and the request's note, the source's comments, the group's name and the requester
reaching the message."""

import asyncio
import json

import pytest

from facility_apis.skyportal import api_class, configure, reset
from facility_apis.testing.network import loopback_egress
from facility_apis.testing.skyportal_models import AsyncSession, Comment, User, make_request, use_fake_models
from facility_apis.testing.slack import SlackWebhookEmulator

TOKEN = "FAKEskyportalSlackToken"
ALTDATA = {"notification_type": "slack", "slack_workspace": "TFAKESP", "slack_channel": "BFAKESP", "slack_token": TOKEN, "include_comments": True}
PAYLOAD = {
    "observation_choices": ["ztfg"], "exposure_time": 300, "exposure_counts": 1, "maximum_airmass": 2,
    "minimum_lunar_distance": 30, "priority": 3, "start_date": "2026-11-21", "end_date": "2026-11-28",
}  # fmt: skip


@pytest.fixture
def slack():
    with SlackWebhookEmulator() as emulator:
        emulator.add_hook("TFAKESP", "BFAKESP", TOKEN)
        notify = {"slack_base_url": emulator.url, "skyportal_url": "https://fritz.example.org"}
        configure(facilities={"generic": {"notify": notify}}, egress=loopback_egress(emulator))
        with use_fake_models():
            yield emulator
    reset()


def test_genericapi_posts_the_note_comments_group_and_requester(slack):
    request = make_request(altdata=ALTDATA, payload=PAYLOAD, api_classname="GENERICAPI", instrument=(3, "KPED", ["ztfg", "ztfr"]))
    request.comment = "please observe before dawn"
    alice = User(50, "alice")
    request.obj.comments = [Comment("looks like a SN Ia", alice), Comment("rising fast\nsecond line", alice)]
    session = AsyncSession(request)
    asyncio.run(api_class("GENERICAPI").submit(request, session, refresh_source=True))
    assert request.status == "submitted: posted to Slack"
    blocks = json.dumps(slack.posts[0].blocks)
    expected = ("*Group*\\nGroup 2", "*Requested by*\\nobserver", "*Instrument*\\nKPED", "Request note: please observe before dawn")
    assert all(text in blocks for text in expected) and "alice: looks like a SN Ia" in blocks
    (transaction,) = session.transactions
    assert transaction.response["remote_id"].startswith("notice-") and TOKEN not in json.dumps([transaction.request, transaction.response])


def test_the_classes_offer_the_instruments_filters_and_their_operations(slack):
    request = make_request(altdata=ALTDATA, payload=PAYLOAD, api_classname="GENERICAPI", instrument=(3, "KPED", ["ztfg", "ztfr"]))
    for name in ("GENERICAPI", "SLACKAPI"):
        cls = api_class(name)
        info = cls.frontend_render_info(request.allocation.instrument, None)
        assert info["formSchema"]["properties"]["observation_choices"]["items"]["enum"] == ["ztfg", "ztfr"]
        assert {op for op, on in info["methodsImplemented"].items() if on} == {"submit", "update", "delete", "validate_altdata"}
    assert api_class("GENERICAPI").form_json_schema_altdata["properties"]["notification_type"]["enum"] == ["API", "slack", "email"]
