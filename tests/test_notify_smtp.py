"""E-mail delivery (notify.smtp, notify.mail) against a real SMTP server on 127.0.0.1 (aiosmtpd):
TLS verified, login only inside TLS, each recipient's refusal reported, nothing added to the
headers by any field, the password in no record, error or log line."""

import logging

import pytest

from facility_apis.core.errors import ConfigurationError, FacilityUnavailable, Rejected, RemoteError
from facility_apis.core.interface import Allocation, FollowupRequest, Target
from facility_apis.core.transport import Transport
from facility_apis.notify import Event, SMTPSettings, build_email, build_notice, send_mail
from facility_apis.notify.mail import new_message_id
from facility_apis.testing.smtp import SMTPEmulator
from facility_apis.testing.tls import make_tls_files

PASSWORD = "smtp-Pa55word-9f1c"
FORM = {"properties": {"exposure_time": {"title": "Exposure time (s)"}}}
EXPECTED_HEADERS = {"subject", "from", "to", "date", "message-id", "auto-submitted", "mime-version", "content-type"}


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return make_tls_files(tmp_path_factory.mktemp("tls"))


def settings(server, **extra):
    return SMTPSettings.from_config(server.config(**extra))


def message(*, obj_id="ZTF21abc", requester="observer", comment="fine", recipients=("a@example.org",), thread=None):
    request = FollowupRequest(1, Target(obj_id, 10.0, 20.0), Allocation(2, {}), {"exposure_time": 30}, requester=requester, comments=(comment,))
    notice = build_notice(request, Event.NEW, facility="GENERIC", form=FORM, include_comments=True)
    return build_email(notice, sender="skyportal@example.org", recipients=list(recipients), message_id=new_message_id("example.org"), thread=thread)


def send(server_settings, mail, recipients=("a@example.org",)):
    with Transport() as transport, transport.recording() as records:
        try:
            receipt = send_mail(server_settings, mail, list(recipients), transport)
        except Exception as exc:  # noqa: BLE001 - returned for the test to inspect, with the records
            return exc, records
    return receipt, records


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_a_message_goes_over_verified_tls_with_a_login(tls, security, caplog):
    caplog.set_level(logging.DEBUG)
    with SMTPEmulator(security=security, tls=tls.server_context(), users={"skyportal": PASSWORD}) as server:
        receipt, records = send(settings(server, username="skyportal", password=PASSWORD, ca_file=str(tls.ca_file)), message())
        (captured,) = server.messages
    assert receipt.accepted == ("a@example.org",) and dict(receipt.refused) == {}
    assert captured.tls and captured.authenticated_as == "skyportal"
    assert captured.mail_from == "skyportal@example.org" and captured.rcpt_tos == ("a@example.org",)
    mail = captured.message
    assert mail["Subject"] == "SkyPortal - New follow-up request: ZTF21abc" and mail["Auto-Submitted"] == "auto-generated"
    assert mail.get_content_type() == "multipart/alternative"
    assert "Exposure time (s): 30" in mail.get_body(("plain",)).get_content()
    assert "<th style=\"text-align:left;padding-right:1em\">Exposure time (s)</th><td>30</td>" in mail.get_body(("html",)).get_content()
    (record,) = records
    assert record.method == "SMTP" and record.url == f"{'smtps' if security == 'ssl' else 'smtp'}://127.0.0.1:{server_port(record)}"
    assert record.status == 250 and record.response_body == "to a@example.org" and record.request_headers["Subject"] == mail["Subject"]
    everything = repr(records) + caplog.text
    assert PASSWORD not in everything


def server_port(record):
    return record.url.rsplit(":", 1)[1]


def test_an_untrusted_certificate_stops_before_anything_is_sent(tls, tmp_path):
    other = make_tls_files(tmp_path / "other")
    with SMTPEmulator(security="starttls", tls=tls.server_context(), users={"skyportal": PASSWORD}) as server:
        error, records = send(settings(server, username="skyportal", password=PASSWORD, ca_file=str(other.ca_file)), message())
        assert server.messages == []
    assert isinstance(error, RemoteError) and error.permanent and "TLS with the SMTP server" in str(error)
    assert records[0].error and PASSWORD not in repr(records)


def test_a_refused_login_is_permanent_and_does_not_show_the_password(tls):
    with SMTPEmulator(security="starttls", tls=tls.server_context(), users={"skyportal": "another"}) as server:
        error, records = send(settings(server, username="skyportal", password=PASSWORD, ca_file=str(tls.ca_file)), message())
    assert isinstance(error, RemoteError) and error.permanent and "refused the login (535" in str(error)
    assert PASSWORD not in str(error) + repr(records)


