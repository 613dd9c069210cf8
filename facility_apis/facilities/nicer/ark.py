"""HEASARC ARK's NICER ToO form: the fields it takes and the pages it answers with.

Facts (SkyPortal's NICERAPI, which drives the live form, and ARK's help page
https://heasarc.gsfc.nasa.gov/ark/nicertoo/help.html):

- ``POST /ark/LOGIN`` logs in (an Apache AuthCookie login: fields ``destination``,
  ``credential_0`` the user name, ``credential_1`` the password); a good login answers a redirect
  to ``destination`` setting the session cookie, a bad one serves the login form again.
- ``POST /ark/nicertoo/form.html`` with the form's fields (named as the form labels them) and the
  image button ``RPS_VERIFY`` (``RPS_VERIFY.x``/``.y``) verifies: the page says ``Attempted
  verification detected`` followed by the errors (up to the next ``</span>``), or ``Form verified
  successfully`` and offers the Submit button.
- The same post with ``RPS_VERIFIED``, ``RPS_SUBMIT.x``/``.y`` and ``RPS_OPENED_3`` submits; ARK
  then sends the request to the NICER team at once (its help page: discarding it in ARK later has
  no effect), and lists it on the account's Recent Activity page (``/ark/user/``).

The wording of the page that confirms a submission is not published (SkyPortal never reads it):
this package takes a page containing one of ``CONFIRMATION_MARKERS`` (configurable) as the
confirmation, and any other page as "may have been submitted", never as success or failure.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any

import requests

from ...core.answers import html_line, one_line
from ...core.errors import CredentialsRefused, Rejected, RemoteError
from ...core.interface import FollowupRequest
from ...core.timeutil import to_mjd

SERVICE = "HEASARC ARK"
LOGIN_PATH = "/ark/LOGIN"
FORM_PATH = "/ark/nicertoo/form.html"
ACTIVITY_PATH = "/ark/user/"
VERIFICATION_FAILED = "Attempted verification detected"
VERIFIED = "Form verified successfully"
CONFIRMATION_MARKERS = ("submitted successfully", "successfully submitted")
#: The empty fields the form always carries (its section markers).
FIXED = {"RPS_DHTML": "", "RPS_BEGIN": "", "COVER": "", "RPS_CLOSED_3": "", "RPS_END": ""}
VERIFY_BUTTON = {"RPS_VERIFY.x": "49", "RPS_VERIFY.y": "15"}
SUBMIT_BUTTON = {"RPS_VERIFIED": "", "RPS_SUBMIT.x": "45", "RPS_SUBMIT.y": "4", "RPS_OPENED_3": ""}
#: Payload key -> the form's field, for the fields copied as they are.
FIELDS = {
    "Urgency": "Urgency",
    "ProposalNumber": "NICER Proposal Number",
    "JustificationToO": "Justification for Target of Opportunity",
    "TargetCategory": "Target Category",
    "ObservationTime": "Total Observation Time",
    "JustificationExposure": "Justification for Exposure",
    "MonitoringProgram": "Monitoring Program",
    "MonitoringCriteria": "Monitoring Criteria",
    "PhaseDependentObservation": "Phase Dependent Observation",
    "PhaseDependentEpoch": "Phase Dependent Epoch",
    "PhaseDependentPeriod": "Phase Dependent Period",
    "PhaseMinimum": "Minimum Phase",
    "PhaseMaximum": "Maximum Phase",
    "PhaseDependentRemarks": "Phase Dependent Remarks",
    "SpecificTimeRangeObservation": "Specific Time Range Observation",
    "TimeRangeStart": "Specific Time Range Start",
    "TimeRangeEnd": "Specific Time Range End",
    "TimeRangeRemarks": "Specific Time Range Remarks",
    "CoordinatedObservation": "Coordinated Observation",
    "CoordinatingObservatory": "Coordinating Observatory",
    "CoordinatedObservationDescription": "Coordinated Observation Description",
    "UninterruptedObservation": "Uninterrupted Observation",
    "UninterruptedObservationJustification": "Uninterrupted Observation Justification",
    "ExpectedCountRate": "Expected 0.3-10keV Count Rate",
}
#: Payload dates sent as MJD.
MJD_FIELDS = ("PhaseDependentEpoch", "TimeRangeStart", "TimeRangeEnd")
_TAG = re.compile(r"<[^>]*>")


def _value(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def form_fields(request: FollowupRequest) -> dict[str, str]:
    """The form's fields for ``request``: the payload under the form's labels (dates as MJD, to
    1e-6 day), the source's name and position (decimal degrees), the fixed empty fields. Fields of
    options left at N are not sent (SkyPortal sent them empty)."""
    payload, target = request.payload, request.target
    fields = dict(FIXED)
    for key, label in FIELDS.items():
        if key in payload:
            value = round(to_mjd(payload[key]), 6) if key in MJD_FIELDS else payload[key]
            fields[label] = _value(value)
    fields["Target Name"] = target.id
    fields["Right Ascension"] = _value(target.ra)
    fields["Declination"] = _value(target.dec)
    return fields


def is_login_page(text: str) -> bool:
    """ARK's login form (served again after a refused login or to a lost session)."""
    return "credential_0" in text and "credential_1" in text


