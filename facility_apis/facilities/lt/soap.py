"""The node agent's one SOAP operation, ``handle_rtml``, built and read here (no WSDL, no suds).

Source: LT's node agent (GitHub ``LivTel/node_agent2``), a JAX-WS ``@WebService`` with
``@SOAPBinding(style = RPC)`` whose interface ``org.estar.node_agent2.NodeAgentWebServiceInterface``
declares ``String handle_rtml(String)`` and ``String ping()``, served at ``/node_agent2/node_agent``.
JAX-WS's defaults then fix the wire format (JAX-WS 2.0, §3.2 and §3.6): SOAP 1.1, target namespace
``http://node_agent2.estar.org/`` (the package name reversed), the operation element
``handle_rtml`` in that namespace holding the unqualified part ``arg0``, the answer
``handle_rtmlResponse`` holding ``return``, ``SOAPAction: ""``, and a SOAP fault with HTTP 500 for
an exception. ``checkUsernamePassword`` reads the credentials from the HTTP headers ``Username``
and ``Password`` and throws (hence a fault whose text names ``checkUsernamePassword``) when either
is missing or wrong; every other problem comes back as an RTML reject document.

Untrusted XML is parsed with the standard library's expat (2.4.1 or later), which fetches no
external entity or DTD and stops entity-expansion bombs.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import requests

from ...core.answers import body_line, expect, one_line
from ...core.errors import CredentialsRefused, RemoteError

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
NODE_AGENT_NS = "http://node_agent2.estar.org/"
OPERATION = "handle_rtml"
CONTENT_TYPE = "text/xml; charset=utf-8"
#: The part of the node agent's fault text that marks refused credentials.
CREDENTIALS_FAULT = "checkUsernamePassword"


class SoapFault(RemoteError):
    """The node agent answered with a SOAP fault: the call did not run, nothing was queued."""

    def __init__(self, message: str, *, faultcode: str, faultstring: str, http_status: int | None):
        self.faultcode = faultcode
        self.faultstring = faultstring
        super().__init__(message, http_status=http_status, permanent=True)


def envelope(rtml_document: str) -> bytes:
    """The SOAP 1.1 request calling ``handle_rtml(rtml_document)``, UTF-8 encoded; the document
    travels as escaped text in ``arg0``."""
    # Prefixed names with their declarations written as they are (as ElementTree keeps them),
    # which names the prefixes without changing ElementTree's process-wide prefix registry.
    root = ET.Element("soapenv:Envelope", {"xmlns:soapenv": SOAP_ENV})
    call = ET.SubElement(ET.SubElement(root, "soapenv:Body"), f"na:{OPERATION}", {"xmlns:na": NODE_AGENT_NS})
    ET.SubElement(call, "arg0").text = rtml_document
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def headers(username: str, password: str) -> dict[str, str]:
    """The HTTP headers of a call: SOAP 1.1 content type and action, and the node agent's
    ``Username``/``Password`` credential headers."""
    return {"Content-Type": CONTENT_TYPE, "SOAPAction": '""', "Username": username, "Password": password}


def _fault(root: ET.Element) -> ET.Element | None:
    return root.find(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault")


def _raise_fault(fault: ET.Element, response: requests.Response, service: str) -> None:
    code = (fault.findtext("faultcode") or "").strip()
    text = one_line(fault.findtext("faultstring") or "")
    if CREDENTIALS_FAULT in text:
        raise CredentialsRefused(f"{service} refused the credentials (SOAP fault: {text})", http_status=response.status_code)
    raise SoapFault(f"{service} answered with a SOAP fault ({code or 'no code'}): {text or 'no fault text'}",
                    faultcode=code, faultstring=text, http_status=response.status_code)


def _envelope_of(response: requests.Response) -> ET.Element | None:
    """The answer's SOAP envelope, or ``None`` when the body is not XML or not an envelope."""
    try:
        root = ET.fromstring(response.content)
    except ET.ParseError:
        return None
    return root if root.tag == f"{{{SOAP_ENV}}}Envelope" else None


def returned(response: requests.Response, *, service: str) -> str:
    """The RTML text ``handle_rtml`` returned.

    Raises ``CredentialsRefused`` for the node agent's credential fault, :class:`SoapFault` for any
    other SOAP fault (HTTP 500, or 200), what ``answers.expect`` raises for any other status than
    200 (redirects, 401/403, 404, 4xx, 5xx), and ``RemoteError`` for a 200 answer that is not a
    SOAP envelope holding ``handle_rtmlResponse/return`` (an empty body, HTML, malformed XML).
    """
    root = _envelope_of(response)
    fault = _fault(root) if root is not None else None
    if fault is not None:
        _raise_fault(fault, response, service)
    expect(response, 200, service=service)
    if root is None:
        raise RemoteError(f"{service} answered HTTP 200 with a body that is not a SOAP envelope: {body_line(response)}", http_status=200)
    answer = root.find(f"{{{SOAP_ENV}}}Body/{{{NODE_AGENT_NS}}}{OPERATION}Response/return")
    if answer is None:
        raise RemoteError(f"{service} answered with a SOAP envelope that holds no {OPERATION} result", http_status=200)
    return answer.text or ""
