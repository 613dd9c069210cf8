"""MMA observation plans end to end: each delivery path against its emulator on 127.0.0.1 (the plan
queue API, an SSH/SFTP server with its own host key, Slack's webhooks, an SMTP server), removal,
the refusals and the faults, and a plan of 5,000 fields through each."""

import dataclasses
import json
import logging
import socket

import pytest

from facility_apis.core.egress import EgressPolicy
from facility_apis.core.interface import Allocation, FollowupRequest, Target
from facility_apis.core.operations import perform
from facility_apis.core.outcome import State
from facility_apis.core.plan import PLAN_KEY, ObservationPlan
from facility_apis.core.transport import Transport
from facility_apis.facilities.mma import MMAFacility
from facility_apis.testing.network import loopback_egress, socket_guard
from facility_apis.testing.obsplan_queue import ObsPlanQueueEmulator
from facility_apis.testing.sftp import SFTPEmulator
from facility_apis.testing.slack import SlackWebhookEmulator, block_problems
from facility_apis.testing.smtp import SMTPEmulator

TOKEN = "qu3ue-t0ken-e2e-5c1d"
PASSWORD = "ssh pass-e2e 9f2b"
SLACK_TOKEN = "FAKEmmaSlackToken"


def plan(fields=3, queue="ToO_S250818k_night1"):
    targets = [
        {
            "request_id": n + 1,
            "field_id": 100 + n,
            "ra": (n * 7.31) % 360,
            "dec": -80 + (n * 3.7) % 160,
            "filter": ("ztfg", "ztfr", "ztfi")[n % 3],
            "exposure_time": 300,
            "program_pi": "observer",
        }
        for n in range(fields)
    ]
    return {
        "queue_name": queue,
        "validity_window_mjd": [65000.25, 65000.75],
        "queue_type": "list",
        "user": "observer",
        "event": "2025-08-18T01:02:03",
        "targets": targets,
    }


def request_for(altdata, document=None, remote_id=None):
    allocation = Allocation(6, altdata, pi="A. PI", proposal_id="P-2", instrument_name="ZTF", group="Group 2")
    return FollowupRequest(21, Target("2025-08-18T01:02:03", 171.0, 2.6), allocation, {PLAN_KEY: document or plan()}, requester="observer", remote_id=remote_id)


def run(facility, operation, request, egress):
    with Transport(backoff=0, retries=1, egress=egress) as transport:
        return perform(facility, operation, request, transport)


def assert_secret_free(secret, outcome, caplog):
    assert secret not in json.dumps([t.as_dict() for t in outcome.transactions])
    assert secret not in outcome.status and secret not in caplog.text


# -- the queue API -----------------------------------------------------------------------------


@pytest.fixture
def queue():
    with ObsPlanQueueEmulator(tokens={TOKEN}) as emulator:
        yield emulator


def api_setup(queue):
    egress = loopback_egress(queue)
    return MMAFacility(egress=egress), {"allocation_type": "API", "endpoint": queue.url, "api_token": TOKEN}, egress


def test_the_queue_receives_the_plan_and_gives_it_back_on_removal(queue, caplog):
    caplog.set_level(logging.DEBUG)
    facility, altdata, egress = api_setup(queue)
    request = request_for(altdata)
    outcome = run(facility, "submit", request, egress)
    assert outcome.state is State.SUBMITTED and outcome.remote_id == "api:ToO_S250818k_night1"
    held = queue.queues["ToO_S250818k_night1"]
    assert held == ObservationPlan.from_payload(request.payload).document()
    assert queue.requests[0].headers["Authorization"] == f"token {TOKEN}"
    assert_secret_free(TOKEN, outcome, caplog)
    removed = run(facility, "delete", dataclasses.replace(request, remote_id=outcome.remote_id), egress)
    assert removed.state is State.DELETED and queue.queues == {}
    assert_secret_free(TOKEN, removed, caplog)


def test_a_lost_answer_is_never_sent_blindly_and_sending_again_finds_it_held(queue):
    facility, altdata, egress = api_setup(queue)
    queue.lose_answer_next()
    lost = run(facility, "submit", request_for(altdata), egress)
    assert lost.state is State.FAILED and lost.poll_after is None and "may have reached" in lost.detail
    assert [r.method for r in queue.requests] == ["PUT"], "the PUT was not repeated"
    again = run(facility, "submit", request_for(altdata), egress)
    assert again.state is State.SUBMITTED and "by an earlier attempt" in again.detail
    assert [r.method for r in queue.requests] == ["PUT", "PUT", "GET"] and len(queue.queues) == 1


