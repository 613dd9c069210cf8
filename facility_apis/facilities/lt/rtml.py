"""RTML 3.1a documents for the Liverpool Telescope: requests, inquiries and aborts built, replies read.

Sources, for every rule below:

- the RTML 3.1a schema, ``RTML-nightly.xsd`` (target namespace ``http://www.rtml.org/v3.1a``;
  root ``RTML`` with required ``version="3.1a"``, ``uid`` and ``mode``, modes ``inquiry``,
  ``offer``, ``request``, ``confirm``, ``reject``, ``abort`` ...), as LT publishes it at
  http://telescope.livjm.ac.uk/rtml/RTML-nightly.xsd and in its ``org_estar_rtml`` library;
- LT's RTML page, https://telescope.livjm.ac.uk/PropInst/RTML/;
- the public source of LT's parser and server (GitHub ``LivTel/org_estar_rtml``:
  ``RTML31Parser``, ``RTMLDateFormat``; ``LivTel/tea``: ``Phase2GroupExtractor``,
  ``DeviceInstrumentUtilites``, ``AbortDocumentHandler``, ``RequestDocumentHandler``;
  ``LivTel/node_agent2``). Facts only; no code is taken from them.

What LT's parser and server need, beyond the schema:

- elements in the RTML namespace as the *default* namespace, no prefix: the parser is
  namespace-aware but compares qualified names (``getNodeName() == "RTML"``);
- ``Project/@ProjectID`` and ``Project/Contact/Username`` (the TEA refuses a document without
  them); RA ``Hours`` and ``Minutes`` and Dec ``Arcminutes`` are integers, Dec ``Degrees`` starts
  with ``+`` or ``-`` (so ``-00`` keeps the sign), seconds are decimals;
- ``DateTimeStart``/``DateTimeEnd`` ``value`` with a ``+HHMM`` offset: ``RTMLDateFormat`` reads
  ``yyyy-MM-dd'T'HH:mm:ssZ`` (Java's ``Z`` is ``+0000``) and otherwise falls back to the
  *server's local time zone*, so the schema's ``+00:00`` spelling would shift the window;
- every Schedule of one document carries the same constraints (``Phase2GroupExtractor``
  refuses a mismatch); an exposure of at least 1 s and a count of at least 1; IO:I binning 1;
  Sprat gratings ``red``/``blue``;
- the ``uid`` names the Phase 2 group: the TEA creates it under the uid with every non-word
  character replaced by ``_`` but looks the raw uid up when aborting, so a uid must hold only
  ``[A-Za-z0-9_]`` for its abort to find the group.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from ...core.coordinates import dec_dms, ra_hms
from ...core.errors import PayloadError, RemoteError
from ...core.interface import Target

RTML_NS = "http://www.rtml.org/v3.1a"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
SCHEMA_LOCATION = f"{RTML_NS} http://telescope.livjm.ac.uk/rtml/RTML-nightly.xsd"
VERSION = "3.1a"
#: Decimals of the RA seconds (1 ms of time is 15 mas) and of the Dec arcseconds (10 mas).
RA_DECIMALS, DEC_DECIMALS = 3, 2
#: What a uid may hold, so that the TEA's abort finds the group its request created.
UID_RULE = re.compile(r"[A-Za-z0-9_]{1,64}")
#: The Java exception name LT's node agent puts before an error (``exception.toString()``).
_JAVA_EXCEPTION = re.compile(r"^(?:[a-z_][\w$]*\.)+(?:[A-Z][\w$]*)?(?:Exception|Error): ")
#: Characters XML 1.0 cannot carry at all (escaping cannot help).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class Setup:
    """One instrument configuration: the RTML ``Device``.

    ``device`` is LT's instrument name (``IO:O``, ``IO:I``, ``Sprat``), ``kind`` ``camera`` or
    ``spectrograph``, ``region`` ``optical`` or ``infrared``; a camera has a ``filter`` (LT's
    name, e.g. ``R``), a spectrograph a ``grating``; ``binning`` in pixels, square.
    """

    device: str
    kind: str
    region: str
    binning: int
    filter: str | None = None
    grating: str | None = None


@dataclass(frozen=True)
class Exposure:
    """``count`` exposures of ``seconds`` each with one ``setup``: one RTML ``Schedule``."""

    setup: Setup
    seconds: float
    count: int


@dataclass(frozen=True)
class Constraints:
    """The scheduling constraints every Schedule of a document shares.

    ``max_airmass`` (≥ 1), ``max_seeing`` (arcsec), ``sky_brightness`` (mag/arcsec² brighter than
    the dark sky that is still acceptable), ``photometric`` (clear sky, else light cloud allowed),
    and the window from ``start`` to ``end`` (UTC).
    """

    max_airmass: float
    max_seeing: float
    sky_brightness: float
    photometric: bool
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Reply:
    """An RTML answer from the node agent: its ``mode`` (``confirm``, ``reject``, ``offer``,
    ``abort`` ...), ``uid`` and the error texts it carries (History ``Error`` entries, rejection
    descriptions, or the text of an RTML 2.2 error document), in document order."""

    mode: str
    uid: str | None
    errors: tuple[str, ...]

    @property
    def reason(self) -> str:
        """The errors as one line, or an empty string."""
        return "; ".join(self.errors)


def _tag(name: str) -> str:
    return f"{{{RTML_NS}}}{name}"


# Documents are built with plain element names under a root that declares the RTML namespace as
# the default one (``xmlns=...``), which puts every element in it without a prefix, as LT's
# parser needs. (ElementTree's ``default_namespace`` option refuses unqualified attributes.)


def _add(parent: ET.Element, element_name: str, text: str | None = None, /, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, element_name, attributes)
    if text is not None:
        element.text = text
    return element


def _number(value: float) -> str:
    """A decimal number as Java's ``Double.parseDouble`` reads it (``300.0``, ``1.2``)."""
    return repr(float(value))


