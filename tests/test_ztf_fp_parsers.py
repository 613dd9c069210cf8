"""ZTF forced photometry: the light-curve parser, IPAC's HTML answers, the job key and the centroid,
on files with nulls, mixed procstatus, unknown filters and untidy HTML."""

import math
from pathlib import Path

import pytest
from photometry_support import fields

from facility_apis.core.errors import RemoteError
from facility_apis.core.interface import HostPoint
from facility_apis.facilities.ztf_fp import position
from facility_apis.facilities.ztf_fp.lightcurve import parse_lightcurve
from facility_apis.facilities.ztf_fp.listing import Job, JobKey, Tolerance, find_job, html_tables, parse_confirmation, parse_job_list
from facility_apis.testing.ipac_files import epochs_between, light_curve

FIXTURES = Path(__file__).parent / "fixtures" / "ztf_fp"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


# -- light curves ------------------------------------------------------------------------------


def test_mixed_file_keeps_procstatus_0_only_and_converts_by_the_documented_rules():
    photometry = parse_lightcurve(fixture("lightcurve_mixed.txt"))
    # Kept: epochs 0, 1, 2, 9, 10, 11, 12 (procstatus 0, a known filter, a jd and a diffmaglim).
    assert len(photometry) == 7
    assert photometry.filter == ["ztfg", "ztfr", "ztfi", "ztfi", "ztfg", "ztfr", "ztfi"]
    assert photometry.mjd[0] == pytest.approx(2460950.75 - 2400000.5)
    # Epoch 0: SNR 30, a detection: mag = zpdiff - 2.5 log10(flux), magerr = 1.0857 unc / flux.
    assert photometry.mag[0] == pytest.approx(26.20 - 2.5 * math.log10(1500.0))
    assert photometry.magerr[0] == pytest.approx(1.0857 * 50.0 / 1500.0)
    assert photometry.limiting_mag[0] == 20.50
    # Epoch 10 sits exactly at SNR 3: a detection; the others are upper limits at diffmaglim.
    assert photometry.mag[4] == pytest.approx(26.20 - 2.5 * math.log10(150.0))
    for i in (1, 2, 3, 5, 6):  # SNR 0.6, null flux, negative flux, zero uncertainty, null zpdiff
        assert photometry.values("mag")[i] is None and photometry.values("magerr")[i] is None
    assert photometry.values("limiting_mag")[1:4] == [20.60, 20.40, 20.10]
    assert photometry.origin == "fp" and photometry.magsys == "ab"
    assert photometry.notes == (
        "dropped epochs with a procstatus other than 0: 1 with 56, 1 with 56,57, 1 with 58, 1 with 61, 1 with null",
        "dropped epochs in filters other than ZTF_g/ZTF_r/ZTF_i: 1 in 'ZTF_x'",
        "dropped 1 epoch(s) without a jd",
        "dropped 1 epoch(s) without a diffmaglim",
    )


def test_keep_flagged_also_keeps_56_57_58_but_never_61():
    photometry = parse_lightcurve(fixture("lightcurve_mixed.txt"), keep_flagged=True)
    assert len(photometry) == 10  # + epochs 3 (56), 4 (56,57) and 14 (58)
    assert photometry.notes[0] == "dropped epochs with a procstatus other than 0, 56, 57 or 58: 1 with 61, 1 with null"


def test_snr_threshold_moves_detections_to_limits():
    strict = parse_lightcurve(fixture("lightcurve_mixed.txt"), snr_threshold=5.0)
    assert strict.values("mag")[4] is None  # SNR 3 is below 5 now
    assert strict.detections == 1


def test_a_commented_header_line_is_found_too():
    photometry = parse_lightcurve(fixture("lightcurve_commented_header.txt"))
    assert photometry.filter == ["ztfg", "ztfr", "ztfi"]


def test_a_header_only_file_holds_no_epochs():
    photometry = parse_lightcurve(fixture("lightcurve_header_only.txt"))
    assert len(photometry) == 0 and photometry.notes == ("the light curve holds no epochs",)


