"""Every status ZTF triggering, KAIT, WINTER and SPRING give in their answer branches is one their
docs page lists (its ``<...>`` parts standing for any text)."""

from __future__ import annotations

import dataclasses
import re
import time
from pathlib import Path

import pytest
import responses

from facility_apis.core.interface import Allocation, FollowupRequest, Target
from facility_apis.core.operations import perform
from facility_apis.core.outcome import State
from facility_apis.core.transport import Transport
from facility_apis.facilities.kait import KAITFacility
from facility_apis.facilities.winter import SPRINGFacility, WINTERFacility
from facility_apis.facilities.ztf_trigger import ZTFTriggerFacility
from facility_apis.gateway.policy import Schedule, next_step
from facility_apis.testing.kait import KAITEmulator
from facility_apis.testing.kowalski import KowalskiEmulator
from facility_apis.testing.network import loopback_egress
from facility_apis.testing.winter import WinterToOEmulator

DOCS = Path(__file__).resolve().parents[1] / "docs" / "facilities"
TARGET = Target("ZTF26docs", 210.5, 12.25)


def documented(page: str, anchor: str) -> list[re.Pattern[str]]:
    """The status templates of the page's statuses table, as patterns: each ``<...>`` (and each
    ``...``) stands for any text, ``(s)`` for an optional plural."""
    text = (DOCS / page).read_text(encoding="utf-8")
    section = text[text.index(f"({anchor})=") :]
    section = section[: section.index("\n## ", len(anchor) + 8)]
    spans = re.findall(r"^\| `([^`]+)` \|", section, flags=re.MULTILINE)
    assert spans, f"no statuses in {page}"
    return [re.compile(".+".join(re.escape(part).replace(r"\(s\)", "s?") for part in re.split(r"<[^>]+>|\.\.\.", span))) for span in spans]


def matches(status: str, patterns: list[re.Pattern[str]]) -> bool:
    return any(pattern.fullmatch(status) for pattern in patterns)


def run(facility, operation, request, *servers):
    with Transport(backoff=0, retries=1, egress=loopback_egress(*servers) if servers else None) as transport:
        return perform(facility, operation, request, transport).status


def as_the_gateway_shows_a_delete(facility, request, submitted_status, *servers) -> str:
    """The status the gateway gives a submitted request whose delete did not happen (its policy)."""
    with Transport(backoff=0, retries=1, egress=loopback_egress(*servers)) as transport:
        outcome = perform(facility, "delete", request, transport)
    step = next_step(outcome, operation="delete", previous_state=State.SUBMITTED, previous_status=submitted_status, failures=0, can_poll=False,
                     give_up_at=time.time() + 3600, now=time.time(), schedule=Schedule(), can_delete=True)  # fmt: skip
    return step.status


def ztf_statuses() -> list[str]:
    statuses = []
    with KowalskiEmulator({"token-ok": "admin", "token-of-a-user": "bob"}) as k:
        facility = ZTFTriggerFacility({"base_url": k.url}, egress=loopback_egress(k))
        base = FollowupRequest(1, TARGET, Allocation(1, {"access_token": "token-ok"}, pi="PI"), {"queue_name": "d1", "field_ids": [528]}, requester="obs")
        other = dataclasses.replace(base, payload={"queue_name": "d1", "field_ids": [1575]})
        held = dataclasses.replace(base, remote_id="ToO_d1")
        statuses += [run(facility, "remote_validate", base, k), run(facility, "find", base, k), run(facility, "submit", base, k)]
        statuses += [run(facility, "submit", base, k), run(facility, "find", base, k), run(facility, "submit", other, k)]
        k.reject_next("too late")
        statuses.append(run(facility, "submit", dataclasses.replace(base, payload={"queue_name": "d2", "field_ids": [528]}), k))
        for token in ("token-refused", "token-of-a-user"):
            statuses.append(run(facility, "submit", dataclasses.replace(base, allocation=Allocation(1, {"access_token": token}, pi="PI")), k))
        k.faults.add("status", method="DELETE", status=400, body={"status": "error", "message": "ZTF queue delete attempt rejected: busy"})
        statuses += [run(facility, "delete", held, k), run(facility, "delete", held, k), run(facility, "delete", held, k), run(facility, "delete", base, k)]
        statuses.append(run(facility, "submit", dataclasses.replace(base, payload={"field_ids": [5000]}), k))
        statuses.append(run(facility, "submit", dataclasses.replace(base, allocation=Allocation(1, {})), k))
        k.down("503")
        statuses.append(run(facility, "submit", base, k))
    return statuses