def ut_value(moment: datetime) -> str:
    """A UTC instant as LT's ``RTMLDateFormat`` reads it: ``2026-11-21T20:00:00+0000``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def _root(mode: str, uid: str) -> ET.Element:
    if not UID_RULE.fullmatch(uid):
        raise ValueError("an RTML uid holds 1 to 64 characters of [A-Za-z0-9_]")
    attributes = {"xmlns": RTML_NS, "mode": mode, "uid": uid, "version": VERSION, f"{{{XSI_NS}}}schemaLocation": SCHEMA_LOCATION}
    return ET.Element("RTML", attributes)


def _project(root: ET.Element, project: str, username: str) -> None:
    contact = _add(_add(root, "Project", ProjectID=project), "Contact")
    _add(contact, "Username", username)
    _add(contact, "Name", username)


def _device(schedule: ET.Element, setup: Setup) -> None:
    device = _add(schedule, "Device", name=setup.device, type=setup.kind)
    _add(device, "SpectralRegion", setup.region)
    settings = _add(device, "Setup")
    if setup.filter is not None:
        _add(settings, "Filter", type=setup.filter)
    if setup.grating is not None:
        _add(settings, "Grating", name=setup.grating)
    binning = _add(_add(settings, "Detector"), "Binning")
    _add(binning, "X", str(setup.binning), units="pixels")
    _add(binning, "Y", str(setup.binning), units="pixels")


def target_name(target: Target) -> str:
    """The target's name as the document carries it; ``PayloadError`` when it holds characters
    XML 1.0 cannot carry (control characters), which no escaping can represent."""
    if _NOT_XML.search(target.id):
        raise PayloadError.single("$.target", "the source name holds control characters, which an RTML document cannot carry")
    return target.id


def _target(schedule: ET.Element, target: Target) -> None:
    coordinates = _add(_add(schedule, "Target", name=target_name(target)), "Coordinates")
    ra, dec = ra_hms(target.ra, RA_DECIMALS), dec_dms(target.dec, DEC_DECIMALS)
    right_ascension = _add(coordinates, "RightAscension")
    _add(right_ascension, "Hours", str(ra.whole))
    _add(right_ascension, "Minutes", str(ra.minutes))
    _add(right_ascension, "Seconds", ra.seconds_text)
    declination = _add(coordinates, "Declination")
    _add(declination, "Degrees", f"{dec.sign}{dec.whole:02d}")
    _add(declination, "Arcminutes", str(dec.minutes))
    _add(declination, "Arcseconds", dec.seconds_text)
    _add(coordinates, "Equinox", "J2000")


def _constraints(schedule: ET.Element, constraints: Constraints) -> None:
    _add(schedule, "AirmassConstraint", maximum=_number(constraints.max_airmass))
    sky = _add(schedule, "SkyConstraint")
    _add(sky, "Flux", _number(constraints.sky_brightness))
    _add(sky, "Units", "magnitudes/square-arcsecond")
    _add(schedule, "SeeingConstraint", maximum=_number(constraints.max_seeing), units="arcseconds")
    _add(_add(schedule, "ExtinctionConstraint"), "Clouds", "clear" if constraints.photometric else "light")
    window = _add(schedule, "DateTimeConstraint", type="include")
    _add(window, "DateTimeStart", system="UT", value=ut_value(constraints.start))
    _add(window, "DateTimeEnd", system="UT", value=ut_value(constraints.end))


def _text(root: ET.Element) -> str:
    return ET.tostring(root, encoding="unicode")


def observation_document(
    mode: str, uid: str, *, project: str, username: str, target: Target, exposures: Sequence[Exposure], constraints: Constraints
) -> str:
    """A ``request`` or ``inquiry`` document: one Schedule per exposure (one per filter for the
    imagers), each with its Device, Exposure, Target and the shared constraints. Text, without an
    XML declaration (it travels as a string inside the SOAP call)."""
    if mode not in ("request", "inquiry"):
        raise ValueError("an observation document's mode is 'request' or 'inquiry'")
    if not exposures:
        raise ValueError("an observation document needs at least one exposure")
    root = _root(mode, uid)
    _project(root, project, username)
    for exposure in exposures:
        schedule = _add(root, "Schedule")
        _device(schedule, exposure.setup)
        _add(_add(schedule, "Exposure", count=str(exposure.count)), "Value", _number(exposure.seconds), units="seconds")
        _target(schedule, target)
        _constraints(schedule, constraints)
    return _text(root)


def abort_document(uid: str, *, project: str, username: str) -> str:
    """The ``abort`` document for the group a request created: its own ``uid``, in the RTML
    namespace, with the Project and Contact the TEA needs to find the proposal."""
    root = _root("abort", uid)
    _project(root, project, username)
    return _text(root)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_reply(text: str, *, service: str) -> Reply:
    """Read the node agent's RTML answer. An RTML 3.1a document (namespace above) gives its
    ``mode``; the RTML 2.2 error document the node agent falls back to (no namespace, ``type``
    instead of ``mode``, the error as its text) is read too. ``RemoteError`` for anything else:
    not XML, or XML that is not an RTML document."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        raise RemoteError(f"{service} answered with an RTML document that is not well-formed XML") from None
    if _local(root.tag) != "RTML" or root.tag not in (_tag("RTML"), "RTML"):
        raise RemoteError(f"{service} answered with an XML document that is not RTML (root element {_local(root.tag)!r})")
    mode = root.get("mode") or root.get("type")
    if not mode:
        raise RemoteError(f"{service} answered with an RTML document without a mode")
    texts = [e.text for e in root.iter() if _local(e.tag) == "Error"]
    for rejection in (e for e in root.iter() if _local(e.tag) == "Rejection"):
        texts += [d.text for d in rejection if _local(d.tag) == "Description"]
    texts.append(root.text)
    errors = (_JAVA_EXCEPTION.sub("", " ".join(text.split())) for text in texts if text and text.strip())
    return Reply(mode, root.get("uid"), tuple(dict.fromkeys(errors)))
