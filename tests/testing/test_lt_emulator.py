"""The Liverpool Telescope node agent emulator on its own: it checks what LT's node agent and TEA
check, answers as they answer, and its knobs work. Documents are sent with plain ``requests``."""

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone
from xml.sax.saxutils import escape

import pytest
import requests

from facility_apis.core.interface import Target
from facility_apis.facilities.lt import rtml
from facility_apis.testing.lt import LTNodeAgentEmulator

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
NA = "http://node_agent2.estar.org/"
R = f"{{{rtml.RTML_NS}}}"
USER, PASSWORD, PROPOSAL = "observer", "node-agent-pw", "PL26A01"
START = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)


@pytest.fixture
def lt():
    with LTNodeAgentEmulator({USER: (PASSWORD, {PROPOSAL}), "other": ("x", {"PL26B99"})}) as emulator:
        yield emulator


def document(mode="request", uid="grb_1_abc", *, setup=None, seconds=60.0, count=1, start=START, end=START + timedelta(days=7), exposures=None):
    setup = setup or rtml.Setup("IO:O", "camera", "optical", 2, filter="R")
    constraints = rtml.Constraints(2.0, 1.2, 2.0, False, start, end)
    return rtml.observation_document(
        mode, uid, project=PROPOSAL, username=USER, target=Target("GRB 261121A", 150.0, -20.0),
        exposures=exposures or [rtml.Exposure(setup, seconds, count)], constraints=constraints,
    )  # fmt: skip


def call(lt, text, *, operation="handle_rtml", headers=None, content_type="text/xml; charset=utf-8"):
    body = f'<S:Envelope xmlns:S="{SOAP_ENV}"><S:Body><na:{operation} xmlns:na="{NA}"><arg0>{escape(text)}</arg0></na:{operation}></S:Body></S:Envelope>'
    sent = {"Content-Type": content_type, "SOAPAction": '""', "Username": USER, "Password": PASSWORD} if headers is None else headers
    return requests.post(lt.endpoint, data=body.encode(), headers=sent, timeout=5)


def reply(response):
    assert response.status_code == 200, response.text
    returned = ET.fromstring(response.content).find(f"{{{SOAP_ENV}}}Body/{{{NA}}}handle_rtmlResponse/return").text
    return returned, ET.fromstring(returned)


