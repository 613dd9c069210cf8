"""HEASARC ARK's NICER ToO form on loopback: the login and the two-step (verify, submit) form.

What it emulates (ARK's help page for the NICER ToO form and the form as SkyPortal's NICERAPI
drives it; the facts are listed in ``facility_apis.facilities.nicer.ark``):

- ``POST /ark/LOGIN``, an Apache AuthCookie login: ``credential_0`` (user), ``credential_1``
  (password) and ``destination``, read from the body or the query string as AuthCookie reads them.
  A good login answers 302 to ``destination`` with ``Set-Cookie: ARK_SESSION=...``; a bad one
  serves the login form again (200, no cookie).
- ``POST /ark/nicertoo/form.html`` without a session: the login form (403).
- With a session and ``RPS_VERIFY.x``: the form checked (required fields, the enumerations, numbers
  where numbers belong, MJDs, the fields each Y option needs, a time range that ends after it
  starts): a page with ``Attempted verification detected`` and the errors in a ``<span>``, or
  with ``Form verified successfully`` and the Submit button (hidden ``RPS_VERIFIED``).
- With ``RPS_SUBMIT.x`` and ``RPS_VERIFIED``: the form checked again and stored, and a confirmation
  page (``Your NICER ToO request was submitted successfully``; the real wording is not published,
  see ``ark.py``). Without ``RPS_VERIFIED``: the form page again, unverified.

Knobs: ``fail_verification_next(errors)``, ``page_next(html, status=200, step="verify"|"submit")``
(the next such step answered with that page after doing its work, as a proxy or a changed ARK
page would), ``expire_sessions()``, and the :class:`LoopbackServer` faults. ``submissions`` holds
the stored forms, ``logins`` each login's user and where the credentials came from (``body`` or
``query``).
"""

from __future__ import annotations

import html
import math
import secrets
import threading
from typing import Any
from urllib.parse import parse_qs

from .server import LoopbackHandler, LoopbackServer

LOGIN_PAGE = (
    "<!DOCTYPE html><html><head><title>ARK Login</title></head><body><h1>HEASARC ARK</h1>{message}"
    '<form method="post" action="/ark/LOGIN"><input type="hidden" name="destination" value="{destination}">'
    '<input name="credential_0"><input type="password" name="credential_1"><input type="submit" value="Log in"></form></body></html>'
)
FORM_PAGE = (
    "<!DOCTYPE html><html><head><title>NICER Target of Opportunity Request</title></head><body>"
    '<h1>NICER ToO/DDT Request for Observation</h1><p class="status">{status}</p><form method="post" action="/ark/nicertoo/form.html">'
    "{hidden}{buttons}</form></body></html>"
)
CONFIRMATION_PAGE = (
    "<!DOCTYPE html><html><head><title>NICER Target of Opportunity Request</title></head><body>"
    "<h1>Your NICER ToO request was submitted successfully.</h1><p>It has been sent to the NICER team. "
    'See your <a href="/ark/user/">Recent Activity</a> page.</p></body></html>'
)
URGENCIES = {"Next Day", "Next Business Day", "Within a Week", "One Month or Longer"}
CATEGORIES = {
    "Magnetars and Rotation-Powered Pulsars", "X-Ray Binaries", "White Dwarfs and Cataclysmic Variables", "Non-Compact Stellar Objects",
    "Supernova Remnants/Other Extended Galactic Sources", "Normal Galaxies", "Active Galaxies and Quasars",
    "Galaxy Clusters and Extragalactic Extended Objects", "Gravitational-Wave Sources", "Solar System Objects", "Other",
}  # fmt: skip
REQUIRED_TEXT = ("Justification for Target of Opportunity", "Target Name", "Justification for Exposure")
OPTIONS = {
    "Monitoring Program": ("Monitoring Criteria",),
    "Phase Dependent Observation": ("Phase Dependent Epoch", "Phase Dependent Period", "Minimum Phase", "Maximum Phase"),
    "Specific Time Range Observation": ("Specific Time Range Start", "Specific Time Range End"),
    "Coordinated Observation": ("Coordinating Observatory", "Coordinated Observation Description"),
    "Uninterrupted Observation": ("Uninterrupted Observation Justification",),
}
NUMBERS = {
    "Right Ascension": (0, 360), "Declination": (-90, 90), "Total Observation Time": (0, math.inf), "Expected 0.3-10keV Count Rate": (0, math.inf),
    "Phase Dependent Epoch": (15020, 88069), "Phase Dependent Period": (0, math.inf), "Minimum Phase": (0, 1), "Maximum Phase": (0, 1),
    "Specific Time Range Start": (15020, 88069), "Specific Time Range End": (15020, 88069),
}  # fmt: skip


def _number(value: str | None) -> float | None:
    try:
        number = float(value) if value not in (None, "") else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None


def form_errors(form: dict[str, str]) -> list[str]:
    """What ARK's verification finds wrong with ``form``, one message per field."""
    errors = []
    if form.get("Urgency") not in URGENCIES:
        errors.append("Urgency: choose one of the listed values")
    if form.get("Target Category") not in CATEGORIES:
        errors.append("Target Category: choose one of the listed values")
    errors += [f"{name}: this field is required" for name in REQUIRED_TEXT if not form.get(name, "").strip()]
    if form.get("NICER Proposal Number") and not form["NICER Proposal Number"].isdigit():
        errors.append("NICER Proposal Number: digits only")
    needed = ["Right Ascension", "Declination", "Total Observation Time", "Expected 0.3-10keV Count Rate"]
    for option, fields in OPTIONS.items():
        if form.get(option) not in ("Y", "N"):
            errors.append(f"{option}: answer Y or N")
        elif form[option] == "Y":
            needed += [name for name in fields if name in NUMBERS]
            errors += [f"{name}: required when {option} is Y" for name in fields if name not in NUMBERS and not form.get(name, "").strip()]
    for name in needed:
        value, (low, high) = _number(form.get(name)), NUMBERS[name]
        if value is None:
            errors.append(f"{name}: a number is required")
        elif not low <= value <= high or (name in ("Total Observation Time", "Phase Dependent Period") and value <= 0):
            errors.append(f"{name}: out of range")
    start, end = _number(form.get("Specific Time Range Start")), _number(form.get("Specific Time Range End"))
    if form.get("Specific Time Range Observation") == "Y" and start is not None and end is not None and end <= start:
        errors.append("Specific Time Range End: must be after the start")
    return errors


