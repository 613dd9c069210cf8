"""The one egress rule (facility_apis.core.egress), as a table of URLs with their exact verdicts,
and the transport refusing before any connection: a socket guard proves nothing was tried."""

import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import responses

from facility_apis.core.egress import INTERNAL, EgressPolicy, EgressRefused
from facility_apis.core.transport import Transport
from facility_apis.testing.network import socket_guard

PUBLIC = EgressPolicy()
LOOPBACK_ALLOWED = EgressPolicy(("127.0.0.0/8", "::1/128"))
PRIVATE = "private or internal address"
CLEAR = "credentials may travel only over https"
SCHEME = "only http and https"

# url, carries a secret, verdict with no allowance, verdict when loopback is allowed (None: allowed)
TABLE = [
    ("https://fallingstar-data.com/forcedphot", True, None, None),
    ("http://fallingstar-data.com/forcedphot", False, None, None),
    ("http://fallingstar-data.com/forcedphot", True, CLEAR, CLEAR),
    ("http://127.0.0.1:8000/x", True, PRIVATE, None),
    ("http://127.0.0.1:8000/x", False, PRIVATE, None),
    ("http://localhost:8000/x", True, PRIVATE, None),
    ("HTTPS://FALLINGSTAR-DATA.COM/forcedphot", True, None, None),
    ("HTTP://127.0.0.1:8000/x", True, PRIVATE, None),
    ("https://10.1.2.3/api", True, PRIVATE, PRIVATE),
    ("https://192.168.0.5/api", True, PRIVATE, PRIVATE),
    ("https://172.16.0.1/api", True, PRIVATE, PRIVATE),
    ("https://169.254.169.254/latest", True, PRIVATE, PRIVATE),
    ("https://[fd00::1]/api", True, PRIVATE, PRIVATE),
    ("https://[::ffff:10.0.0.1]/api", True, PRIVATE, PRIVATE),
    ("https://[::ffff:127.0.0.1]/api", True, PRIVATE, None),
    ("https://0.0.0.0/api", True, PRIVATE, PRIVATE),
    ("https://100.64.0.1/api", False, PRIVATE, PRIVATE),
    ("https://224.0.0.1/api", False, PRIVATE, PRIVATE),
    ("file:///etc/passwd", False, SCHEME, SCHEME),
    ("gopher://example.org/", False, SCHEME, SCHEME),
    ("ftp://example.org/", False, SCHEME, SCHEME),
    ("https://user:pass@example.org/api", False, "must not carry a user name or password", "must not carry a user name or password"),
]


@pytest.mark.parametrize(("url", "secret", "public", "loopback"), TABLE)
def test_the_egress_table(url, secret, public, loopback):
    for policy, expected in ((PUBLIC, public), (LOOPBACK_ALLOWED, loopback)):
        reason = policy.refusal(url, secret=secret)
        if expected is None:
            assert reason is None, f"{url} should be allowed: {reason}"
        else:
            assert reason is not None and expected in reason, f"{url}: {reason!r}"


def test_an_allowed_origin_is_exact():
    policy = EgressPolicy(("http://127.0.0.1:8001",))
    assert policy.refusal("http://127.0.0.1:8001/forcedphot", secret=True) is None
    assert PRIVATE in policy.refusal("http://127.0.0.1:8002/forcedphot")
    assert PRIVATE in policy.refusal("http://127.0.0.2:8001/forcedphot")
    assert PRIVATE in policy.refusal("https://127.0.0.1:8001/forcedphot")


def test_internal_endpoints_keep_the_scheme_and_clear_text_rules():
    assert INTERNAL.refusal("https://10.0.0.5/skyportal", secret=True) is None
    assert CLEAR in INTERNAL.refusal("http://10.0.0.5/skyportal", secret=True)
    assert SCHEME in INTERNAL.refusal("file:///etc/passwd")


def test_a_bad_allowance_is_refused_with_its_text():
    with pytest.raises(ValueError, match="'nonsense' is neither an origin"):
        EgressPolicy(("nonsense",))


REFUSED_URLS = [url for url, secret, public, _ in TABLE if public is not None and not url.startswith(("file", "gopher", "ftp"))]


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_the_transport_refuses_before_any_connection(url):
    with socket_guard() as attempts, Transport(retries=0, secrets=["tok-123"]) as transport, transport.recording() as records, pytest.raises(EgressRefused):
        transport.request("POST", url, headers={"Authorization": "Token tok-123"}, data={"a": 1})
    assert attempts == []
    assert records[-1].status is None and records[-1].error.startswith("refused to call")
    assert "tok-123" not in repr(records[-1].as_dict())