def fault(response):
    assert response.status_code == 500
    envelope = ET.fromstring(response.content)
    return envelope.findtext(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault/faultstring")


def errors(root):
    return [e.text for e in root.iter(f"{R}Error")]


def mutated(text, change):
    root = ET.fromstring(text)
    change(root)
    return ET.tostring(root, encoding="unicode")


def test_a_request_creates_a_group_and_is_confirmed_as_lts_tea_writes_it(lt):
    text, root = reply(call(lt, document()))
    assert text.startswith('<?xml version="1.0" encoding="ISO-8859-1"?>')
    assert (root.tag, root.get("mode"), root.get("uid"), root.get("version")) == (f"{R}RTML", "confirm", "grb_1_abc", "3.1a")
    assert root[0].tag == f"{R}History" and root.find(f"{R}History/{R}Entry/{R}Description").text == "Request confirmed."
    (group,) = lt.groups
    assert (group.name, group.proposal, group.user, group.start, group.end) == ("grb_1_abc", PROPOSAL, USER, START, START + timedelta(days=7))
    assert group.schedules[0]["ra_deg"] == pytest.approx(150.0) and group.schedules[0]["dec_deg"] == pytest.approx(-20.0)
    assert [d.get("mode") for d in lt.documents()] == ["request"]


def test_an_inquiry_gets_an_offer_and_queues_nothing(lt):
    _, root = reply(call(lt, document("inquiry")))
    assert root.get("mode") == "offer" and root.find(f"{R}Scoring/{R}Score") is not None
    assert lt.groups == []


def test_the_same_uid_twice_is_rejected(lt):
    reply(call(lt, document()))
    _, root = reply(call(lt, document()))
    assert root.get("mode") == "reject" and errors(root) == [f"Internal error during ADD_GROUP: group grb_1_abc already exists in proposal {PROPOSAL}"]


@pytest.mark.parametrize("abort_reply", ["abort", "confirm"])
def test_an_abort_expires_the_group_and_answers_as_configured(abort_reply):
    with LTNodeAgentEmulator({USER: (PASSWORD, {PROPOSAL})}, abort_reply=abort_reply) as lt:
        reply(call(lt, document()))
        _, root = reply(call(lt, rtml.abort_document("grb_1_abc", project=PROPOSAL, username=USER)))
        assert root.get("mode") == abort_reply
        assert lt.groups[0].aborted and lt.groups[0].end <= datetime.now(UTC)


def test_an_abort_looks_the_raw_uid_up_as_the_tea_does(lt):
    # The TEA names the group with non-word characters made "_", but aborts by the raw uid.
    reply(call(lt, mutated(document(), lambda root: root.set("uid", "grb-1-abc"))))
    assert lt.groups[0].name == "grb_1_abc"
    abort = mutated(rtml.abort_document("grb_1_abc", project=PROPOSAL, username=USER), lambda root: root.set("uid", "grb-1-abc"))
    _, root = reply(call(lt, abort))
    assert root.get("mode") == "reject" and errors(root) == ["Internal error during GET_PROPOSAL: Group grb-1-abc was not found in proposal"]


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"Content-Type": "text/xml", "Password": PASSWORD}, "checkUsernamePassword:Failed to find username in headers."),
        ({"Content-Type": "text/xml", "Username": USER}, f"checkUsernamePassword:Failed to find password in headers for username:{USER}"),
        (
            {"Content-Type": "text/xml", "Username": "nobody", "Password": "x"},
            "checkUsernamePassword:Failed to find password for username:nobody in persistent store.",
        ),
        ({"Content-Type": "text/xml", "Username": USER, "Password": "wrong"}, f"checkUsernamePassword:Incorrect Password for User:{USER}"),
    ],
)
def test_credentials_are_checked_first_and_refused_with_a_soap_fault(lt, headers, message):
    text = fault(call(lt, document(), headers=headers))
    assert text == f"org.estar.node_agent2.NodeAgentWebServiceImpl:{message}"
    assert lt.groups == [] and lt.documents() == []


def test_soap_level_problems(lt):
    assert call(lt, document(), content_type="application/json").status_code == 415
    assert fault(call(lt, document(), operation="handle_rtm")).startswith("Cannot find dispatch method for {http://node_agent2.estar.org/}handle_rtm")
    broken = requests.post(lt.endpoint, data=b"<S:Envelope", headers={"Content-Type": "text/xml"}, timeout=5)
    assert fault(broken).startswith("Couldn't create SOAP message due to exception")
    ping = call(lt, "", operation="ping")
    assert ET.fromstring(ping.content).findtext(f".//{{{NA}}}pingResponse/return") == "ACK"


def refusal(lt, text):
    _, root = reply(call(lt, text))
    assert root.get("mode") == "reject" and lt.groups == []
    return errors(root)


