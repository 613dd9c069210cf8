"""The Liverpool Telescope's RTML documents, compared whole and structurally (parsed XML), and the
node agent's replies read."""

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import pytest

from facility_apis.core.errors import PayloadError, RemoteError
from facility_apis.core.interface import Allocation, FollowupRequest, Target
from facility_apis.facilities.lt import IOIFacility, IOOFacility, SPRATFacility, rtml
from facility_apis.facilities.lt import facility as lt_facility
from facility_apis.facilities.lt.soap import NODE_AGENT_NS, SOAP_ENV

NOW = datetime(2026, 11, 21, 18, 30, 0, tzinfo=UTC)
UID = "ZTF26_x_42_0123456789ab"
ALTDATA = {"username": "observer", "password": "rtml-secret-Pw0rd", "LT_proposalID": "PL26A01"}
# RA 23:59:59.9999 (rounds up to 24 h, which wraps to 0 h) and Dec -00:00:00.5 (keeps its sign).
EDGE = Target("ZTF26<&>x", (23 * 3600 + 59 * 60 + 59.9999) / 240, -0.5 / 3600)
XSI = "http://www.w3.org/2001/XMLSchema-instance"


@pytest.fixture(autouse=True)
def frozen(monkeypatch):
    monkeypatch.setattr(lt_facility, "utcnow", lambda: NOW)
    monkeypatch.setattr(lt_facility.LiverpoolFacility, "new_uid", staticmethod(lambda request: UID))


def shape(element):
    """An element as comparable data: tag (namespace included), attributes, text, children."""
    text = (element.text or "").strip()
    return (element.tag, sorted(element.attrib.items()), text, [shape(child) for child in element])


def sent_document(call) -> ET.Element:
    """The RTML document inside a prepared handle_rtml call, parsed."""
    envelope = ET.fromstring(call.data)
    assert envelope.tag == f"{{{SOAP_ENV}}}Envelope"
    operation = envelope.find(f"{{{SOAP_ENV}}}Body/{{{NODE_AGENT_NS}}}handle_rtml")
    return ET.fromstring(operation.findtext("arg0"))


def prepared(cls, payload, target=EDGE):
    facility = cls()
    request = FollowupRequest(42, target, Allocation(7, facility.validate_altdata(ALTDATA)), facility.validate_payload(payload))
    return facility.prepare(request)


def schedule(device, exposure, count):
    target = """
      <Target name="ZTF26&lt;&amp;&gt;x"><Coordinates>
        <RightAscension><Hours>0</Hours><Minutes>0</Minutes><Seconds>00.000</Seconds></RightAscension>
        <Declination><Degrees>-00</Degrees><Arcminutes>0</Arcminutes><Arcseconds>00.50</Arcseconds></Declination>
        <Equinox>J2000</Equinox>
      </Coordinates></Target>"""
    return f"""
    <Schedule>
      {device}
      <Exposure count="{count}"><Value units="seconds">{exposure}</Value></Exposure>
      {target}
      <AirmassConstraint maximum="1.8" />
      <SkyConstraint><Flux>1.0</Flux><Units>magnitudes/square-arcsecond</Units></SkyConstraint>
      <SeeingConstraint maximum="1.5" units="arcseconds" />
      <ExtinctionConstraint><Clouds>clear</Clouds></ExtinctionConstraint>
      <DateTimeConstraint type="include">
        <DateTimeStart system="UT" value="2026-11-21T18:30:00+0000" />
        <DateTimeEnd system="UT" value="2026-11-28T18:30:00+0000" />
      </DateTimeConstraint>
    </Schedule>"""


def camera(name, region, filter_type, binning):
    return f"""<Device name="{name}" type="camera"><SpectralRegion>{region}</SpectralRegion><Setup>
      <Filter type="{filter_type}" />
      <Detector><Binning><X units="pixels">{binning}</X><Y units="pixels">{binning}</Y></Binning></Detector>
    </Setup></Device>"""


