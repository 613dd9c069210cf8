"""The notifier's message model and its renderers: text, HTML and Slack Block Kit within limits."""

import json

import pytest

from facility_apis.core.interface import Allocation, FollowupRequest, Target
from facility_apis.notify import Event, build_notice, render_blocks, render_html, render_text, slack_message, subject
from facility_apis.notify.blocks import MAX_BLOCKS, chunks, escape
from facility_apis.testing.slack import block_problems

FORM = {
    "properties": {
        "observation_choices": {"title": "Filters"},
        "exposure_time": {"title": "Exposure time (s)"},
        "priority": {"title": "Priority"},
    }
}


def make_request(**changes):
    allocation = Allocation(5, {}, pi="A. PI", proposal_id="2026B-7", instrument_name="SEDM", group_ids=(2, 7), group="Transients")
    fields = {
        "id": 11,
        "target": Target("ZTF21abcdefg", 150.1, -0.5 / 3600),
        "allocation": allocation,
        "payload": {"priority": 3.0, "observation_choices": ["ztfg", "ztfr"], "exposure_time": 300.0, "extra_key": True, "empty": ""},
        "requester": "observer",
        "comments": ("Request note: please before dawn", "alice: bright, rising\nsecond line"),
    }
    fields.update(changes)
    return FollowupRequest(**fields)


def notice(event=Event.NEW, request=None, **options):
    options.setdefault("skyportal_url", "https://fritz.example.org/")
    options.setdefault("include_comments", True)
    return build_notice(request or make_request(), event, facility="GENERIC", form=FORM, app_title="Fritz", reference="notice-1", **options)


def test_the_notice_holds_every_part_in_words():
    made = notice()
    about = {item.label: item.value for item in made.about()}
    assert about == {
        "Object": "ZTF21abcdefg",
        "RA, Dec": "10:00:24.00 -00:00:00.5",
        "RA, Dec (deg)": "150.10000, -0.00014",
        "Galactic l, b (deg)": "239.18075, +40.80126",  # astropy: SkyCoord(150.1, -0.5/3600, ICRS).galactic
        "Facility": "GENERIC",
        "Instrument": "SEDM",
        "PI": "A. PI",
        "Proposal": "2026B-7",
        "Group": "Transients",
        "Requested by": "observer",
        "Reference": "notice-1",
    }
    # Every payload field under its form title, in the form's order, then the unknown ones.
    assert [(i.label, i.value) for i in made.observation] == [
        ("Filters", "ztfg, ztfr"),
        ("Exposure time (s)", "300"),
        ("Priority", "3"),
        ("extra_key", "yes"),
    ]
    assert made.source_url == "https://fritz.example.org/source/ZTF21abcdefg"
    assert made.comments == ("Request note: please before dawn", "alice: bright, rising\nsecond line")


def test_without_a_group_name_the_group_ids_are_shown_and_without_a_url_no_link():
    request = make_request(allocation=Allocation(5, {}, group_ids=(2, 7)))
    made = notice(request=request, skyportal_url=None, include_comments=False)
    assert {i.label: i.value for i in made.about()}["Group"] == "groups 2, 7"
    assert made.source_url is None and made.comments == ()
    assert "Source page" not in render_text(made) and "href" not in render_html(made)
    assert all(block["type"] != "actions" for block in render_blocks(made))


def test_text_rendering():
    text = render_text(notice(Event.UPDATED))
    assert text.startswith("Updated follow-up request: ZTF21abcdefg\n\nObject: ZTF21abcdefg\nRA, Dec: 10:00:24.00 -00:00:00.5\n")
    assert "Source page: https://fritz.example.org/source/ZTF21abcdefg\n" in text
    assert "\nRequested observation:\n  Filters: ztfg, ztfr\n  Exposure time (s): 300\n  Priority: 3\n  extra_key: yes\n" in text
    assert "\nComments:\n  - Request note: please before dawn\n  - alice: bright, rising\n    second line\n" in text
    assert text.endswith("Sent by Fritz for GENERIC.\n")
    assert subject(notice(Event.CANCELLED)) == "Fritz - Cancelled follow-up request: ZTF21abcdefg"


def test_html_escapes_every_text_and_links_only_the_source_page():
    request = make_request(requester='<script>alert("x")</script>', comments=("<b>bold</b> & <a href='http://evil'>x</a>",))
    page = render_html(notice(request=request))
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; &lt;a href=&#x27;http://evil&#x27;&gt;" in page
    assert page.count("<a href=") == 1 and '<a href="https://fritz.example.org/source/ZTF21abcdefg">' in page