@pytest.mark.parametrize("scheme", ["file", "gopher", "ftp"])
def test_other_schemes_never_leave(scheme):
    with socket_guard() as attempts, Transport(retries=0) as transport, pytest.raises(EgressRefused, match=SCHEME):
        transport.request("GET", f"{scheme}://example.org/x")
    assert attempts == []


def test_a_name_resolving_to_a_private_address_is_refused_at_connect_time():
    def resolve(host, port, *args):
        assert host == "internal.example.org"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port))]

    policy = EgressPolicy(resolve=resolve)
    assert policy.refusal("https://internal.example.org/api", secret=True) is None  # a name: judged when connecting
    refusal = r"internal\.example\.org: it resolves to a private or internal address"
    with socket_guard() as attempts, Transport(retries=0, egress=policy) as transport, pytest.raises(EgressRefused, match=refusal):
        transport.request("GET", "https://internal.example.org/api")
    assert attempts == []


def test_a_name_resolving_to_a_mix_is_refused_whole():
    def resolve(host, port, *args):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)), (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("fd00::7", port, 0, 0))]

    with pytest.raises(EgressRefused):
        EgressPolicy(resolve=resolve).vet("https", "mixed.example.org", 443)


def test_the_transport_connects_to_the_address_it_checked():
    """A name is resolved once, checked, and the connection goes to that very address."""
    class Ok(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    lookups = []

    def resolve(host, port, *args):
        lookups.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    policy = EgressPolicy((f"http://emulator.test:{port}",), resolve=resolve)
    try:
        with socket_guard(allow_loopback=True), Transport(retries=0, egress=policy) as transport:
            assert transport.request("GET", f"http://emulator.test:{port}/x").text == "ok"
    finally:
        server.shutdown()
    assert lookups == ["emulator.test"]


def test_redirects_are_not_followed():
    with responses.RequestsMock() as mock, Transport(retries=0) as transport:
        mock.get("https://facility.example.org/a", status=302, headers={"Location": "http://169.254.169.254/latest"})
        answer = transport.request("GET", "https://facility.example.org/a")
        assert answer.status_code == 302 and len(mock.calls) == 1


def test_each_call_masks_only_its_own_allocations_secrets():
    """A transport reused across allocations (a worker thread's) must not mask one allocation's
    secret in another's records: a one-letter secret would garble every record."""
    with responses.RequestsMock() as mock, Transport(retries=0) as transport:
        mock.get("https://facility.example.org/next", body="next in the queue")
        with transport.recording(["e"]):
            transport.request("GET", "https://facility.example.org/next")
        with transport.recording(["tok-other"]) as records:
            answer = transport.request("GET", "https://facility.example.org/next")
    assert answer.text == "next in the queue"
    assert records[0].response_body == "next in the queue"
    assert transport.redactor.text("next") == "next"


def test_requests_own_redirect_following_is_off_for_every_method():
    for method in ("POST", "DELETE"):
        with responses.RequestsMock() as mock, Transport(retries=0) as transport:
            mock.add(method, "https://facility.example.org/a", status=307, headers={"Location": "https://10.0.0.1/"})
            assert transport.request(method, "https://facility.example.org/a").status_code == 307
            assert len(mock.calls) == 1


def test_the_deployments_own_origins_are_refused_whatever_is_allowed():
    from facility_apis.core.egress import LOOP_RULE

    policy = EgressPolicy(("127.0.0.0/8", "http://127.0.0.1:8642"), own=("http://127.0.0.1:8642", "https://gateway.example.org"))
    cases = [
        ("http://127.0.0.1:8642/api/followup_request", "127.0.0.1:8642"),
        ("https://127.0.0.1:8642/x", "127.0.0.1:8642"),
        ("https://GATEWAY.example.org/api/followup_request", "gateway.example.org:443"),
    ]
    for url, where in cases:
        assert policy.refusal(url) == f"{where} {LOOP_RULE}"
        with pytest.raises(EgressRefused, match="forwarding loop"):
            policy.check(url)
    assert policy.refusal("http://127.0.0.1:8643/x") is None and policy.refusal("https://gateway.example.org:8443/x") is None