def document(mode, schedules):
    return f"""<RTML xmlns="http://www.rtml.org/v3.1a" xmlns:xsi="{XSI}" mode="{mode}" uid="{UID}" version="3.1a"
      xsi:schemaLocation="http://www.rtml.org/v3.1a http://telescope.livjm.ac.uk/rtml/RTML-nightly.xsd">
      <Project ProjectID="PL26A01"><Contact><Username>observer</Username><Name>observer</Name></Contact></Project>
      {schedules}
    </RTML>"""


CONSTRAINTS = {"maximum_airmass": 1.8, "maximum_seeing": 1.5, "sky_brightness": 1.0, "photometric": True}


def test_the_whole_ioo_document_one_schedule_per_filter_in_the_order_chosen():
    call = prepared(IOOFacility, {"observation_choices": ["r", "g", "z"], "exposure_time": 90, "exposure_counts": 3, **CONSTRAINTS})
    expected = document("request", "".join(schedule(camera("IO:O", "optical", band, 2), "90.0", 3) for band in ("R", "G", "Z")))
    assert shape(sent_document(call)) == shape(ET.fromstring(expected))


def test_the_whole_ioi_document_h_band_unbinned():
    call = prepared(IOIFacility, {"observation_choices": ["H"], "exposure_time": 30, "exposure_counts": 5, **CONSTRAINTS})
    expected = document("request", schedule(camera("IO:I", "infrared", "H", 1), "30.0", 5))
    assert shape(sent_document(call)) == shape(ET.fromstring(expected))


def test_the_whole_sprat_document_one_schedule_with_the_grating():
    call = prepared(SPRATFacility, {"observation_type": "red", "exposure_time": 600, "exposure_counts": 1, **CONSTRAINTS})
    device = """<Device name="Sprat" type="spectrograph"><SpectralRegion>optical</SpectralRegion><Setup>
      <Grating name="red" />
      <Detector><Binning><X units="pixels">1</X><Y units="pixels">1</Y></Binning></Detector>
    </Setup></Device>"""
    assert shape(sent_document(call)) == shape(ET.fromstring(document("request", schedule(device, "600.0", 1))))


def test_the_defaults_fill_what_the_payload_leaves_out():
    # The window defaults to now .. now + 7 days, computed per call (the clock is frozen here).
    root = sent_document(prepared(SPRATFacility, {}))
    ns = {"r": rtml.RTML_NS}
    assert root.find("r:Schedule/r:Device/r:Setup/r:Grating", ns).get("name") == "blue"
    assert root.find("r:Schedule/r:Exposure", ns).get("count") == "1"
    assert root.find("r:Schedule/r:Exposure/r:Value", ns).text == "300.0"
    assert root.find("r:Schedule/r:AirmassConstraint", ns).get("maximum") == "2.0"
    assert root.find("r:Schedule/r:SeeingConstraint", ns).get("maximum") == "1.2"
    assert root.find("r:Schedule/r:SkyConstraint/r:Flux", ns).text == "2.0"
    assert root.find("r:Schedule/r:ExtinctionConstraint/r:Clouds", ns).text == "light"
    window = root.find("r:Schedule/r:DateTimeConstraint", ns)
    assert [e.get("value") for e in window] == ["2026-11-21T18:30:00+0000", "2026-11-28T18:30:00+0000"]


def test_the_document_is_in_the_rtml_namespace_without_prefixes_and_escapes_the_name():
    text = ET.fromstring(prepared(IOOFacility, {"observation_choices": ["g"]}).data).find(f".//{{{NODE_AGENT_NS}}}handle_rtml/arg0").text
    # LT's parser compares qualified names, so the namespace is the default one, not a prefix.
    assert text.startswith("<RTML ") and 'xmlns="http://www.rtml.org/v3.1a"' in text
    assert "<Schedule>" in text and "rtml:" not in text and "ns0:" not in text
    assert 'name="ZTF26&lt;&amp;&gt;x"' in text
    root = ET.fromstring(text)
    assert root.get(f"{{{XSI}}}schemaLocation") == "http://www.rtml.org/v3.1a http://telescope.livjm.ac.uk/rtml/RTML-nightly.xsd"
    assert root.find(f"{{{rtml.RTML_NS}}}Schedule/{{{rtml.RTML_NS}}}Target").get("name") == "ZTF26<&>x"


