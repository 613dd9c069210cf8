"""The ATLAS emulator against plain ``requests``: auth, validation, life cycle, results, delete,
throttling, the queued-task cap, faults, callbacks and the service's documented client flow."""

import io
import json
import math
import re
import time

import pytest
import requests

from facility_apis.testing import ATLASEmulator, LoopbackServer
from facility_apis.testing.atlas import mjd_of

HEADERS = {"Authorization": "Token test-token", "Accept": "application/json"}
TARGET = {"ra": 44.0, "dec": 22.0, "mjd_min": 59248.0, "mjd_max": 59300.0}
HEADER_NEW = "###MJD m dm uJy duJy F err chi/N RA Dec x y maj min phi apfit mag5sig PA_DEG Sky Obs"
HEADER_OLD = "###MJD m dm uJy duJy F err chi/N RA Dec x y maj min phi apfit mag5sig Sky Obs"


def wait_for(condition, timeout=5.0, interval=0.02):
    """Poll ``condition()`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def submit(emulator, data=None, headers=HEADERS, **kw):
    return requests.post(emulator.base_url + "/queue/", data=TARGET if data is None else data, headers=headers, **kw)


def finished_task(url):
    return wait_for(lambda: (task := requests.get(url, headers=HEADERS).json())["finishtimestamp"] and task)


def test_documented_example_client_flow():
    """The API guide's script: token, POST /queue/ (retrying on 429), poll ``url``, GET ``result_url``."""
    with ATLASEmulator(users={"alice": "secret"}, tokens={}, queue_time=0.1, run_time=0.1) as emulator:
        base = emulator.base_url
        emulator.throttle_next(1, wait=2)
        token = requests.post(f"{base}/api-token-auth/", data={"username": "alice", "password": "secret"}).json()["token"]
        headers = {"Authorization": f"Token {token}", "Accept": "application/json"}
        task_url, throttled = None, 0
        while not task_url:
            with requests.Session() as session:
                resp = session.post(f"{base}/queue/", headers=headers, data={"ra": 44, "dec": 22, "mjd_min": 59248.0, "send_email": False})
                if resp.status_code == 201:
                    task_url = resp.json()["url"]
                elif resp.status_code == 429:
                    throttled += 1
                    assert re.findall(r"available in (\d+) seconds", resp.json()["detail"]) == ["2"]
                else:
                    pytest.fail(f"unexpected {resp.status_code}: {resp.text}")
        assert throttled == 1
        result_url = None
        while not result_url:
            with requests.Session() as session:
                resp = session.get(task_url, headers=headers)
                assert resp.status_code == 200
                if resp.json()["finishtimestamp"] is not None:
                    result_url = resp.json()["result_url"]
                else:
                    time.sleep(0.05)
        with requests.Session() as session:
            textdata = session.get(result_url, headers=headers).text
            assert session.delete(task_url, headers=headers).status_code == 204
        table = io.StringIO(textdata.replace("###", ""))
        names = table.readline().split()
        rows = [dict(zip(names, line.split(), strict=False)) for line in table]
        assert len(rows) == 20 and all(len(row) == len(names) for row in rows)
        assert requests.get(task_url, headers=headers).status_code == 404


# -- authentication --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("authorization", "detail"),
    [
        (None, "Authentication credentials were not provided."),
        ("Bearer test-token", "Authentication credentials were not provided."),
        ("Token wrong", "Invalid token."),
        ("Token", "Invalid token header. No credentials provided."),
        ("Token a b", "Invalid token header. Token string should not contain spaces."),
    ],
)
def test_queue_post_needs_a_valid_token(atlas_emulator, authorization, detail):
    headers = {"Authorization": authorization} if authorization else {}
    response = submit(atlas_emulator, headers=headers)
    assert response.status_code == 401
    assert response.json() == {"detail": detail}
    assert response.headers["WWW-Authenticate"].startswith("Token")


def test_task_detail_is_public_but_list_and_delete_are_not(atlas_emulator):
    url = submit(atlas_emulator).json()["url"]
    assert requests.get(url).status_code == 200
    assert requests.get(url, headers={"Authorization": "Token wrong"}).status_code == 401
    assert requests.get(atlas_emulator.base_url + "/queue/").status_code == 401
    assert requests.delete(url).status_code == 401