def test_columns_are_found_by_name_whatever_their_order():
    lines = fixture("lightcurve_mixed.txt").splitlines()
    header_at = next(i for i, line in enumerate(lines) if "procstatus" in line)
    names = [name.strip() for name in lines[header_at].split(",")]
    order = list(reversed(range(len(names))))
    shuffled = [" " + ", ".join(names[i] for i in order)]
    shuffled += [" " + " ".join(line.split()[i] for i in order) for line in lines[header_at + 1 :]]
    assert fields(parse_lightcurve("\n".join(shuffled))) == fields(parse_lightcurve(fixture("lightcurve_mixed.txt")))


def test_malformed_files_are_errors():
    with pytest.raises(RemoteError, match="no header line naming") as caught:
        parse_lightcurve("# only comments\n 1 2 3\n")
    assert caught.value.permanent
    lines = fixture("lightcurve_mixed.txt").splitlines()
    lines[-1] = lines[-1].rsplit(" ", 3)[0]
    with pytest.raises(RemoteError, match=r"line \d+ has 37 values; its header names 40"):
        parse_lightcurve("\n".join(lines))


def test_the_emulators_files_parse_with_every_kind_of_epoch():
    jds = epochs_between(2460900.5, 2460960.5)
    text = light_curve(1001, 35.2, 12.4, 2460900.5, 2460960.5, jds)
    photometry = parse_lightcurve(text)
    assert 0 < len(photometry) < len(jds)
    assert photometry.detections and len(photometry) - photometry.detections
    assert set(photometry.filter) == {"ztfg", "ztfr", "ztfi"}
    assert "procstatus other than 0" in photometry.notes[0]


# -- IPAC's HTML ---------------------------------------------------------------------------------


def test_a_messy_job_list_is_read_by_column_name():
    jobs = parse_job_list(fixture("joblist_messy.html"))
    # The login table is not the job table; the row with a non-number and the short row are skipped.
    assert [job.req_id for job in jobs] == [2001, 2002, 2005]
    done, pending, empty = jobs
    assert done.exitcode == 0 and done.ended == "2026-11-20 10:31:00"
    assert done.lightcurve == "/ztf/ops/fp/2026/11/20/field000600/forcedphotometry_req00002001_lc.txt"
    assert pending.started is None and pending.ended is None and pending.exitcode is None and pending.lightcurve is None
    assert empty.exitcode == 63 and empty.lightcurve is None  # "null" is no path


def test_pages_without_a_job_table_give_none():
    assert parse_job_list("Zero records returned\n") is None
    assert parse_job_list("<html><title>502 Proxy Error</title><body>oops</body></html>") is None
    assert parse_job_list("<table><tr><th>x</th><th>y</th></tr><tr><td>1</td><td>2</td></tr></table>") is None
    assert parse_job_list("") is None


def test_cells_are_decoded_and_unclosed_tags_tolerated():
    tables = html_tables("<table><tr><th>a &amp; b<td> x<br>y <tr><td>&lt;1&gt;</table>")
    assert tables == [[[("a & b", True), ("x y", False)], [("<1>", False)]]]


def test_the_confirmation_page_gives_the_values_ipac_echoed():
    key = parse_confirmation(fixture("confirmation.html"))
    assert key == JobKey(35.2, 12.4, 2460950.5, 2460960.5)
    assert parse_confirmation("<html><body><p>Error: the e-mail address or user password is not valid.</p></body></html>") is None
    assert parse_confirmation("") is None


def test_jobs_are_matched_within_the_tolerance_newest_first_and_by_reqid_once_known():
    key = JobKey(35.2, 12.4, 2460950.5, 2460960.5)
    jobs = parse_job_list(fixture("joblist_messy.html"))
    assert find_job(jobs, key, Tolerance()).req_id == 2002  # two jobs match: the newer one
    assert find_job(jobs, key.with_req_id(2001), Tolerance()).req_id == 2001
    assert find_job(jobs, key.with_req_id(9999), Tolerance()) is None
    off = JobKey(35.20002, 12.4, 2460950.5, 2460960.5)
    assert find_job(jobs, off, Tolerance()) is None
    assert find_job(jobs, off, Tolerance(degrees=3e-5)).req_id == 2002
    late = JobKey(35.2, 12.4, 2460950.5, 2460960.50002)
    assert find_job(jobs, late, Tolerance()) is None and find_job(jobs, late, Tolerance(days=1e-4)) is not None


