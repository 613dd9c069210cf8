"""The Liverpool Telescope's RTML node agent on loopback: SOAP ``handle_rtml`` in front of a TEA.

What it emulates, from the public source of LT's services (GitHub ``LivTel/node_agent2``,
``LivTel/tea``, ``LivTel/org_estar_rtml``) and the RTML 3.1a schema:

- the node agent (``POST /node_agent2/node_agent``): a JAX-WS RPC service, SOAP 1.1, namespace
  ``http://node_agent2.estar.org/``, operations ``handle_rtml(arg0)`` and ``ping()``; the
  ``Username``/``Password`` HTTP headers checked first, a SOAP fault (HTTP 500) naming
  ``checkUsernamePassword`` when either is missing or wrong; a reply document that is not
  well-formed falls back to RTML 2.2 (``<RTML type="reject" version="2.2">reason</RTML>``);
- the TEA behind it: an RTML 3.1a document (default namespace ``http://www.rtml.org/v3.1a``,
  ``version="3.1a"``, a ``uid``) with ``Project/@ProjectID`` and ``Contact/Username``;
  ``request`` creates a Phase 2 group named by the uid (non-word characters made ``_``) and
  answers ``confirm``; ``inquiry`` answers ``offer`` with a score; ``abort`` looks the group up
  by the *raw* uid and expires it, answering ``abort`` (as the TEA's ``AbortDocumentHandler``
  does, although RTML 3.1a says ``confirm``; ``abort_reply="confirm"`` gives the latter);
  anything wrong answers ``reject`` with the reason in ``History/Entry/Error``. Checked as the
  TEA checks them: the instrument set-ups (IO:O filters U G R I Z B V at binning 1 or 2, IO:I
  filter H at binning 1, Sprat gratings red/blue), exposures of at least 1 s and counts of at
  least 1, whole-number hours and minutes, a signed ``Degrees``, seconds below 60, a window
  whose start precedes its end, the same constraints in every Schedule, and the proposal's
  owner. Window times are read as ``RTMLDateFormat`` reads them: ``+HHMM`` offsets, anything
  else (``+00:00`` included) in the server's time zone, ``server_timezone``.

Knobs: ``soap_fault_next(text)``, ``reject_next(reason)``, ``reply_next(mode)`` (answer the next
document with a bare RTML reply of that mode), ``garble_next(body)`` (carry out the next call,
then answer with ``body`` instead of the SOAP reply, as a broken proxy would), ``tea_connected =
False`` (every document rejected, as the node agent does when its TEA is away), and the
:class:`LoopbackServer` faults (latency, status, malformed, drop, ``down()``), which act before
the call is carried out. ``documents()`` gives every RTML document
received, ``groups`` the Phase 2 groups.
"""

from __future__ import annotations

import re
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime, timezone
from typing import Any

from .server import LoopbackHandler, LoopbackServer

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
NODE_AGENT_NS = "http://node_agent2.estar.org/"
RTML_NS = "http://www.rtml.org/v3.1a"
PATH = "/node_agent2/node_agent"
IMPL = "org.estar.node_agent2.NodeAgentWebServiceImpl"
#: Instrument set-ups the TEA accepts: device name -> (filter types or gratings, binnings).
INSTRUMENTS: dict[str, tuple[frozenset[str], frozenset[int]]] = {
    "IO:O": (frozenset({"U", "G", "R", "I", "Z", "B", "V"}), frozenset({1, 2})),
    "IO:I": (frozenset({"H"}), frozenset({1})),
    "Sprat": (frozenset({"red", "blue"}), frozenset({1})),
}
_ZONED = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)([+-]\d{4})")
_LOCAL = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)")


class Refusal(Exception):
    """The TEA (or the node agent before it) rejects the document, for this reason. The node
    agent's own refusals carry the Java exception's name (``createErrorDocument`` writes
    ``exception.toString()``); the TEA's carry its message alone."""

    def __init__(self, reason: str, *, node_agent: bool = False):
        super().__init__(f"java.lang.Exception: {reason}" if node_agent else reason)


class Fault(Exception):
    """The node agent answers with a SOAP fault."""

    def __init__(self, code: str, text: str):
        self.code = code
        super().__init__(text)


@dataclass
class Group:
    """A Phase 2 group created by a ``request``: its proposal, owner, window and exposures."""

    name: str
    uid: str
    proposal: str
    user: str
    start: datetime
    end: datetime
    schedules: list[dict[str, Any]]
    aborted: bool = False