@pytest.mark.parametrize(
    ("ra", "dec", "expected"),
    [
        (150.1234, -20.5678, ("10", "0", "29.616", "-20", "34", "04.08")),
        (0.0, 0.0, ("0", "0", "00.000", "+00", "0", "00.00")),
        (359.99999999, 89.999999999, ("0", "0", "00.000", "+90", "0", "00.00")),
        (15.0, -0.25, ("1", "0", "00.000", "-00", "15", "00.00")),
        # RA 23:59:59.9999 rounds up into the next day; Dec -00:00:00.5 keeps its sign
        ((23 + 59 / 60 + 59.9999 / 3600) * 15, -0.5 / 3600, ("0", "0", "00.000", "-00", "0", "00.50")),
    ],
)
def test_coordinates_are_rounded_then_split(ra, dec, expected):
    root = sent_document(prepared(IOOFacility, {"observation_choices": ["g"]}, Target("t", ra, dec)))
    coordinates = root.find(f"{{{rtml.RTML_NS}}}Schedule/{{{rtml.RTML_NS}}}Target/{{{rtml.RTML_NS}}}Coordinates")
    assert tuple(e.text for e in coordinates.iter() if not list(e)) == (*expected, "J2000")


def test_a_name_with_control_characters_is_refused_naming_the_field():
    with pytest.raises(PayloadError) as caught:
        prepared(IOOFacility, {"observation_choices": ["g"]}, Target("bad\x07name", 1.0, 1.0))
    assert [e.path for e in caught.value.errors] == ["$.target"]


def test_the_abort_document_names_the_requests_own_uid_in_the_rtml_namespace():
    expected = f"""<RTML xmlns="http://www.rtml.org/v3.1a" xmlns:xsi="{XSI}" mode="abort" uid="{UID}" version="3.1a"
      xsi:schemaLocation="http://www.rtml.org/v3.1a http://telescope.livjm.ac.uk/rtml/RTML-nightly.xsd">
      <Project ProjectID="PL26A01"><Contact><Username>observer</Username><Name>observer</Name></Contact></Project>
    </RTML>"""
    assert shape(ET.fromstring(rtml.abort_document(UID, project="PL26A01", username="observer"))) == shape(ET.fromstring(expected))


@pytest.mark.parametrize("uid", ["", "has-hyphen", "sp ace", "x" * 65, "ünï"])
def test_a_uid_the_tea_could_not_abort_is_never_written(uid):
    with pytest.raises(ValueError, match="uid"):
        rtml.abort_document(uid, project="P", username="u")


def test_new_uids_are_word_characters_and_unique(monkeypatch):
    monkeypatch.undo()  # the real uid maker
    request = FollowupRequest(42, Target("ZTF26 ab-c/d", 1.0, 1.0), Allocation(1, ALTDATA))
    uids = {IOOFacility.new_uid(request) for _ in range(200)}
    assert len(uids) == 200
    assert all(rtml.UID_RULE.fullmatch(uid) and uid.startswith("ZTF26_ab_c_d_42_") for uid in uids)
    assert rtml.UID_RULE.fullmatch(IOOFacility.new_uid(FollowupRequest(None, Target("---", 1.0, 1.0), Allocation(1, ALTDATA))))


def test_the_window_is_written_with_an_offset_lts_parser_reads():
    assert rtml.ut_value(datetime(2026, 7, 1, 23, 59, 58, tzinfo=UTC)) == "2026-07-01T23:59:58+0000"


