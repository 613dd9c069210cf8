"""Multipart bodies (``HTTPCall.files``, as requests' ``files=``): sent as multipart/form-data,
recorded and rendered with the secrets masked, never resent once they may have arrived."""

import email.parser
import email.policy
import json

import pytest
import responses

from facility_apis.core.errors import FacilityUnavailable
from facility_apis.core.redact import MASK
from facility_apis.core.transport import HTTPCall, Transport
from facility_apis.testing.network import loopback_egress
from facility_apis.testing.server import LoopbackServer

SECRET = "multipart-secret-5e1f"
DOCUMENT = json.dumps({"requestid": 7, "username": "observer", "note": f"key {SECRET}"})


def parts(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """name -> (filename, content) of a multipart/form-data body, read with the standard library."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    assert message.is_multipart()
    found = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        found[name] = (part.get_filename(), part.get_payload(decode=True))
    return found


def test_a_files_call_reaches_the_server_as_multipart_form_data():
    with LoopbackServer() as server, Transport(backoff=0, egress=loopback_egress(server)) as transport:
        transport.send(HTTPCall("POST", f"{server.url}/add", files={"jsonfile": ("jsonfile", DOCUMENT)}))
        (received,) = server.requests
    assert received.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert parts(received.headers["Content-Type"], received.body) == {"jsonfile": ("jsonfile", DOCUMENT.encode())}


@responses.activate
def test_multipart_records_and_renderings_mask_the_secrets():
    responses.post("https://intake.example.org/add", body="accepted")
    call = HTTPCall("POST", "https://intake.example.org/add", files={"jsonfile": ("jsonfile", DOCUMENT)})
    with Transport(backoff=0, secrets=[SECRET]) as transport, transport.recording() as records:
        transport.send(call)
        rendered = transport.render(call)
    (record,) = records
    assert SECRET not in repr(record.as_dict()) and SECRET not in rendered
    assert f"key {MASK}" in record.request_body and f"key {MASK}" in rendered
    assert 'name="jsonfile"; filename="jsonfile"' in record.request_body
    content_type = responses.calls[0].request.headers["Content-Type"]
    assert parts(content_type, responses.calls[0].request.body)["jsonfile"][1] == DOCUMENT.encode()


@responses.activate
def test_a_multipart_post_is_not_resent_after_an_answer():
    responses.post("https://intake.example.org/add", status=503)
    with Transport(backoff=0) as transport, pytest.raises(FacilityUnavailable) as caught:
        transport.send(HTTPCall("POST", "https://intake.example.org/add", files={"jsonfile": ("jsonfile", DOCUMENT)}))
    assert caught.value.sent is True and len(responses.calls) == 1