def _set_text(path, value):
    def change(root):
        root.find("/".join(f"{R}{part}" for part in path.split("/"))).text = value

    return change


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (document().replace(f'xmlns="{rtml.RTML_NS}"', ""), "java.lang.Exception: parseRTMLNode: the root element must be RTML in the namespace"),
        (document().replace('version="3.1a"', 'version="2.2"'), "java.lang.Exception: parseRTMLNode:Unsupported Version:2.2"),
        (mutated(document(), lambda root: root.remove(root.find(f"{R}Project"))), "No Project in received document"),
        (mutated(document(), lambda root: root.find(f"{R}Project/{R}Contact").remove(root.find(f"{R}Project/{R}Contact/{R}Username"))), "No User in Contact"),
        (mutated(document(), lambda root: root.find(f"{R}Project").set("ProjectID", "PL26B99")), "No proposal PL26B99 for user observer"),
        (document(setup=rtml.Setup("IO:I", "camera", "infrared", 2, filter="H")), "Device configuration error: IO:I cannot bin 2x2"),
        (document(setup=rtml.Setup("Sprat", "spectrograph", "optical", 1, grating="green")), "Sprat has no grating 'green'"),
        (document(setup=rtml.Setup("IO:O", "camera", "optical", 2, filter="r")), "IO:O has no filter 'r'"),
        (document(seconds=0.5), "Your Exposure time is too short."),
        (document(count=0), "Your Exposure Count is less than 1."),
        (document(start=START, end=START - timedelta(hours=1)), "Your StartDate and EndDate do not make sense."),
        (mutated(document(), _set_text("Schedule/Target/Coordinates/RightAscension/Seconds", "60.00")), "Illegal RA seconds"),
        (mutated(document(), _set_text("Schedule/Target/Coordinates/RightAscension/Hours", "24")), "Illegal RA hours"),
        (mutated(document(), _set_text("Schedule/Target/Coordinates/Declination/Degrees", "00")), "Illegal Degrees value:00"),
        (
            document(exposures=[
                rtml.Exposure(rtml.Setup("IO:O", "camera", "optical", 2, filter="G"), 60.0, 1),
                rtml.Exposure(rtml.Setup("IO:O", "camera", "optical", 2, filter="R"), 60.0, 1),
            ]).replace('maximum="2.0"', 'maximum="1.5"', 1),
            "Constraint mismatch: constraints for 1",
        ),
        (document().replace('mode="request"', 'mode="update"'), "java.lang.Exception: Unknown document request type."),
    ],
    ids=[
        "no-namespace", "version", "no-project", "no-username", "not-their-proposal", "ioi-binning", "sprat-grating",
        "ioo-filter", "short-exposure", "no-count", "window", "ra-seconds-60", "ra-hours-24", "dec-unsigned", "constraints", "mode",
    ],
)
def test_what_the_tea_refuses_is_rejected_with_its_reason(lt, text, reason):
    (error,) = refusal(lt, text)
    assert reason in error


def test_a_document_that_is_not_xml_gets_the_node_agents_rtml_22_error_document(lt):
    text, root = reply(call(lt, "<RTML mode='request'"))
    assert "<!DOCTYPE RTML SYSTEM" in text
    assert (root.tag, root.get("type"), root.get("version")) == ("RTML", "reject", "2.2")
    assert root.text.endswith("badly formatted rtml received")


def test_window_times_are_read_as_lts_date_format_reads_them():
    canary_summer = timezone(timedelta(hours=1))
    with LTNodeAgentEmulator({USER: (PASSWORD, {PROPOSAL})}, server_timezone=canary_summer) as lt:
        reply(call(lt, document(uid="zoned")))  # "+0000": read exactly
        colon = document(uid="colon").replace("+0000", "+00:00")  # the xs:dateTime spelling: server-local time
        reply(call(lt, colon))
        zoned, local = lt.groups
    assert zoned.start == START
    assert local.start == START - timedelta(hours=1)


def test_the_knobs(lt):
    lt.reject_next("telescope closed for engineering")
    assert refusal(lt, document()) == ["telescope closed for engineering"]
    lt.reply_next("offer")
    assert reply(call(lt, document()))[1].get("mode") == "offer" and lt.groups == []
    lt.soap_fault_next("java.lang.RuntimeException: boom")
    assert fault(call(lt, document())) == "java.lang.RuntimeException: boom"
    lt.tea_connected = False
    assert refusal(lt, document()) == ["java.lang.Exception: is.tea.connected = false, not sending rtml onwards"]
    assert ET.fromstring(call(lt, "", operation="ping").content).findtext(f".//{{{NA}}}pingResponse/return") == "NAK (not live)"
    lt.tea_connected = True
    lt.faults.add("malformed")  # before the call is carried out
    assert call(lt, document()).text.startswith('{"status"') and lt.groups == []
    lt.garble_next("Proxy Error")  # after it
    garbled = call(lt, document())
    assert (garbled.status_code, garbled.text) == (200, "Proxy Error") and len(lt.groups) == 1
    assert reply(call(lt, document(uid="next")))[1].get("mode") == "confirm"
