"""The IPAC emulator speaks ZFPS's protocol: IPAC's own example flow works against it, the job list
changes only at its refreshes, and its light curves carry what real ones do."""

import pytest
import requests
from bs4 import BeautifulSoup

from facility_apis.testing.ipac import BUSY_TEXT, SURVEY_START_JD, ZERO_TEXT, IPACEmulator, jd_of
from facility_apis.testing.ipac_files import COLUMNS

LOGIN = ("ztffps-test", "shared-pw")
EMAIL, USERPASS = "observer@example.org", "account-pw"


class Clock:
    """A clock the test moves: 2026-11-21 13:30:00 UTC to start with."""

    def __init__(self):
        self.now = 1795267800.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def ipac(clock):
    with IPACEmulator(http_login=LOGIN, accounts={EMAIL: USERPASS}, queue_time=600, run_time=600, clock=clock) as emulator:
        yield emulator


def ask(ipac, ra=280.8058788, dec=45.2077645, jdstart=None, jdend=None, auth=LOGIN, **extra):
    jdend = jd_of(ipac.now()) if jdend is None else jdend
    jdstart = jdend - 60 if jdstart is None else jdstart
    params = {"ra": ra, "dec": dec, "jdstart": jdstart, "jdend": jdend, "email": EMAIL, "userpass": USERPASS, **extra}
    return requests.get(f"{ipac.url}/cgi-bin/requestForcedPhotometry.cgi", auth=auth, params=params, timeout=5)


def job_list(ipac, auth=LOGIN, userpass=USERPASS):
    params = {"email": EMAIL, "userpass": userpass, "option": "All recent jobs", "action": "Query Database"}
    return requests.get(f"{ipac.url}/cgi-bin/getForcedPhotometryRequests.cgi", auth=auth, params=params, timeout=5)


def test_ipacs_example_request_flow_works_as_written(ipac, clock):
    """The flow of IPAC's ztf_ForcedPhotometryRequestExample.py: parse the request's table with
    BeautifulSoup (td cells 0-3), poll the job list (td 1-4 the values, 7 ended, 10 the light curve
    path), download the light curve with the same Basic login."""
    request = ask(ipac, ra="280.8058788", dec="45.2077645", jdstart="2460950.891227", jdend="2460990.025359")
    table = BeautifulSoup(request.text, "html.parser").find("table")
    for row in table.find_all("tr"):
        cols = row.find_all("td")
        if len(cols) > 0:
            req = [float(cols[i].text.strip()) for i in range(4)]
    assert req == [280.8058788, 45.2077645, 2460950.891227, 2460990.025359]

    found = None
    for _ in range(4):  # the example polls until the job has ended; here the clock moves an hour each time
        clock.now += 3600
        output = BeautifulSoup(job_list(ipac).text, "html.parser").find("table")
        if output is None:
            continue
        for row in output.find_all("tr"):
            cols = row.find_all("td")
            if len(cols) > 0:
                values = [float(cols[i].text.strip()) for i in range(1, 5)]
                ended = cols[7].text.strip()
                if ended != "" and all(abs(a - b) <= 0.00001 for a, b in zip(values, req, strict=True)):
                    found = cols[10].text.strip()
        if found:
            break
    assert found and found.startswith("/ztf/ops/fp/")
    curve = requests.get(f"{ipac.url}{found}", auth=LOGIN, timeout=5)
    assert curve.status_code == 200 and "forcediffimflux" in curve.text


def test_every_path_needs_the_shared_login(ipac):
    for response in (ask(ipac, auth=("ztffps-test", "wrong")), job_list(ipac, auth=None), requests.get(f"{ipac.url}/ztf/ops/fp/x.txt", timeout=5)):
        assert response.status_code == 401 and "Basic" in response.headers["WWW-Authenticate"]


def test_a_wrong_account_gets_an_error_page_and_queues_nothing(ipac):
    response = ask(ipac, userpass="nope")
    assert response.status_code == 200 and "not valid" in response.text and "<td>" not in response.text
    assert ipac.jobs == []
    assert "not valid" in job_list(ipac, userpass="nope").text