def test_a_wrong_token_fails_without_a_secret_in_the_status(queue, caplog):
    facility, altdata, egress = api_setup(queue)
    outcome = run(facility, "submit", request_for({**altdata, "api_token": "wrong-t0ken-1234"}), egress)
    assert outcome.state is State.FAILED and "refused" in outcome.detail
    assert_secret_free("wrong-t0ken-1234", outcome, caplog)


def test_a_plan_of_5000_fields_is_queued_within_the_receivers_1_mib(queue):
    facility, altdata, egress = api_setup(queue)
    outcome = run(facility, "submit", request_for(altdata, plan(5000)), egress)
    assert outcome.state is State.SUBMITTED
    body = queue.requests[0].body
    assert len(body) < queue.max_body
    assert len(queue.queues["ToO_S250818k_night1"]["targets"]) == 5000


def test_a_plan_past_the_receivers_limit_is_refused_with_its_reason(queue):
    facility, altdata, egress = api_setup(queue)
    queue.max_body = 100_000
    outcome = run(facility, "submit", request_for(altdata, plan(5000)), egress)
    assert outcome.state is State.REJECTED and outcome.detail == "Request Entity Too Large: the maximum is 100000 bytes"


def test_the_queue_being_down_is_a_failure_that_left_nothing(queue):
    facility, altdata, egress = api_setup(queue)
    queue.down("503")
    outcome = run(facility, "submit", request_for(altdata), egress)
    assert outcome.state is State.FAILED and "503" in outcome.detail and queue.queues == {}


# -- scp: SFTP with the host key pinned --------------------------------------------------------


@pytest.fixture
def sftp_server():
    with SFTPEmulator(users={"obsplans": PASSWORD}) as server:
        server.makedirs("/data/incoming")
        yield server


def scp_setup(server, **changes):
    egress = loopback_egress(server)
    altdata = {
        "allocation_type": "scp",
        "host": server.host,
        "port": server.port,
        "username": "obsplans",
        "password": PASSWORD,
        "directory": "/data/incoming",
        "host_key": server.host_key,
    } | changes
    return MMAFacility(egress=egress), altdata, egress


def test_scp_writes_the_plan_where_the_receiver_reads_it_and_removes_it(sftp_server, caplog):
    caplog.set_level(logging.DEBUG)
    facility, altdata, egress = scp_setup(sftp_server)
    request = request_for(altdata)
    outcome = run(facility, "submit", request, egress)
    assert outcome.state is State.SUBMITTED and outcome.remote_id == "scp:/data/incoming/ToO_S250818k_night1.json"
    assert sftp_server.listing("/data/incoming") == ["ToO_S250818k_night1.json"], "no temporary file is left"
    assert json.loads(sftp_server.read("/data/incoming/ToO_S250818k_night1.json")) == ObservationPlan.from_payload(request.payload).document()
    record = outcome.transactions[0]
    assert record.method == "SFTP PUT" and record.url == f"sftp://127.0.0.1:{sftp_server.port}/data/incoming/ToO_S250818k_night1.json"
    assert record.status == 0 and record.request_headers["Host-Key"] == sftp_server.fingerprint
    assert_secret_free(PASSWORD, outcome, caplog)
    removed = run(facility, "delete", dataclasses.replace(request, remote_id=outcome.remote_id), egress)
    assert removed.state is State.DELETED and sftp_server.listing("/data/incoming") == []
    gone = run(facility, "delete", dataclasses.replace(request, remote_id=outcome.remote_id), egress)
    assert gone.state is State.DELETED and "already gone" in gone.detail


def test_an_unknown_host_key_is_refused_before_any_login(sftp_server, caplog):
    with SFTPEmulator() as impostor:
        facility, altdata, egress = scp_setup(sftp_server, host_key=impostor.host_key)
        outcome = run(facility, "submit", request_for(altdata), egress)
    assert outcome.state is State.FAILED and outcome.poll_after is None
    assert "host key is not the one the allocation pins" in outcome.detail
    assert sftp_server.logins == [], "the password never left"
    assert sftp_server.listing("/data/incoming") == []
    assert_secret_free(PASSWORD, outcome, caplog)