def test_token_auth_endpoint_and_basic_auth():
    with ATLASEmulator(users={"bob": "pw"}, tokens={"bob-token": "bob"}) as emulator:
        endpoint = emulator.base_url + "/api-token-auth/"
        assert requests.post(endpoint, data={"username": "bob", "password": "pw"}).json() == {"token": "bob-token"}
        assert requests.post(endpoint, json={"username": "bob", "password": "pw"}).json() == {"token": "bob-token"}
        wrong = requests.post(endpoint, data={"username": "bob", "password": "nope"})
        assert (wrong.status_code, wrong.json()) == (400, {"non_field_errors": ["Unable to log in with provided credentials."]})
        missing = requests.post(endpoint, data={"username": "bob"})
        assert (missing.status_code, missing.json()) == (400, {"password": ["This field is required."]})
        assert submit(emulator, headers={}, auth=("bob", "pw")).status_code == 201
        assert submit(emulator, headers={}, auth=("bob", "bad")).json() == {"detail": "Invalid username/password."}


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "errors"),
    [
        ({"ra": 1, "dec": 2, "mpc_name": "Ceres"}, {"non_field_errors": ["Specify either ra and dec or mpc_name, not both."]}),
        ({"mjd_min": 59000}, {"non_field_errors": ["Specify either ra and dec or mpc_name."]}),
        ({"ra": 1}, {"dec": ["ra and dec must be given together."]}),
        ({"ra": 1, "dec": 2, "mjd_min": 59000, "mjd_max": 58000}, {"mjd_max": ["mjd_max must be greater than mjd_min."]}),
        ({"ra": 1, "dec": 2, "mjd_min": 59000, "mjd_max": 59000}, {"mjd_max": ["mjd_max must be greater than mjd_min."]}),
        ({"ra": 1, "dec": 2, "mjd_min": "", "mjd_max": -5}, {"mjd_max": ["mjd_max must be greater than zero."]}),
        ({"ra": "nan", "dec": 2}, {"ra": ["A valid number is required."]}),
        ({"ra": "east", "dec": 2}, {"ra": ["A valid number is required."]}),
        ({"ra": 1, "dec": 91}, {"dec": ["Ensure this value is less than or equal to 90."]}),
        ({"ra": -1, "dec": 0}, {"ra": ["Ensure this value is greater than or equal to 0."]}),
        ({"mpc_name": "x';drop"}, {"mpc_name": ["Quotes and semicolons are not allowed."]}),
        ({"ra": 1, "dec": 2, "comment": "c" * 301}, {"comment": ["Ensure this field has no more than 300 characters."]}),
        ({"ra": 1, "dec": 2, "use_reduced": "maybe"}, {"use_reduced": ["Must be a valid boolean."]}),
        ({"ra": 1, "dec": 2, "callback_url": "http://example.org/hook"}, {"callback_url": ["The callback URL must use https."]}),
        ({"ra": 1, "dec": 2, "callback_url": "not a url"}, {"callback_url": ["Enter a valid URL."]}),
    ],
)
@pytest.mark.parametrize("encoding", ["data", "json"])
def test_invalid_queue_requests_get_drf_errors(atlas_emulator, data, errors, encoding):
    response = requests.post(atlas_emulator.base_url + "/queue/", headers=HEADERS, **{encoding: data})
    assert (response.status_code, response.json()) == (400, errors)


def test_defaults_and_echoed_fields(atlas_emulator):
    task = submit(atlas_emulator, {"ra": "10.5", "dec": "-20"}).json()
    assert task["mjd_min"] == pytest.approx(mjd_of(time.time()) - 30, abs=1e-3)
    assert (task["mjd_max"], task["use_reduced"], task["send_email"], task["mpc_name"]) == (None, False, True, None)
    assert (task["ra"], task["dec"], task["request_type"], task["username"]) == (10.5, -20.0, "FP", "tester")
    unbounded = requests.post(
        atlas_emulator.base_url + "/queue/",
        headers=HEADERS,
        json={"mpc_name": "Ceres", "mjd_min": None, "mjd_max": 0, "use_reduced": True, "comment": "hi", "propermotion_ra": 1.5},
    ).json()
    assert (unbounded["mjd_min"], unbounded["mjd_max"], unbounded["ra"]) == (None, None, None)
    assert (unbounded["use_reduced"], unbounded["comment"], unbounded["propermotion_ra"]) == (True, "hi", 1.5)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", task["timestamp"])


# -- life cycle and results ------------------------------------------------------------------


def test_task_is_queued_then_running_then_finished():
    with ATLASEmulator(queue_time=0.4, run_time=0.4) as emulator:
        first = submit(emulator).json()
        second = submit(emulator).json()
        assert (first["queuepos"], second["queuepos"]) == (0, 1)
        assert first["starttimestamp"] is None and first["finished"] is False and first["result_url"] is None
        assert second["userqueuedtasks_on_submit"] == 1
        running = wait_for(lambda: (task := requests.get(first["url"]).json())["starttimestamp"] and task)
        assert running["finishtimestamp"] is None and running["queuepos"] is None and running["waittime"] == 0.4
        done = finished_task(first["url"])
        assert done["finished"] is True and done["runtime"] == 0.4 and done["error_msg"] is None
        assert done["result_url"] == f"{emulator.base_url}/static/results/job{first['id']:05d}.txt"
        assert done["starttimestamp"] < done["finishtimestamp"]