def test_an_object_id_with_markup_and_line_breaks_stays_one_clean_line():
    request = make_request(target=Target("ZTF\r\nBcc: x@evil.org\x00<b>", 1.0, 1.0), requester="Eve\r\nX-Injected: 1")
    made = notice(request=request)
    assert made.obj_id == "ZTF Bcc: x@evil.org <b>" and made.requester == "Eve X-Injected: 1"
    assert "\r" not in subject(made) and "\n" not in subject(made)
    assert made.source_url == "https://fritz.example.org/source/ZTF%0D%0ABcc%3A%20x%40evil.org%00%3Cb%3E"


def _all_texts(blocks):
    for block in blocks:
        for key in ("text",):
            if isinstance(block.get(key), dict):
                yield block[key]["text"]
        for field in block.get("fields", []):
            yield field["text"]
        for element in block.get("elements", []):
            if "text" in element:
                yield element["text"] if isinstance(element["text"], str) else element["text"]["text"]


def test_block_kit_message_is_within_slack_limits_and_escaped():
    request = make_request(comments=("<!channel> see <http://evil.example|this> & that",))
    message = slack_message(notice(request=request))
    assert block_problems(message["blocks"]) == []
    assert message["text"] == "New follow-up request: ZTF21abcdefg on GENERIC, requested by observer"
    texts = " ".join(_all_texts(message["blocks"]))
    assert "<!channel>" not in texts and "&lt;!channel&gt; see &lt;http://evil.example|this&gt; &amp; that" in texts
    header, about = message["blocks"][0], message["blocks"][1]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": "New follow-up request: ZTF21abcdefg"}}
    assert about["fields"][0] == {"type": "mrkdwn", "text": "*Object*\nZTF21abcdefg"}
    (actions,) = [b for b in message["blocks"] if b["type"] == "actions"]
    assert actions["elements"][0]["url"] == "https://fritz.example.org/source/ZTF21abcdefg"


def test_sixty_fields_and_a_ten_thousand_character_comment_fit_within_the_limits():
    payload = {f"field_{n:02d}": f"value {n}" for n in range(60)}
    comment = ("0123456789 " * 1000)[:10_000]
    request = make_request(payload=payload, comments=(comment,))
    blocks = render_blocks(notice(request=request))
    assert block_problems(blocks) == [] and len(blocks) <= MAX_BLOCKS
    observation = [f for b in blocks for f in b.get("fields", []) if f["text"].startswith("*field_")]
    assert len(observation) == 60  # every field shown, ten to a section
    shown = "".join(b["text"]["text"] for b in blocks if b["type"] == "section" and "text" in b and b["text"]["text"][0].isdigit())
    assert shown.replace(" ", "") == comment.replace(" ", "")  # the whole comment, split, nothing lost
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks if "text" in b and b["type"] == "section")


def test_a_message_longer_than_fifty_blocks_is_trimmed_with_a_note_not_refused():
    comments = tuple(f"comment {n}" for n in range(80))
    blocks = render_blocks(notice(request=make_request(comments=comments)))
    assert len(blocks) == MAX_BLOCKS and block_problems(blocks) == []
    assert "more parts of this message did not fit" in blocks[-1]["text"]["text"]


def test_a_very_long_label_value_and_object_id_are_cut_not_refused():
    long = "x" * 5000
    request = make_request(target=Target("Z" * 300, 1.0, 1.0), payload={"k" * 500: long}, requester=long)
    blocks = render_blocks(notice(request=request))
    assert block_problems(blocks) == []
    assert blocks[0]["text"]["text"].endswith("…") and len(blocks[0]["text"]["text"]) == 150


@pytest.mark.parametrize("text", ["a" * 7000, "&" * 1000, "word " * 2000, "x\n" * 4000, "<>&" * 700 + "tail"])
def test_chunks_never_exceed_the_limit_nor_split_an_entity_nor_lose_text(text):
    pieces = chunks(text, 3000)
    assert all(0 < len(piece) <= 3000 for piece in pieces)
    joined = "".join(pieces)
    for entity in ("&amp;", "&lt;", "&gt;"):
        assert joined.count(entity) == escape(text).count(entity)
    assert joined.replace(" ", "").replace("\n", "") == escape(text).replace(" ", "").replace("\n", "")


def test_the_message_is_plain_json():
    json.dumps(slack_message(notice()))