@dataclass
class _Account:
    password: str
    proposals: frozenset[str]


@dataclass
class _Script:
    kind: str
    text: str = ""


@dataclass
class _Received:
    mode: str | None
    document: ET.Element | None
    text: str = field(repr=False, default="")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(element: ET.Element, name: str) -> ET.Element | None:
    return element.find(f"{{{RTML_NS}}}{name}")


def _required(element: ET.Element, path: str, what: str) -> ET.Element:
    found = element.find("/".join(f"{{{RTML_NS}}}{part}" for part in path.split("/")))
    if found is None:
        raise Refusal(f"No {what} in received document")
    return found


def _integer(element: ET.Element, path: str, low: int, high: int, what: str) -> int:
    text = (_required(element, path, what).text or "").strip()
    if not re.fullmatch(r"[+-]?\d+", text) or not low <= int(text) <= high:
        raise Refusal(f"Illegal {what}: {text!r} is not a whole number from {low} to {high}")
    return int(text)


def _decimal(element: ET.Element, path: str, low: float, high: float, what: str, *, below: bool = False) -> float:
    text = (_required(element, path, what).text or "").strip()
    try:
        value = float(text)
    except ValueError:
        raise Refusal(f"Illegal {what}: {text!r} is not a number") from None
    if not (low <= value < high if below else low <= value <= high):
        raise Refusal(f"Illegal {what}: {text!r} is out of range")
    return value