def test_list_holds_only_the_callers_tasks():
    with ATLASEmulator(tokens={"a": "alice", "b": "bob"}) as emulator:
        mine = submit(emulator, headers={"Authorization": "Token a"}).json()
        submit(emulator, headers={"Authorization": "Token b"})
        listing = requests.get(emulator.base_url + "/queue/", headers={"Authorization": "Token a"}).json()
        assert listing["next"] is None and listing["previous"] is None
        assert [task["id"] for task in listing["results"]] == [mine["id"]]


def rows_of(text):
    lines = text.splitlines()
    return lines[0], [line.split() for line in lines[1:]]


@pytest.mark.parametrize(("pa_deg", "header"), [(True, HEADER_NEW), (False, HEADER_OLD)])
def test_result_file_format(pa_deg, header):
    with ATLASEmulator(pa_deg=pa_deg, rows=24) as emulator:
        task = finished_task(submit(emulator).json()["url"])
        text = requests.get(task["result_url"]).text
    first_line, rows = rows_of(text)
    assert first_line == header
    names = header[3:].split()
    assert len(rows) == 24 and {len(row) for row in rows} == {len(names)}
    table = [dict(zip(names, row, strict=True)) for row in rows]
    assert {row["F"] for row in table} == {"c", "o"}
    mjds = [float(row["MJD"]) for row in table]
    assert mjds == sorted(mjds) and all(TARGET["mjd_min"] <= mjd <= TARGET["mjd_max"] for mjd in mjds)
    assert all(19.0 <= float(row["mag5sig"]) <= 20.0 for row in table)
    assert all((row["RA"], row["Dec"]) == ("44.00000", "22.00000") for row in table)
    for row in table:
        flux, mag = float(row["uJy"]), float(row["m"])
        assert mag == pytest.approx(math.copysign(23.9 - 2.5 * math.log10(abs(flux)), flux), abs=1e-3)
    assert any(float(row["uJy"]) < 0 and float(row["m"]) < 0 for row in table)
    assert any(0 < float(row["uJy"]) / float(row["duJy"]) < 3 for row in table)
    assert sum(float(row["uJy"]) / float(row["duJy"]) >= 3 for row in table) >= len(table) // 2


def test_result_file_is_deterministic():
    texts = []
    for _ in range(2):
        with ATLASEmulator() as emulator:
            texts.append(requests.get(finished_task(submit(emulator).json()["url"])["result_url"]).text)
    assert texts[0] == texts[1]


def test_finished_with_error_has_no_result_url():
    with ATLASEmulator() as emulator:
        emulator.fail_next(1, error_msg="Could not parse the result file")
        failed = finished_task(submit(emulator).json()["url"])
        assert failed["error_msg"] == "Could not parse the result file" and failed["result_url"] is None
        assert requests.get(f"{emulator.base_url}/static/results/job{failed['id']:05d}.txt").status_code == 404
        assert finished_task(submit(emulator).json()["url"])["result_url"]


def test_result_without_rows_finishes_with_no_data_returned():
    with ATLASEmulator(rows=0) as emulator:
        task = finished_task(submit(emulator).json()["url"])
        assert (task["error_msg"], task["result_url"]) == ("No data returned", None)


def test_results_for_supplies_the_exact_text():
    seen = []

    def results_for(task):
        seen.append(task)
        return f"{HEADER_OLD}\n59250.0 18.0 0.05 230 12 o 0 1.1 44 22 1 1 2 2 0 -0.4 19.5 18 01a59250o0001o\n"

    with ATLASEmulator(results_for=results_for) as emulator:
        task = finished_task(submit(emulator).json()["url"])
        assert requests.get(task["result_url"]).text == results_for(None)
    assert seen[0]["id"] == task["id"] and seen[0]["ra"] == 44.0 and seen[0]["username"] == "tester"


# -- delete ----------------------------------------------------------------------------------


def test_delete_of_a_queued_task_cancels_it():
    with ATLASEmulator(queue_time=30) as emulator:
        url = submit(emulator).json()["url"]
        assert requests.delete(url, headers=HEADERS).status_code == 204
        assert requests.get(url).json() == {"detail": "Not found."}
        assert requests.get(emulator.base_url + "/queue/", headers=HEADERS).json()["results"] == []
        assert requests.delete(url, headers=HEADERS).status_code == 404