def test_ra_differences_wrap_at_360():
    job = Job(1, 359.999999, 0.0, 1.0, 2.0)
    assert Tolerance().matches(job, JobKey(0.000001, 0.0, 1.0, 2.0))
    assert not Tolerance().matches(job, JobKey(0.1, 0.0, 1.0, 2.0))


def test_the_job_key_round_trips_through_the_remote_id():
    key = JobKey(280.8058788, 45.2077645, 2458231.891227, 2458345.025359)
    assert key.text == "ra=280.8058788&dec=45.2077645&jdstart=2458231.891227&jdend=2458345.025359"
    assert JobKey.parse(key.text) == key
    assert JobKey.parse(key.with_req_id(77).text) == key.with_req_id(77)
    bad_ids = ("", "https://fallingstar-data.com/forcedphot/queue/1/", "ra=1&dec=2&jdstart=3")
    bad_ids += ("ra=1&dec=2&jdstart=3&jdend=x", "ra=1&dec=2&jdstart=3&jdend=4&reqId=a")
    for bad in bad_ids:
        with pytest.raises(RemoteError) as caught:
            JobKey.parse(bad)
        assert caught.value.permanent


# -- the flux-weighted centroid --------------------------------------------------------------------


def point(ra, dec, flux=100.0, fluxerr=10.0, **extra):
    return HostPoint(ra, dec, flux, fluxerr, **extra)


def test_centroid_is_snr_weighted_and_leaves_out_what_does_not_qualify():
    points = [
        point(10.0, 20.0, flux=100.0),  # SNR 10
        point(10.0002, 20.0, flux=300.0),  # SNR 30
        point(11.0, 21.0, flux=20.0),  # SNR 2: left out
        point(12.0, 22.0, origin="fp"),  # forced photometry: left out
        point(12.0, 22.0, origin="ZTF_fp_sub"),  # likewise
        point(None, 22.0),  # no position
        point(12.0, 22.0, fluxerr=0.0),  # no uncertainty
        point(12.0, 22.0, flux=float("nan")),
    ]
    ra, dec, used = position.flux_weighted_centroid(points, position.CENTROID)
    assert used == 2
    assert ra == pytest.approx(10.00015, abs=1e-7) and dec == pytest.approx(20.0, abs=1e-7)


def test_centroid_choices_narrow_to_alerts_and_to_ztf():
    points = [point(10.0, 20.0), point(10.001, 20.0, alert=True, instrument="KAIT"), point(10.002, 20.0, alert=True, instrument="ZTF")]
    assert position.flux_weighted_centroid(points, position.CENTROID)[2] == 3
    assert position.flux_weighted_centroid(points, position.CENTROID_ALERTS)[2] == 2
    ra, _, used = position.flux_weighted_centroid(points, position.CENTROID_ZTF_ALERTS)
    assert used == 1 and ra == pytest.approx(10.002)
    assert position.flux_weighted_centroid([point(1.0, 1.0, instrument="CFH12k", alert=True)], position.CENTROID_ZTF_ALERTS)[2] == 1
    assert position.flux_weighted_centroid([point(1.0, 1.0)], position.CENTROID_ZTF_ALERTS) is None


def test_centroid_across_ra_zero_and_near_the_pole():
    ra, dec, _ = position.flux_weighted_centroid([point(359.9999, 10.0), point(0.0001, 10.0)], position.CENTROID)
    assert min(ra, 360 - ra) < 1e-9 and dec == pytest.approx(10.0)
    _, dec, _ = position.flux_weighted_centroid([point(0.0, 89.9999), point(180.0, 89.9999)], position.CENTROID)
    assert dec == pytest.approx(90.0)