def test_each_refused_recipient_is_reported_and_all_refused_is_rejected():
    with SMTPEmulator(refuse={"gone@example.org", "left@example.org"}) as server:
        both = ("a@example.org", "gone@example.org")
        receipt, _ = send(settings(server), message(recipients=both), both)
        assert receipt.accepted == ("a@example.org",)
        assert receipt.summary() == "to a@example.org; refused: gone@example.org (550 5.1.1 <gone@example.org>: Recipient address rejected: no such user)"
        assert server.messages[0].rcpt_tos == ("a@example.org",)
        nobody = ("gone@example.org", "left@example.org")
        error, records = send(settings(server), message(recipients=nobody), nobody)
    assert isinstance(error, Rejected) and str(error).startswith("no recipient accepted the e-mail: gone@example.org (550")
    assert records[0].status == 550


def test_a_server_that_cannot_be_reached_means_nothing_was_sent():
    with SMTPEmulator() as server:
        server.down()
        error, _ = send(settings(server), message())
    assert isinstance(error, FacilityUnavailable) and error.sent is False


def test_a_connection_lost_during_data_may_have_delivered():
    with SMTPEmulator() as server:
        server.drop_data()
        error, records = send(settings(server), message())
    assert isinstance(error, FacilityUnavailable) and error.sent is True
    assert "may have been delivered and was not sent again" in str(error) and records[0].error


def test_starttls_required_but_not_offered_is_refused():
    with SMTPEmulator(security="none") as server:
        error, _ = send(SMTPSettings.from_config(server.config(security="starttls", port=server.port)), message())
        assert server.messages == []
    assert isinstance(error, RemoteError) and "does not offer STARTTLS" in str(error)


def test_line_breaks_in_the_object_id_comment_and_requester_add_no_header():
    mail = message(obj_id="ZTF21x\r\nBcc: victim@example.org", requester="Eve\r\nX-Injected: yes", comment="hi\r\nBcc: other@example.org\n\nbody")
    with SMTPEmulator() as server:
        send(settings(server), mail)
        (captured,) = server.messages
    assert {name.lower() for name in captured.message} == EXPECTED_HEADERS
    assert captured.rcpt_tos == ("a@example.org",)
    assert captured.message["Subject"] == "SkyPortal - New follow-up request: ZTF21x Bcc: victim@example.org"
    text = captured.message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert "Requested by: Eve X-Injected: yes" in text and "  - hi\n    Bcc: other@example.org\n\n    body" in text


def test_updates_answer_the_first_message():
    first = new_message_id("example.org")
    mail = message(thread=first)
    assert mail["In-Reply-To"] == first and mail["References"] == first
    assert message(thread="<not really>\r\nBcc: x@y")["In-Reply-To"] is None


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"host": "smtp://mail.example.org", "from_address": "a@example.org"}, "host must be a host name"),
        ({"host": "mail.example.org", "from_address": "a@example.org", "security": "tls"}, "security must be one of"),
        ({"host": "mail.example.org", "from_address": "nobody"}, "from_address must be an e-mail address"),
        ({"host": "mail.example.org", "from_address": "a@example.org", "port": 70000}, "port must be an integer"),
        ({"host": "mail.example.org", "from_address": "a@example.org", "username": "u"}, "both username and password"),
        (
            {"host": "mail.example.org", "from_address": "a@example.org", "security": "none", "username": "u", "password": PASSWORD},
            "a login may travel only inside TLS",
        ),
        ({"host": "mail.example.org", "from_address": "a@example.org", "ca_file": "/nonexistent/ca.pem"}, "ca_file must name a readable file"),
        ({"host": "mail.example.org", "from_address": "a@example.org", "passwd": "x"}, "unknown key(s) passwd"),
        ({"host": "mail.example.org", "from_address": "a@example.org", "password": PASSWORD, "password_file": "/x"}, "not both"),
    ],
)
def test_unusable_settings_are_refused_naming_the_key(config, words):
    with pytest.raises(ConfigurationError) as caught:
        SMTPSettings.from_config(config)
    assert words in str(caught.value) and PASSWORD not in str(caught.value)


def test_a_login_in_clear_is_allowed_only_to_loopback_and_the_password_can_come_from_a_file(tmp_path):
    secret = tmp_path / "smtp.password"
    secret.write_text(PASSWORD + "\n")
    config = {"host": "127.0.0.1", "security": "none", "username": "u", "password_file": str(secret), "from_address": "a@example.org"}
    loopback = SMTPSettings.from_config(config)
    assert loopback.password == PASSWORD and loopback.port == 25 and PASSWORD not in repr(loopback)
    assert SMTPSettings.from_config({"host": "mail.example.org", "from_address": "a@example.org"}).port == 587