def test_a_changed_host_key_is_refused_too(sftp_server):
    facility, altdata, egress = scp_setup(sftp_server)
    assert run(facility, "submit", request_for(altdata), egress).state is State.SUBMITTED
    with SFTPEmulator(users={"obsplans": PASSWORD}) as replaced:  # the allocation's server, answering with a new key
        replaced.makedirs("/data/incoming")
        moved = {**altdata, "port": replaced.port}
        outcome = run(MMAFacility(egress=loopback_egress(replaced)), "submit", request_for(moved), loopback_egress(replaced))
        assert outcome.state is State.FAILED and "not the one the allocation pins" in outcome.detail
        assert replaced.logins == [] and replaced.listing("/data/incoming") == []


def test_a_fingerprint_and_a_private_key_work_as_well(sftp_server):
    import asyncssh

    key = asyncssh.generate_private_key("ssh-ed25519")
    sftp_server.keys["obsplans"] = [key.export_public_key().decode()]
    facility, altdata, egress = scp_setup(sftp_server, host_key=sftp_server.fingerprint, private_key=key.export_private_key().decode())
    del altdata["password"]
    outcome = run(facility, "submit", request_for(altdata), egress)
    assert outcome.state is State.SUBMITTED and sftp_server.logins[-1] == ("obsplans", "publickey", True)


def test_a_refused_login_is_a_failure_naming_the_user(sftp_server):
    facility, altdata, egress = scp_setup(sftp_server, password="not the password")
    outcome = run(facility, "submit", request_for(altdata), egress)
    assert outcome.state is State.FAILED and "refused the login of obsplans" in outcome.detail


def test_a_transfer_cut_half_way_never_shows_a_truncated_plan(sftp_server):
    facility, altdata, egress = scp_setup(sftp_server)
    sftp_server.cut_next_write(after=200)
    outcome = run(facility, "submit", request_for(altdata, plan(500)), egress)
    assert outcome.state is State.FAILED and "the plan's file was not created" in outcome.detail
    names = sftp_server.listing("/data/incoming")
    assert "ToO_S250818k_night1.json" not in names, "the receiver never sees the plan's name"
    assert all(name.startswith(".ToO_S250818k_night1.json.") and name.endswith(".part") for name in names)
    again = run(facility, "submit", request_for(altdata, plan(500)), egress)
    assert again.state is State.SUBMITTED
    assert len(json.loads(sftp_server.read("/data/incoming/ToO_S250818k_night1.json"))["targets"]) == 500


def test_without_posix_rename_an_older_plan_of_that_name_is_replaced_whole(sftp_server):
    sftp_server.posix_rename = False
    facility, altdata, egress = scp_setup(sftp_server)
    assert run(facility, "submit", request_for(altdata, plan(3)), egress).state is State.SUBMITTED
    assert run(facility, "submit", request_for(altdata, plan(7)), egress).state is State.SUBMITTED
    assert len(json.loads(sftp_server.read("/data/incoming/ToO_S250818k_night1.json"))["targets"]) == 7
    assert sftp_server.listing("/data/incoming") == ["ToO_S250818k_night1.json"]


def test_a_missing_directory_is_the_servers_refusal_named(sftp_server):
    facility, altdata, egress = scp_setup(sftp_server, directory="/data/absent")
    outcome = run(facility, "submit", request_for(altdata), egress)
    assert outcome.state is State.FAILED and "refused to write /data/absent/" in outcome.detail


def test_csv_is_written_where_the_receiver_wants_a_table(sftp_server):
    facility, altdata, egress = scp_setup(sftp_server, file_format="csv")
    outcome = run(facility, "submit", request_for(altdata, plan(5000)), egress)
    assert outcome.remote_id == "scp:/data/incoming/ToO_S250818k_night1.csv"
    lines = sftp_server.read("/data/incoming/ToO_S250818k_night1.csv").decode().splitlines()
    assert lines[0].startswith("request_id,field_id,ra,dec,filter") and len(lines) == 5001