class LTNodeAgentEmulator(LoopbackServer):
    """LT's RTML node agent and TEA (see the module docstring).

    ``accounts`` maps a user name to ``(password, proposal ids)``; ``server_timezone`` is the zone
    the TEA reads a window time without a ``+HHMM`` offset in.
    """

    def __init__(
        self,
        accounts: dict[str, tuple[str, set[str] | frozenset[str]]] | None = None,
        *,
        abort_reply: str = "abort",
        server_timezone: timezone = UTC,
    ):
        super().__init__()
        chosen = accounts if accounts is not None else {"observer": ("placeholder-rtml-password", {"PL26A01"})}
        self._accounts = {user: _Account(password, frozenset(proposals)) for user, (password, proposals) in chosen.items()}
        self.abort_reply = abort_reply
        self.server_timezone = server_timezone
        self.tea_connected = True
        self._lock = threading.Lock()
        self._groups: dict[tuple[str, str], Group] = {}
        self._received: list[_Received] = []
        self._faults: list[str] = []
        self._garbled: list[str] = []
        self._script: list[_Script] = []

    def routes(self) -> list[Any]:
        return [(PATH, NodeAgentHandler)]

    @property
    def endpoint(self) -> str:
        """The ``handle_rtml`` URL, a deployment's ``base_url``."""
        return f"{self.url}{PATH}"

    # -- knobs and views -------------------------------------------------------------------------

    def soap_fault_next(self, text: str = "java.lang.RuntimeException: emulated fault") -> None:
        """Answer the next call with a SOAP fault (HTTP 500) carrying ``text``."""
        with self._lock:
            self._faults.append(text)

    def reject_next(self, reason: str) -> None:
        """Reject the next RTML document with ``reason``, whatever it holds."""
        with self._lock:
            self._script.append(_Script("reject", reason))

    def garble_next(self, body: str = "Proxy Error: the upstream answer was lost") -> None:
        """Carry out the next call, then answer HTTP 200 with ``body`` (plain text)."""
        with self._lock:
            self._garbled.append(body)

    def take_garbled(self) -> str | None:
        with self._lock:
            return self._garbled.pop(0) if self._garbled else None

    def reply_next(self, mode: str) -> None:
        """Answer the next RTML document with a reply of ``mode`` and nothing done."""
        with self._lock:
            self._script.append(_Script("reply", mode))

    @property
    def groups(self) -> list[Group]:
        """The Phase 2 groups created so far, oldest first."""
        with self._lock:
            return list(self._groups.values())

    def documents(self, mode: str | None = None) -> list[ET.Element]:
        """Every well-formed RTML document received (of ``mode``, if given), oldest first."""
        with self._lock:
            return [r.document for r in self._received if r.document is not None and (mode is None or r.mode == mode)]

    # -- the node agent --------------------------------------------------------------------------

    def _next_script(self) -> _Script | None:
        with self._lock:
            return self._script.pop(0) if self._script else None

    def take_fault(self) -> str | None:
        """The text of a fault asked for with :meth:`soap_fault_next`, if one is due."""
        with self._lock:
            return self._faults.pop(0) if self._faults else None

    def check_credentials(self, username: str | None, password: str | None) -> str:
        """``NodeAgentWebServiceImpl.checkUsernamePassword``: the user name, or a :class:`Fault`."""
        where = f"{IMPL}:checkUsernamePassword"
        if username is None:
            raise Fault("S:Server", f"{where}:Failed to find username in headers.")
        if password is None:
            raise Fault("S:Server", f"{where}:Failed to find password in headers for username:{username}")
        account = self._accounts.get(username)
        if account is None:
            raise Fault("S:Server", f"{where}:Failed to find password for username:{username} in persistent store.")
        if password != account.password:
            raise Fault("S:Server", f"{where}:Incorrect Password for User:{username}")
        return username

    def handle_rtml(self, username: str, text: str) -> str:
        """The reply document (text) for one received RTML document."""
        try:
            root = ET.fromstring(text.strip())
        except ET.ParseError as exc:
            with self._lock:
                self._received.append(_Received(None, None, text))
            return _rtml22_reject(f"org.estar.rtml.RTMLException: {exc} : badly formatted rtml received")
        with self._lock:
            self._received.append(_Received(root.get("mode"), root, text))
        script = self._next_script()
        try:
            if script is not None and script.kind == "reject":
                raise Refusal(script.text)
            if script is not None and script.kind == "reply":
                return _reply(root, script.text)
            return self._process(username, root)
        except Refusal as exc:
            return _reply(root, "reject", error=str(exc))

    def _process(self, username: str, root: ET.Element) -> str:
        if root.tag != f"{{{RTML_NS}}}RTML":
            raise Refusal(f"parseRTMLNode: the root element must be RTML in the namespace {RTML_NS}, not {root.tag!r}", node_agent=True)
        if root.get("version") != "3.1a":
            raise Refusal(f"parseRTMLNode:Unsupported Version:{root.get('version')}", node_agent=True)
        uid = root.get("uid")
        if not uid:
            raise Refusal("No UID specified")
        if not self.tea_connected:
            raise Refusal("is.tea.connected = false, not sending rtml onwards", node_agent=True)
        proposal = _required(root, "Project", "Project").get("ProjectID")
        if not proposal:
            raise Refusal("No Project in Project in received document")
        user = (_required(root, "Project/Contact/Username", "User in Contact").text or "").strip()
        account = self._accounts.get(user)
        if account is None or proposal not in account.proposals:
            raise Refusal(f"Internal error during GET_PROPOSAL: No proposal {proposal} for user {user}")
        mode = root.get("mode")
        if mode in ("request", "inquiry"):
            group = self._group(root, uid, proposal, user)
            if mode == "inquiry":
                return _reply(root, "offer", score="0.5")
            with self._lock:
                if (proposal, group.name) in self._groups:
                    raise Refusal(f"Internal error during ADD_GROUP: group {group.name} already exists in proposal {proposal}")
                self._groups[(proposal, group.name)] = group
            return _reply(root, "confirm", note="Request confirmed.")
        if mode == "abort":
            with self._lock:
                group = self._groups.get((proposal, uid))  # the raw uid, as the TEA looks it up
                if group is None:
                    raise Refusal(f"Internal error during GET_PROPOSAL: Group {uid} was not found in proposal")
                group.aborted = True
                group.end = datetime.now(UTC)
            return _reply(root, self.abort_reply, note="Aborted document.")
        raise Refusal("Unknown document request type.", node_agent=True)

    # -- the TEA's reading of a request (Phase2GroupExtractor) -----------------------------------

    def _moment(self, value: str | None) -> datetime:
        """``RTMLDateFormat.parse``: a ``+HHMM`` offset, else the server's local time."""
        zoned, local = _ZONED.match(value or ""), _LOCAL.match(value or "")
        if zoned:
            return datetime.strptime("".join(zoned.groups()), "%Y-%m-%dT%H:%M:%S%z").astimezone(UTC)
        if local:
            return datetime.strptime(local.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=self.server_timezone).astimezone(UTC)
        raise Refusal(f"Illegal date {value!r}")

    def _schedule(self, schedule: ET.Element) -> dict[str, Any]:
        device = _required(schedule, "Device", "Device")
        name = device.get("name") or ""
        if name not in INSTRUMENTS:
            raise Refusal(f"Device configuration error: unknown instrument {name!r}")
        choices, binnings = INSTRUMENTS[name]
        setup = _required(device, "Setup", "Setup")
        chosen = setup.find(f"{{{RTML_NS}}}Grating") if name == "Sprat" else setup.find(f"{{{RTML_NS}}}Filter")
        value = None if chosen is None else chosen.get("name" if name == "Sprat" else "type")
        if value not in choices:
            raise Refusal(f"Device configuration error: {name} has no {'grating' if name == 'Sprat' else 'filter'} {value!r}")
        x = _integer(setup, "Detector/Binning/X", 1, 16, "X binning")
        y = _integer(setup, "Detector/Binning/Y", 1, 16, "Y binning")
        if x != y or x not in binnings:
            raise Refusal(f"Device configuration error: {name} cannot bin {x}x{y}")
        exposure = _required(schedule, "Exposure", "Exposure")
        count = int(exposure.get("count") or 0)
        value_element = _required(exposure, "Value", "Exposure Value")
        if value_element.get("units") != "seconds":
            raise Refusal("Exposure units must be seconds")
        if float(value_element.text or 0) < 1.0:
            raise Refusal("Your Exposure time is too short.")
        if count < 1:
            raise Refusal("Your Exposure Count is less than 1.")
        coordinates = _required(schedule, "Target/Coordinates", "Target Coordinates")
        hours = _integer(coordinates, "RightAscension/Hours", 0, 23, "RA hours")
        minutes = _integer(coordinates, "RightAscension/Minutes", 0, 59, "RA minutes")
        seconds = _decimal(coordinates, "RightAscension/Seconds", 0.0, 60.0, "RA seconds", below=True)
        degrees_text = (_required(coordinates, "Declination/Degrees", "Dec degrees").text or "").strip()
        if not re.fullmatch(r"[+-]\d+", degrees_text) or int(degrees_text[1:]) > 90:
            raise Refusal(f"parseDeclinationNode:Illegal Degrees value:{degrees_text} does not start with a '+' or '-'.")
        arcminutes = _integer(coordinates, "Declination/Arcminutes", 0, 59, "Dec arcminutes")
        arcseconds = _decimal(coordinates, "Declination/Arcseconds", 0.0, 60.0, "Dec arcseconds", below=True)
        magnitude = int(degrees_text[1:]) + arcminutes / 60 + arcseconds / 3600
        if magnitude > 90:
            raise Refusal("Declination beyond the pole")
        window = _required(schedule, "DateTimeConstraint", "DateTimeConstraint")
        if window.get("type", "include") != "include":
            raise Refusal("Time constraint is an exclude: We only allow include.")
        return {
            "device": name,
            "setup": value,
            "binning": x,
            "exposure": float(value_element.text or 0),
            "count": count,
            "target": _required(schedule, "Target", "Target").get("name"),
            "ra_deg": (hours + minutes / 60 + seconds / 3600) * 15,
            "dec_deg": -magnitude if degrees_text.startswith("-") else magnitude,
            "start": self._moment(_required(window, "DateTimeStart", "DateTimeStart").get("value")),
            "end": self._moment(_required(window, "DateTimeEnd", "DateTimeEnd").get("value")),
            "constraints": tuple(
                (_local(c.tag), tuple(sorted(c.attrib.items())), tuple((_local(x.tag), (x.text or "").strip()) for x in c))
                for c in schedule if _local(c.tag).endswith("Constraint") and _local(c.tag) != "DateTimeConstraint"
            ),
        }

    def _group(self, root: ET.Element, uid: str, proposal: str, user: str) -> Group:
        schedules = [self._schedule(s) for s in root.findall(f"{{{RTML_NS}}}Schedule")]
        if not schedules:
            raise Refusal("Device not set")
        first = schedules[0]
        for number, other in enumerate(schedules[1:], start=1):
            for key in ("start", "end", "constraints"):
                if other[key] != first[key]:
                    raise Refusal(f"Constraint mismatch: {key} for {number}")
        if first["start"] >= first["end"]:
            raise Refusal("Your StartDate and EndDate do not make sense.")
        return Group(re.sub(r"\W", "_", uid), uid, proposal, user, first["start"], first["end"], schedules)


