"""Redaction: every spelling of a secret is masked in text, headers, nested data and log lines."""

import base64
import json
import logging
from urllib.parse import quote, quote_plus, urlencode

from facility_apis.core.redact import MASK, Redactor, get_logger, redact_everywhere

SECRET = "s3cr+t/&tok en<>\"'"


def test_every_spelling_is_masked():
    redactor = Redactor([SECRET])
    spellings = [
        SECRET,
        quote(SECRET, safe=""),
        quote_plus(SECRET),
        json.dumps({"k": SECRET}),
        f"<Password>{SECRET.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;').replace(chr(34), '&quot;').replace(chr(39), '&#x27;')}</Password>",
        base64.b64encode(SECRET.encode()).decode(),
        urlencode({"userpass": SECRET}),
    ]
    for text in spellings:
        cleaned = redactor.text(text)
        assert MASK in cleaned
        for form in (SECRET, quote(SECRET, safe=""), quote_plus(SECRET), base64.b64encode(SECRET.encode()).decode()):
            assert form not in cleaned


def test_secret_containing_another_is_masked_whole():
    redactor = Redactor(["abc", "abcdef"])
    assert redactor.text("x abcdef y") == f"x {MASK} y"


def test_credential_headers_are_masked_whole_and_others_scrubbed():
    redactor = Redactor(["tok123"])
    headers = redactor.headers(
        {"Authorization": "Basic dXNlcjpwYXNz", "Cookie": "session=abc", "X-Echo": "tok123", "Accept": "a/b"}
    )
    assert headers == {"Authorization": MASK, "Cookie": MASK, "X-Echo": MASK, "Accept": "a/b"}


def test_nested_data_is_copied_and_masked():
    redactor = Redactor(["pw-9"])
    original = {"a": ["pw-9", {"b": b"pw-9 bytes"}], "n": 3}
    assert redactor.data(original) == {"a": [MASK, {"b": f"{MASK} bytes"}], "n": 3}
    assert original["a"][0] == "pw-9"


def test_empty_and_non_string_secrets_are_ignored():
    redactor = Redactor(["", None, 5])
    assert not redactor
    assert redactor.text("nothing to hide") == "nothing to hide"


def test_log_filter_masks_live_secrets_in_messages_args_and_tracebacks(caplog):
    redactor = Redactor(["log-secret-42"])
    for name in ("facility_apis.test_redact", "urllib3.connectionpool"):
        logger = get_logger(name) if name.startswith("facility_apis") else logging.getLogger(name)
        with caplog.at_level(logging.DEBUG, logger=name):
            logger.debug("GET /x?token=%s", "log-secret-42")
            try:
                raise ValueError("bad token log-secret-42")
            except ValueError:
                logger.exception("failed")
    text = caplog.text + "".join(r.getMessage() for r in caplog.records)
    assert "log-secret-42" not in text
    assert MASK in text
    assert redact_everywhere("log-secret-42") == MASK
    del redactor