class ARKNicerEmulator(LoopbackServer):
    """HEASARC ARK's login and NICER ToO form (see the module docstring). ``accounts``: user -> password."""

    def __init__(self, accounts: dict[str, str] | None = None):
        super().__init__()
        self.accounts = dict(accounts or {"nicer_observer": "example password 0123"})
        self.submissions: list[dict[str, str]] = []
        self.logins: list[tuple[str, str]] = []
        self._sessions: dict[str, str] = {}
        self._lock = threading.Lock()
        self._planned: list[tuple[str, Any]] = []

    @property
    def base_url(self) -> str:
        return self.url

    def routes(self) -> list[Any]:
        return [("/ark/LOGIN", _LoginHandler), ("/ark/nicertoo/form.html", _FormHandler)]

    def fail_verification_next(self, errors: list[str]) -> None:
        with self._lock:
            self._planned.append(("verify-errors", list(errors)))

    def page_next(self, page: str, status: int = 200, step: str = "verify") -> None:
        if step not in ("verify", "submit"):
            raise ValueError("step must be 'verify' or 'submit'")
        with self._lock:
            self._planned.append((f"{step}-page", (status, page)))

    def expire_sessions(self) -> None:
        with self._lock:
            self._sessions.clear()

    def planned(self, kind: str) -> Any:
        with self._lock:
            for index, (name, value) in enumerate(self._planned):
                if name == kind:
                    del self._planned[index]
                    return value
        return None

    def login(self, user: str, source: str) -> str:
        token = secrets.token_hex(16)
        with self._lock:
            self._sessions[token] = user
            self.logins.append((user, source))
        return token

    def user(self, token: str | None) -> str | None:
        with self._lock:
            return self._sessions.get(token or "")


class _ARKHandler(LoopbackHandler):
    @property
    def ark(self) -> ARKNicerEmulator:
        return self.server  # type: ignore[return-value]

    def form(self) -> dict[str, str]:
        return {key: values[-1] for key, values in parse_qs(self.request.body.decode(), keep_blank_values=True).items()}

    def login_page(self, status: int, message: str = "") -> None:
        self.set_status(status)
        self.set_header("Content-Type", "text/html")
        self.finish(LOGIN_PAGE.format(message=message, destination="/ark/nicertoo/form.html"))

    def page(self, text: str, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "text/html")
        self.finish(text)


class _LoginHandler(_ARKHandler):
    def post(self) -> None:
        body = self.form()
        query = {key: values[-1] for key, values in parse_qs(self.request.query, keep_blank_values=True).items()}
        source = "query" if "credential_1" in query else "body"
        fields = query if source == "query" else body
        user, password = fields.get("credential_0"), fields.get("credential_1")
        if user is None or self.ark.accounts.get(user) != password:
            return self.login_page(200, '<p class="error">Login failed: unknown user name or wrong password.</p>')
        self.set_cookie("ARK_SESSION", self.ark.login(user, source), path="/", httponly=True)
        self.redirect(fields.get("destination") or "/ark/user/", status=302)


class _FormHandler(_ARKHandler):
    def post(self) -> None:
        if self.ark.user(self.get_cookie("ARK_SESSION")) is None:
            return self.login_page(403, "<p>Please log in.</p>")
        form = self.form()
        if "RPS_SUBMIT.x" in form:
            return self.submit(form)
        if "RPS_VERIFY.x" not in form:
            return self.page(FORM_PAGE.format(status="", hidden="", buttons='<input type="image" name="RPS_VERIFY" src="verify.gif">'))
        errors = self.ark.planned("verify-errors") or form_errors(form)
        planned = self.ark.planned("verify-page")
        if planned is not None:
            return self.page(planned[1], planned[0])
        if errors:
            listed = "".join(f"<li>{html.escape(error)}</li>" for error in errors)
            status = f'<span class="error">Attempted verification detected the following problems:<ul>{listed}</ul></span>'
            return self.page(FORM_PAGE.format(status=status, hidden="", buttons='<input type="image" name="RPS_VERIFY" src="verify.gif">'))
        hidden = '<input type="hidden" name="RPS_VERIFIED" value="">'
        buttons = '<input type="image" name="RPS_SUBMIT" src="submit.gif">'
        self.page(FORM_PAGE.format(status='<span class="ok">Form verified successfully.</span>', hidden=hidden, buttons=buttons))

    def submit(self, form: dict[str, str]) -> None:
        if "RPS_VERIFIED" not in form or form_errors(form):
            buttons = '<input type="image" name="RPS_VERIFY" src="verify.gif">'
            return self.page(FORM_PAGE.format(status="Please verify the form before submitting it.", hidden="", buttons=buttons))
        fields = {key: value for key, value in form.items() if not key.startswith("RPS_") and key != "COVER"}
        with self.ark._lock:
            self.ark.submissions.append(fields)
        planned = self.ark.planned("submit-page")
        if planned is not None:
            return self.page(planned[1], planned[0])
        self.page(CONFIRMATION_PAGE)