def _plain(element: ET.Element) -> ET.Element:
    """A copy of a parsed RTML tree with local names, for writing back under a default namespace."""
    copy = ET.Element(_local(element.tag), {k: v for k, v in element.attrib.items() if not k.startswith("{")})
    copy.text, copy.tail = element.text, element.tail
    copy.extend(_plain(child) for child in element)
    return copy


def _reply(received: ET.Element, mode: str, *, error: str | None = None, note: str | None = None, score: str | None = None) -> str:
    """The TEA's reply: the received document with its mode changed and a History entry, written
    as ``RTMLCreate`` writes it (ISO-8859-1 declaration, default namespace, xsi schema location)."""
    root = _plain(received) if _local(received.tag) == "RTML" else ET.Element("RTML")
    root.attrib.update({"xmlns": RTML_NS, "mode": mode, "version": "3.1a"})
    root.set("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance")
    root.set("xsi:schemaLocation", f"{RTML_NS} http://telescope.livjm.ac.uk/rtml/RTML-nightly.xsd")
    root.set("uid", received.get("uid") or "")
    history = ET.Element("History")
    entry = ET.SubElement(history, "Entry", timeStamp=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000"))
    ET.SubElement(entry, "Agent", name="TEA:LT")
    if note:
        ET.SubElement(entry, "Description").text = note
    if error:
        rejection = ET.SubElement(entry, "Rejection", reason="other")
        ET.SubElement(rejection, "Description").text = error
        ET.SubElement(entry, "Error").text = error
    root.insert(0, history)
    if score is not None:
        ET.SubElement(ET.SubElement(root, "Scoring"), "Score", delay="PT0S", probability=score, cumulative=score)
    return '<?xml version="1.0" encoding="ISO-8859-1"?>\n' + ET.tostring(root, encoding="unicode")


def _rtml22_reject(error: str) -> str:
    """The node agent's fallback error document (``RTMLUtil.createErrorDocument`` from scratch)."""
    root = ET.Element("RTML", type="reject", version="2.2")
    root.text = error
    head = '<?xml version="1.0" encoding="ISO-8859-1"?>\n<!DOCTYPE RTML SYSTEM "http://www.estar.org.uk/documents/rtml2.2.dtd">\n'
    return head + ET.tostring(root, encoding="unicode")


def _envelope(body: ET.Element) -> bytes:
    envelope = ET.Element("S:Envelope", {"xmlns:S": SOAP_ENV})
    ET.SubElement(envelope, "S:Body").append(body)
    return ET.tostring(envelope, encoding="utf-8", xml_declaration=True)


class NodeAgentHandler(LoopbackHandler):
    """``POST /node_agent2/node_agent``: one SOAP 1.1 call."""

    def _answer(self, status: int, body: ET.Element) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "text/xml; charset=utf-8")
        self.finish(_envelope(body))

    def _fault(self, code: str, text: str) -> None:
        fault = ET.Element("S:Fault")
        ET.SubElement(fault, "faultcode").text = code
        ET.SubElement(fault, "faultstring").text = text
        self._answer(500, fault)

    def post(self) -> None:
        server: LTNodeAgentEmulator = self.server  # type: ignore[assignment]
        if not self.request.headers.get("Content-Type", "").lower().startswith("text/xml"):
            self.set_status(415)
            self.finish("Unsupported Content-Type: SOAP 1.1 needs text/xml")
            return
        try:
            call = ET.fromstring(self.request.body).find(f"{{{SOAP_ENV}}}Body/*")
        except ET.ParseError as exc:
            self._fault("S:Client", f"Couldn't create SOAP message due to exception: {exc}")
            return
        try:
            if call is None or call.tag not in (f"{{{NODE_AGENT_NS}}}handle_rtml", f"{{{NODE_AGENT_NS}}}ping"):
                raise Fault("S:Client", f"Cannot find dispatch method for {call.tag if call is not None else 'an empty Body'}")
            username = server.check_credentials(self.request.headers.get("Username"), self.request.headers.get("Password"))
            fault = server.take_fault()
            if fault is not None:
                raise Fault("S:Server", fault)
        except Fault as exc:
            self._fault(exc.code, str(exc))
            return
        operation = _local(call.tag)
        answer = ET.Element(f"ns2:{operation}Response", {"xmlns:ns2": NODE_AGENT_NS})
        if operation == "ping":
            ET.SubElement(answer, "return").text = "ACK" if server.tea_connected else "NAK (not live)"
        else:
            argument = call.find("arg0")
            if argument is None:
                self._fault("S:Client", "handle_rtml: no arg0 part")
                return
            ET.SubElement(answer, "return").text = server.handle_rtml(username, argument.text or "")
        garbled = server.take_garbled()
        if garbled is not None:
            self.set_header("Content-Type", "text/plain")
            self.finish(garbled)
            return
        self._answer(200, answer)