def kait_statuses() -> list[str]:
    statuses = []
    login = {"username": "u", "password": "pw-kait-1"}
    with KAITEmulator({"u": "pw-kait-1"}) as kait:
        facility = KAITFacility({"base_url": kait.url}, egress=loopback_egress(kait))
        base = FollowupRequest(2, TARGET, Allocation(2, login), {})
        statuses.append(run(facility, "submit", base, kait))
        kait.error_text_next()
        statuses.append(run(facility, "submit", base, kait))
        statuses.append(run(facility, "submit", dataclasses.replace(base, allocation=Allocation(2, {"username": "u", "password": "bad-password"})), kait))
        statuses.append(run(facility, "submit", dataclasses.replace(base, allocation=Allocation(2, {"username": "u"})), kait))
        statuses.append(run(facility, "submit", dataclasses.replace(base, payload={"observation_choices": []}), kait))
        statuses.append(run(facility, "delete", base, kait))
        statuses.append(as_the_gateway_shows_a_delete(facility, dataclasses.replace(base, remote_id="x/B/long"), statuses[0], kait))
    with responses.RequestsMock() as mock:
        url = "https://herculesii.astro.berkeley.edu/cgi-bin/internal/process_kait_ztf_request.py"
        for status, body in ((200, '{"success": "false", "message": "no"}'), (200, "OK"), (400, "bad"), (502, "Bad Gateway")):
            mock.add("POST", url, status=status, body=body)
            statuses.append(run(KAITFacility(), "submit", base))
    return statuses


def winter_statuses(cls) -> list[str]:
    statuses = []
    altdata = {"program_name": "P1", "program_api_key": "key-winter-1", "username": "u", "password": "pw-winter-1"}
    with WinterToOEmulator({"u": "pw-winter-1"}, {"P1": "key-winter-1"}) as w:
        facility = cls({"base_url": w.url}, egress=loopback_egress(w))
        base = FollowupRequest(3, TARGET, Allocation(3, altdata), {"filter": "J"})
        only_validate = dataclasses.replace(base, payload={"filter": "J", "validate_only": True})
        statuses += [run(facility, "submit", only_validate, w), run(facility, "remote_validate", base, w)]
        submitted = perform(facility, "submit", base, Transport(backoff=0, egress=loopback_egress(w)))
        statuses.append(submitted.status)
        held = dataclasses.replace(base, remote_id=submitted.remote_id)
        statuses += [run(facility, "delete", held, w), run(facility, "delete", held, w), run(facility, "delete", base, w)]
        w.only_validate_next()
        statuses.append(run(facility, "submit", base, w))
        w.reject_next()
        statuses.append(run(facility, "submit", base, w))
        statuses.append(run(facility, "submit", dataclasses.replace(base, allocation=Allocation(3, {**altdata, "program_api_key": "x"})), w))
        statuses.append(run(facility, "submit", dataclasses.replace(base, allocation=Allocation(3, {"program_name": "P1"})), w))
        statuses.append(run(facility, "submit", dataclasses.replace(base, payload={"filter": "K"}), w))
    statuses.append(run(cls(), "submit", base))  # the published plain-http address
    with responses.RequestsMock() as mock:
        mock.add("POST", f"https://w.example.org/too/{cls.camera}", json={"msg": "ok"})
        mock.add("POST", f"https://w.example.org/too/{cls.camera}", status=500, body="oops")
        statuses += [run(cls({"base_url": "https://w.example.org"}), "submit", base) for _ in range(2)]
    return [status.replace("SPRING", "WINTER") for status in statuses]


@pytest.mark.parametrize(
    ("page", "anchor", "collect"),
    [
        ("ztf_trigger.md", "ztf_trigger-statuses", ztf_statuses),
        ("kait.md", "kait-statuses", kait_statuses),
        ("winter.md", "winter-statuses", lambda: winter_statuses(WINTERFacility)),
        ("winter.md", "winter-statuses", lambda: winter_statuses(SPRINGFacility)),
    ],
    ids=["ztf_trigger", "kait", "winter", "spring"],
)
def test_every_status_is_documented(page, anchor, collect):
    patterns = documented(page, anchor)
    statuses = collect()
    missing = [status for status in statuses if not matches(status, patterns)]
    assert not missing, f"not in docs/facilities/{page}: {missing}"
    assert len(set(statuses)) >= 10