def test_the_job_list_changes_only_at_its_hourly_refresh(clock):
    def cells():
        rows = BeautifulSoup(job_list(ipac).text, "html.parser").find("table").find_all("tr")
        return [th.text for th in rows[0].find_all("th")], [td.text for td in rows[1].find_all("td")]

    # Queued at 13:30, started at 14:10, ended at 14:50.
    with IPACEmulator(http_login=LOGIN, accounts={EMAIL: USERPASS}, queue_time=2400, run_time=2400, clock=clock) as ipac:
        assert job_list(ipac).text.strip() == ZERO_TEXT
        ask(ipac)
        assert job_list(ipac).text.strip() == ZERO_TEXT  # the list shows 13:00
        clock.now += 1800  # 14:00: listed, waiting
        header, row = cells()
        assert header == ["reqId", "ra", "dec", "startJD", "endJD", "created", "started", "ended", "exitcode", "status", "lightcurve"]
        assert row[5] == "2026-11-21 13:30:00" and row[6] == row[7] == row[8] == row[10] == ""
        clock.now += 3599  # 14:59:59: it ended at 14:50, but the list still shows 14:00
        assert cells()[1][6] == cells()[1][7] == ""
        clock.now += 1  # 15:00
        row = cells()[1]
        assert row[6] == "2026-11-21 14:10:00" and row[7] == "2026-11-21 14:50:00" and row[8] == "0" and row[10].endswith("_lc.txt")


def test_a_light_curve_is_served_only_once_the_list_shows_the_job_ended(ipac, clock):
    ask(ipac)
    (job,) = ipac.jobs
    assert requests.get(f"{ipac.url}{job.lightcurve_path}", auth=LOGIN, timeout=5).status_code == 404
    clock.now += 3600
    assert requests.get(f"{ipac.url}{job.lightcurve_path}", auth=LOGIN, timeout=5).status_code == 200


def test_light_curves_have_the_real_layout_with_flags_and_nulls(ipac, clock):
    ask(ipac, jdstart=jd_of(ipac.now()) - 120)
    clock.now += 3600
    text = requests.get(f"{ipac.url}{ipac.jobs[0].lightcurve_path}", auth=LOGIN, timeout=5).text
    lines = text.splitlines()
    header_at = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    assert [name.strip() for name in lines[header_at].split(",")] == list(COLUMNS) and len(COLUMNS) == 40
    rows = [line.split() for line in lines[header_at + 1 :]]
    assert all(len(row) == 40 for row in rows)
    statuses = {row[COLUMNS.index("procstatus")] for row in rows}
    assert {"0", "56", "57", "56,57"} <= statuses
    assert any(row[COLUMNS.index("forcediffimflux")] == "null" for row in rows)
    assert any(row[COLUMNS.index("diffmaglim")] == "null" for row in rows)
    assert {row[COLUMNS.index("filter")] for row in rows} == {"ZTF_g", "ZTF_r", "ZTF_i"}


@pytest.mark.parametrize(
    ("window", "code", "has_curve"),
    [
        (("2400000.5", "2458100.5"), 65, False),  # ends before the survey start
        ((str(SURVEY_START_JD - 100), None), 62, True),  # starts before it: reset
        (("2470000.5", "2470030.5"), 63, False),  # in the future: no exposure yet
    ],
)
def test_exit_codes_follow_the_window(ipac, clock, window, code, has_curve):
    jdstart, jdend = window
    ask(ipac, jdstart=jdstart, jdend=jdend or jd_of(ipac.now()))
    clock.now += 3600
    (job,) = ipac.jobs
    assert job.exitcode == code and (job.lightcurve_path is not None) is has_curve


def test_knobs_busy_forced_exit_and_the_pending_limit(clock):
    with IPACEmulator(http_login=LOGIN, accounts={EMAIL: USERPASS}, queue_time=600, run_time=600, max_pending=2, clock=clock) as ipac:
        ipac.busy_next(2)
        assert ask(ipac).text.strip() == BUSY_TEXT and job_list(ipac).text.strip() == BUSY_TEXT
        assert ipac.jobs == []
        ipac.exit_next(64)
        ask(ipac)
        ask(ipac)
        refused = ask(ipac)
        assert "maximum of 2 pending requests" in refused.text and len(ipac.jobs) == 2
        assert ipac.jobs[0].exitcode == 64 and ipac.jobs[0].lightcurve_path is None
        clock.now += 3600  # both ended: room again
        assert "<td>" in ask(ipac).text