def test_a_host_the_egress_rule_refuses_is_never_connected_to(sftp_server):
    _, altdata, _ = scp_setup(sftp_server)
    strict = MMAFacility()  # the deployment allows no loopback address
    with socket_guard() as attempts:
        outcome = run(strict, "submit", request_for(altdata), egress=None)
    assert outcome.state is State.FAILED and "$.host: 127.0.0.1 is a private or internal address" in outcome.detail
    # A name is judged on the addresses it resolves to, when connecting.
    resolving = EgressPolicy(resolve=lambda host, port, *rest: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))])
    named = {**altdata, "host": "queue.example.org"}
    with socket_guard() as attempts_by_name:
        by_name = run(MMAFacility(egress=resolving), "submit", request_for(named), egress=resolving)
    assert by_name.state is State.FAILED and "resolves to a private or internal address" in by_name.detail
    assert attempts == [] and attempts_by_name == []
    assert sftp_server.logins == []


def test_an_unreachable_server_is_a_failure_that_left_nothing(sftp_server):
    facility, altdata, egress = scp_setup(sftp_server)
    sftp_server.down()
    outcome = run(facility, "submit", request_for(altdata), egress)
    assert outcome.state is State.FAILED and "could not connect" in outcome.detail
    assert sftp_server.listing("/data/incoming") == []


# -- Slack and e-mail through the notifier -----------------------------------------------------


def test_slack_gets_a_readable_summary_within_block_kit_linking_the_plan(caplog):
    caplog.set_level(logging.DEBUG)
    with SlackWebhookEmulator() as slack:
        slack.add_hook("TEXAMPLE", "BEXAMPLE", SLACK_TOKEN)
        egress = loopback_egress(slack)
        facility = MMAFacility({"notify": {"slack_base_url": slack.url, "skyportal_url": "https://fritz.example.org", "app_title": "Fritz"}}, egress=egress)
        altdata = {"allocation_type": "slack", "slack_workspace": "TEXAMPLE", "slack_channel": "BEXAMPLE", "slack_token": SLACK_TOKEN}
        request = request_for(altdata, plan(5000))
        outcome = run(facility, "submit", request, egress)
        assert outcome.state is State.SUBMITTED and outcome.remote_id.startswith("slack:notice-")
        post = slack.posts[0]
        assert block_problems(post.blocks) == []
        text = json.dumps(post.blocks)
        assert "New observation plan: ToO_S250818k_night1" in text and "5,000" in text and "ztfg (1667), ztfr (1667), ztfi (1666)" in text
        assert "https://fritz.example.org/gcn_events/2025-08-18T01%3A02%3A03" in text
        assert "'targets'" not in text and len(json.dumps(post.body)) < 10_000
        assert_secret_free(SLACK_TOKEN, outcome, caplog)
        cancelled = run(facility, "delete", dataclasses.replace(request, remote_id=outcome.remote_id), egress)
        assert cancelled.state is State.DELETED and "Cancelled observation plan" in json.dumps(slack.posts[1].blocks)


def test_email_carries_the_summary_with_the_plan_attached():
    with SMTPEmulator() as smtp:
        facility = MMAFacility({"notify": {"smtp": smtp.config(), "app_title": "Fritz"}})
        altdata = {"allocation_type": "email", "email": "night-desk@example.org"}
        request = request_for(altdata, plan(5000))
        outcome = run(facility, "submit", request, egress=None)
        assert outcome.state is State.SUBMITTED and outcome.remote_id.startswith("email:<")
        message = smtp.messages[0].message
        assert message["Subject"] == "Fritz - New observation plan: ToO_S250818k_night1"
        body = message.get_body(("plain",)).get_content()
        assert "Planned observations: 5,000" in body and "Total exposure: 1,500,000 s (416.7 h)" in body and "'targets'" not in body
        files = {part.get_filename(): part for part in message.iter_attachments()}
        assert json.loads(files["ToO_S250818k_night1.json"].get_content()) == ObservationPlan.from_payload(request.payload).document()
        assert outcome.transactions[0].method == "SMTP"
        removed = run(facility, "delete", dataclasses.replace(request, remote_id=outcome.remote_id), egress=None)
        assert removed.state is State.DELETED
        reply = smtp.messages[1].message
        assert reply["Subject"] == "Fritz - Cancelled observation plan: ToO_S250818k_night1"
        assert reply["In-Reply-To"] == outcome.remote_id.split(":", 1)[1]
        assert not list(reply.iter_attachments()), "a cancellation carries no plan"