# -- replies -------------------------------------------------------------------------------------

CONFIRM = f"""<?xml version="1.0" encoding="ISO-8859-1"?>
<RTML xmlns="http://www.rtml.org/v3.1a" mode="confirm" uid="{UID}" version="3.1a">
  <History><Entry timeStamp="2026-11-21T18:30:01+0000"><Agent name="TEA:LT"/><Description>Request confirmed.</Description></Entry></History>
</RTML>"""

REJECT = f"""<?xml version="1.0" encoding="ISO-8859-1"?>
<RTML xmlns="http://www.rtml.org/v3.1a" mode="reject" uid="{UID}" version="3.1a">
  <History><Entry timeStamp="2026-11-21T18:30:01+0000"><Agent name="TEA:LT"/>
    <Rejection reason="other"><Description>Your Exposure time is too short.</Description></Rejection>
    <Error>java.lang.IllegalArgumentException: Your Exposure time is too short.</Error>
  </Entry></History>
</RTML>"""

RTML22 = """<?xml version="1.0" encoding="ISO-8859-1"?>
<!DOCTYPE RTML SYSTEM "http://www.estar.org.uk/documents/rtml2.2.dtd">
<RTML type="reject" version="2.2">org.estar.rtml.RTMLException: bad : badly formatted rtml received</RTML>"""


def test_a_confirm_reply():
    assert rtml.parse_reply(CONFIRM, service="LT") == rtml.Reply("confirm", UID, ())


def test_a_reject_reply_gives_its_reason_once_without_the_java_exception_name():
    reply = rtml.parse_reply(REJECT, service="LT")
    assert (reply.mode, reply.reason) == ("reject", "Your Exposure time is too short.")


def test_the_node_agents_rtml_22_error_document_is_read():
    reply = rtml.parse_reply(RTML22, service="LT")
    assert (reply.mode, reply.uid, reply.reason) == ("reject", None, "bad : badly formatted rtml received")


def test_a_reject_without_any_error_element_has_an_empty_reason():
    assert rtml.parse_reply(f'<RTML xmlns="{rtml.RTML_NS}" mode="reject" uid="u" version="3.1a"/>', service="LT").reason == ""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not xml at all", "not well-formed XML"),
        ("<html><head><title>Oops</title></head></html>", r"not RTML \(root element 'html'\)"),
        ('<RTML xmlns="urn:other" mode="confirm"/>', "not RTML"),
        (f'<RTML xmlns="{rtml.RTML_NS}" version="3.1a"/>', "without a mode"),
        (
            '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
            '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">'
            '<!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;"><!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">'
            '<!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;"><!ENTITY h "&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;">]><RTML mode="reject">&h;</RTML>',
            "not well-formed XML",
        ),
    ],
)
def test_anything_else_is_a_remote_error(text, message):
    with pytest.raises(RemoteError, match=message):
        rtml.parse_reply(text, service="LT")


# -- the documents shown in docs/facilities/lt.md --------------------------------------------------

DOCS = Path(__file__).resolve().parent.parent / "docs"
DOCUMENTED_UID = IOOFacility.example_remote_id


def test_the_documented_request_and_abort_are_what_the_code_builds(monkeypatch):
    monkeypatch.setattr(lt_facility.LiverpoolFacility, "new_uid", staticmethod(lambda request: DOCUMENTED_UID))
    call = prepared(IOOFacility, {"observation_choices": ["g", "r"], "exposure_time": 120, "exposure_counts": 2}, Target("ZTF26abcdefg", 150.1234, -20.5678))
    shown = ET.parse(DOCS / "examples" / "lt-ioo-request.xml").getroot()
    assert shape(sent_document(call)) == shape(shown)
    abort = rtml.abort_document(DOCUMENTED_UID, project="PL26A01", username="observer")
    assert shape(ET.fromstring(abort)) == shape(ET.parse(DOCS / "examples" / "lt-abort.xml").getroot())