def test_delete_of_a_finished_task_archives_it_and_deletes_its_results(atlas_emulator):
    task = finished_task(submit(atlas_emulator).json()["url"])
    assert requests.get(task["result_url"]).status_code == 200
    assert requests.delete(task["url"], headers=HEADERS).status_code == 204
    assert requests.get(task["url"]).status_code == 404
    assert requests.get(task["result_url"]).status_code == 404


def test_only_the_owner_may_delete():
    with ATLASEmulator(tokens={"a": "alice", "b": "bob"}) as emulator:
        url = submit(emulator, headers={"Authorization": "Token a"}).json()["url"]
        refused = requests.delete(url, headers={"Authorization": "Token b"})
        assert (refused.status_code, refused.json()) == (403, {"detail": "You do not have permission to perform this action."})
        assert requests.get(url).status_code == 200


# -- throttling and the queued-task cap ------------------------------------------------------


def test_writes_are_throttled_per_user_with_retry_after():
    with ATLASEmulator(write_rate=2, tokens={"test-token": "tester", "other": "other"}) as emulator:
        assert [submit(emulator).status_code for _ in range(2)] == [201, 201]
        throttled = submit(emulator)
        assert throttled.status_code == 429
        wait = throttled.headers["Retry-After"]
        assert wait in ("59", "60")  # the first write leaves the one-minute window then
        assert throttled.json() == {"detail": f"Request was throttled. Expected available in {wait} seconds."}
        assert submit(emulator, headers={"Authorization": "Token other"}).status_code == 201
        assert requests.get(emulator.base_url + "/queue/", headers=HEADERS).status_code == 200


def test_reads_have_their_own_rate():
    with ATLASEmulator(read_rate=3) as emulator:
        url = submit(emulator).json()["url"]
        assert [requests.get(url, headers=HEADERS).status_code for _ in range(4)] == [200, 200, 200, 429]
        assert submit(emulator).status_code == 201


@pytest.mark.parametrize(("wait", "text"), [(1, "1 second."), (5, "5 seconds.")])
def test_forced_throttle_says_second_or_seconds(atlas_emulator, wait, text):
    atlas_emulator.throttle_next(2, wait=wait)
    for _ in range(2):
        response = submit(atlas_emulator)
        assert response.status_code == 429
        assert response.headers["Retry-After"] == str(wait)
        assert response.json() == {"detail": f"Request was throttled. Expected available in {text}"}
    assert submit(atlas_emulator).status_code == 201


def test_queued_task_cap_is_a_400():
    with ATLASEmulator(max_queued=2, queue_time=30) as emulator:
        assert [submit(emulator).status_code for _ in range(2)] == [201, 201]
        refused = submit(emulator)
        assert refused.status_code == 400
        assert refused.json() == {"non_field_errors": ["ERROR: You have too many queued tasks (2 queued + 1 requested > 2)."]}


# -- faults, recording, callbacks ------------------------------------------------------------


def test_faults_apply_to_the_emulator(atlas_emulator):
    atlas_emulator.faults.add("status", status=503, path_prefix="/forcedphot/queue/", retry_after=7)
    unavailable = submit(atlas_emulator)
    assert (unavailable.status_code, unavailable.headers["Retry-After"]) == (503, "7")
    atlas_emulator.faults.add("drop")
    with pytest.raises(requests.ConnectionError):
        submit(atlas_emulator)
    atlas_emulator.faults.add("malformed")
    with pytest.raises(requests.JSONDecodeError):
        submit(atlas_emulator).json()
    atlas_emulator.faults.add("latency", seconds=0.2)
    started = time.monotonic()
    assert submit(atlas_emulator).status_code == 201
    assert time.monotonic() - started >= 0.2
    assert requests.get(atlas_emulator.base_url + "/queue/", headers=HEADERS).json()["results"][0]["id"] == 1


def test_requests_are_recorded(atlas_emulator):
    submit(atlas_emulator)
    recorded = atlas_emulator.requests[-1]
    assert (recorded.method, recorded.path, recorded.headers["Authorization"]) == ("POST", "/forcedphot/queue/", "Token test-token")
    assert b"ra=44.0" in recorded.body and recorded.at > 0


def test_callback_is_posted_once_when_the_task_finishes():
    with LoopbackServer() as receiver, ATLASEmulator(run_time=0.2) as emulator:
        task = submit(emulator, {**TARGET, "callback_url": receiver.url + "/hook"}).json()
        (call,) = wait_for(lambda: receiver.requests)
        assert (call.method, call.path) == ("POST", "/hook")
        posted = json.loads(call.body)
        assert posted["id"] == task["id"] and posted["finished"] is True and posted["result_url"]
        time.sleep(0.3)
        assert len(receiver.requests) == 1