def check_login(response: requests.Response) -> None:
    """A good login is a redirect that sets the session cookie. ``CredentialsRefused`` when ARK
    serves its login form again; ``RemoteError`` for anything else."""
    if 300 <= response.status_code < 400 and response.headers.get("Set-Cookie"):
        return
    if response.status_code in (200, 401, 403) and is_login_page(response.text or ""):
        raise CredentialsRefused(f"{SERVICE} refused the login (check the allocation's username and password)", http_status=response.status_code)
    seen = one_line(html_line(response.text or "") or "(empty)")
    raise RemoteError(f"{SERVICE} answered the login with HTTP {response.status_code} and no session: {seen}", http_status=response.status_code)


def _page(response: requests.Response, what: str) -> str:
    """The text of a form page; ``CredentialsRefused`` for the login form (the session was not
    accepted), ``RemoteError`` for an answer that is not a 200 page."""
    text = response.text or ""
    if is_login_page(text):
        raise CredentialsRefused(f"{SERVICE} asked to log in again at the {what} (the session was not accepted)", http_status=response.status_code)
    if response.status_code != 200:
        seen = one_line(html_line(text) or "(empty)")
        raise RemoteError(f"{SERVICE} answered the {what} with HTTP {response.status_code}: {seen}", http_status=response.status_code)
    return text


def verification_errors(text: str) -> str:
    """The errors after ``Attempted verification detected``, up to the next ``</span>``, as one line."""
    tail = text.split(VERIFICATION_FAILED, 1)[1].split("</span>", 1)[0]
    words = one_line(html.unescape(_TAG.sub(" ", tail))).lstrip(":;,. ")
    return words or "ARK found errors in the form"


def read_verification(response: requests.Response) -> None:
    """Nothing when ARK verified the form; ``Rejected`` with its errors when verification failed;
    ``RemoteError`` for a page that says neither (nothing was submitted)."""
    text = _page(response, "verification")
    if VERIFICATION_FAILED in text:
        raise Rejected(f"NICER's form did not verify: {verification_errors(text)}")
    if VERIFIED not in text:
        title = html_line(text) or "an empty page"
        raise RemoteError(f"{SERVICE} answered the verification with a page this package does not recognise ({one_line(title)}); nothing was submitted")


def is_confirmation(response: requests.Response, markers: tuple[str, ...]) -> bool:
    """Whether the answer to the submission is ARK's confirmation page."""
    text = response.text or ""
    return response.status_code == 200 and not is_login_page(text) and any(marker.lower() in text.lower() for marker in markers)


def markers(config: Mapping[str, Any]) -> tuple[str, ...]:
    configured = config.get("confirmation_markers")
    return tuple(configured) if configured else CONFIRMATION_MARKERS
