"""``Transport.cookie_session``: a login's cookie is carried within one operation and never beyond
it, whatever the transport did before; cookie values are masked whole in the records."""

from __future__ import annotations

import responses

from facility_apis.core.transport import Transport

URL = "https://service.example.org"


def test_cookies_live_only_inside_the_block_and_are_masked_in_records():
    with responses.RequestsMock() as mock, Transport(backoff=0, retries=0) as transport:
        mock.add(responses.POST, f"{URL}/login", status=302, headers={"Set-Cookie": "session=before; Path=/"})
        mock.add(responses.POST, f"{URL}/login", status=302, headers={"Set-Cookie": "session=inside-7c1; Path=/"})
        mock.add(responses.GET, f"{URL}/form")
        mock.add(responses.GET, f"{URL}/after")
        transport.request("POST", f"{URL}/login")  # another operation's session: not kept
        with transport.recording() as records, transport.cookie_session():
            assert len(transport.session.cookies) == 0
            transport.request("POST", f"{URL}/login")
            transport.request("GET", f"{URL}/form")
        transport.request("GET", f"{URL}/after")
        sent = [call.request.headers.get("Cookie") for call in mock.calls]
    assert sent == [None, None, "session=inside-7c1", None]
    assert records[0].response_headers["Set-Cookie"] == "***" and records[1].request_headers["Cookie"] == "***"
    assert "inside-7c1" not in repr(records)


def test_the_jar_is_emptied_even_when_the_block_fails():
    with responses.RequestsMock() as mock, Transport(backoff=0, retries=0) as transport:
        mock.add(responses.POST, f"{URL}/login", headers={"Set-Cookie": "session=x; Path=/"})
        try:
            with transport.cookie_session():
                transport.request("POST", f"{URL}/login")
                raise RuntimeError("the operation failed")
        except RuntimeError:
            pass
        assert len(transport.session.cookies) == 0


def test_outside_a_block_no_cookie_is_kept_for_a_later_call():
    """A transport is reused for other allocations' calls: a cookie a service sets on a call made
    outside ``cookie_session`` (its own session, opened with that call's credentials) must not be
    sent with the next call, whoever makes it."""
    with responses.RequestsMock() as mock, Transport(backoff=0, retries=0) as transport:
        mock.add(responses.GET, f"{URL}/status/1", headers={"Set-Cookie": "sessionid=allocation-1; Path=/"})
        mock.add(responses.GET, f"{URL}/status/2")
        transport.request("GET", f"{URL}/status/1")
        assert len(transport.session.cookies) == 0
        transport.request("GET", f"{URL}/status/2")
        sent = [call.request.headers.get("Cookie") for call in mock.calls]
    assert sent == [None, None]
