"""ATLAS result files: parsing by column name, filters, non-detection rules, limits, errors.

The fixtures in ``tests/fixtures/atlas`` follow the service's ``resultdesc`` format; in
``result_edge_cases.txt`` each row (identified by its MJD) breaks exactly one rule.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from photometry_support import fields

from facility_apis.core.errors import RemoteError
from facility_apis.core.photometry import Photometry
from facility_apis.facilities.atlas.results import REQUIRED, parse_results

FIXTURES = Path(__file__).parent / "fixtures" / "atlas"
NEW_HEADER = "###MJD m dm uJy duJy F err chi/N RA Dec x y maj min phi apfit mag5sig PA_DEG Sky Obs"
OLD_HEADER = "###MJD m dm uJy duJy F err chi/N RA Dec x y maj min phi apfit mag5sig Sky Obs"


def text(name: str) -> str:
    return (FIXTURES / name).read_text()


def parse(name: str, **kw) -> Photometry:
    return parse_results(text(name), **kw)


def points(photometry: Photometry) -> dict[float, dict]:
    """The parsed points keyed by MJD (``None`` where a number is missing)."""
    return {
        mjd: {"mag": mag, "magerr": magerr, "limiting_mag": lim, "filter": band, "ra": ra, "dec": dec}
        for mjd, mag, magerr, lim, band, ra, dec in zip(
            *(photometry.values(name) for name in ("mjd", "mag", "magerr", "limiting_mag", "filter", "ra", "dec")), strict=True
        )
    }


def three_sigma(dujy: float) -> float:
    return -2.5 * math.log10(3 * dujy) + 23.9


# -- the fixtures are what the docs describe -------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "header"),
    [("result_pa_deg.txt", NEW_HEADER), ("result_edge_cases.txt", NEW_HEADER), ("header_only.txt", NEW_HEADER), ("result_no_pa_deg.txt", OLD_HEADER)],
)
def test_fixture_headers(name, header):
    assert text(name).splitlines()[0].split() == header.split()


def test_fixture_magnitudes_follow_the_documented_conversion():
    """m = -2.5 log10(|uJy|) + 23.9, negative when the flux is (checked against astropy)."""
    units = pytest.importorskip("astropy.units")
    lines = text("result_pa_deg.txt").splitlines()
    names = lines[0].lstrip("#").split()
    for line in lines[1:]:
        row = dict(zip(names, line.split(), strict=True))
        flux, m = float(row["uJy"]), float(row["m"])
        expected = (abs(flux) * units.uJy).to(units.ABmag).value
        assert abs(m) == pytest.approx(expected, abs=2e-3)
        assert math.copysign(1, m) == math.copysign(1, flux)


# -- column sets -----------------------------------------------------------------------------------


def test_new_format_with_pa_deg():
    photometry = parse("result_pa_deg.txt")
    assert photometry.values("mjd") == [60950.251734, 60950.262911, 60952.247105, 60953.301467, 60955.23882]
    assert photometry.values("mag") == [16.099, 16.422, None, None, 16.885]
    assert photometry.values("magerr") == [0.012, 0.022, None, None, 0.031]
    assert photometry.values("limiting_mag") == [19.87, 20.12, 19.64, 19.91, 19.78]
    assert photometry.filter == ["atlaso", "atlasc", "atlaso", "atlasc", "atlaso"]
    assert photometry.values("ra") == [150.00012, 150.00011, 150.00012, 150.00013, 150.0001]
    assert photometry.values("dec") == [2.49987, 2.49989, 2.49987, 2.49986, 2.49988]
    assert (photometry.magsys, photometry.origin, photometry.notes) == ("ab", "fp", ())
    assert photometry.summary() == "5 points (3 detections, 2 upper limits)"


def test_old_format_without_pa_deg():
    photometry = parse("result_no_pa_deg.txt")
    assert photometry.values("mjd") == [57805.600468, 57807.583214, 57809.61223, 57811.598871]
    assert photometry.values("mag") == [19.473, 18.084, None, 17.704]
    assert photometry.values("magerr") == [0.184, 0.056, None, 0.043]
    assert photometry.values("limiting_mag") == [19.96, 19.41, 19.55, 20.01]
    assert photometry.filter == ["atlasc", "atlaso", "atlaso", "atlasc"]
    assert photometry.values("dec") == [-10.09221, -10.09223, -10.0922, -10.09222]


def test_columns_are_found_by_name_not_position():
    shuffled = text("result_shuffled_columns.txt")
    assert shuffled.splitlines()[0].split()[:3] == ["###Obs", "F", "RA"]
    assert fields(parse_results(shuffled)) == fields(parse("result_pa_deg.txt"))


def test_header_only_file_gives_no_points_and_a_note():
    photometry = parse("header_only.txt")
    assert len(photometry) == 0
    assert photometry.notes == ("the result file holds no measurements",)
    assert photometry.summary() == "0 points (0 detections, 0 upper limits)"


def test_blank_lines_crlf_and_extra_spacing_are_tolerated():
    original = text("result_pa_deg.txt")
    messy = "\r\n\r\n" + "\r\n".join(line.replace(" ", "   ") + "  " for line in original.splitlines()) + "\r\n\r\n"
    assert fields(parse_results(messy)) == fields(parse_results(original))


# -- filters ---------------------------------------------------------------------------------------


def test_filters_map_to_atlasc_and_atlaso_and_others_are_dropped_with_a_note():
    photometry = parse("result_edge_cases.txt")
    assert set(photometry.filter) == {"atlasc", "atlaso"}
    assert 60200.20 not in photometry.mjd and 60200.21 not in photometry.mjd
    assert "dropped points in filters other than c/o: 2 in 't'" in photometry.notes


def test_several_unknown_filters_are_listed_in_the_note():
    lines = text("result_pa_deg.txt").splitlines()
    lines[1] = lines[1].replace(" o ", " t ")
    lines[2] = lines[2].replace(" c ", " w ")
    lines[3] = lines[3].replace(" o ", " t ")
    photometry = parse_results("\n".join(lines))
    assert photometry.values("mjd") == [60953.301467, 60955.23882]
    assert photometry.notes == ("dropped points in filters other than c/o: 2 in 't', 1 in 'w'",)


# -- detections and non-detections -----------------------------------------------------------------

EDGE = points(parse("result_edge_cases.txt"))


def assert_detected(point, mag, magerr, limit):
    assert (point["mag"], point["magerr"], point["limiting_mag"]) == (mag, magerr, limit)


def assert_upper_limit(point, limit):
    assert point["mag"] is None
    assert point["magerr"] is None
    assert point["limiting_mag"] == pytest.approx(limit)


def test_control_point_is_a_detection():
    assert_detected(EDGE[60200.10], 17.153, 0.022, 19.50)


@pytest.mark.parametrize(
    ("mjd", "rule", "limit"),
    [
        (60200.11, "SNR 2.9 < 3", 20.60),
        (60200.14, "negative flux (m < 0)", 19.70),
        (60200.15, "chi/N 12.5 > 10", 19.80),
        (60200.16, "m 19.455 > mag5sig 19.20", 19.20),
        (60200.17, "duJy == 0", 19.75),
        (60200.18, "NaN flux", 19.65),
    ],
)
def test_each_non_detection_rule(mjd, rule, limit):
    assert_upper_limit(EDGE[mjd], limit)


def test_snr_exactly_at_threshold_is_a_detection():
    assert_detected(EDGE[60200.13], 20.207, 0.362, 20.60)


def test_chi_n_exactly_10_is_a_detection():
    assert_detected(EDGE[60200.24], 17.153, 0.022, 19.50)


def test_snr_threshold_is_configurable():
    default = points(parse("result_edge_cases.txt"))
    strict = points(parse("result_edge_cases.txt", snr_threshold=5.0))
    assert_detected(default[60200.12], 19.895, 0.271, 20.30)  # SNR 4.0
    assert_upper_limit(strict[60200.12], 20.30)
    assert_upper_limit(strict[60200.13], 20.60)  # SNR 3.0
    assert_detected(strict[60200.10], 17.153, 0.022, 19.50)  # SNR 50
    lenient = points(parse("result_edge_cases.txt", snr_threshold=2.5))
    assert_detected(lenient[60200.11], 20.244, 0.374, 20.60)  # SNR 2.9
    assert_upper_limit(lenient[60200.14], 19.70)  # negative flux stays a limit


def test_nan_mag5sig_gives_the_three_sigma_limit_from_dujy():
    assert_upper_limit(EDGE[60200.19], three_sigma(8.0))
    assert EDGE[60200.19]["limiting_mag"] == pytest.approx(20.4495, abs=1e-4)
    assert_detected(EDGE[60200.25], 17.395, 0.027, pytest.approx(three_sigma(10.0)))


def test_three_sigma_limit_agrees_with_astropy():
    units = pytest.importorskip("astropy.units")
    for dujy in (8.0, 10.0):
        assert three_sigma(dujy) == pytest.approx((3 * dujy * units.uJy).to(units.ABmag).value, abs=1e-3)


def test_point_without_any_limit_is_dropped_with_a_note():
    assert 60200.22 not in EDGE
    assert "dropped 1 point(s) with no usable MJD or limiting magnitude" in parse("result_edge_cases.txt").notes


def test_point_without_mjd_is_dropped_with_a_note():
    lines = text("result_pa_deg.txt").splitlines()
    lines[2] = lines[2].replace("60950.262911", "         nan", 1)
    photometry = parse_results("\n".join(lines))
    assert len(photometry) == 4 and 60950.262911 not in photometry.mjd
    assert photometry.notes == ("dropped 1 point(s) with no usable MJD or limiting magnitude",)


def test_nan_position_becomes_none():
    assert EDGE[60200.23]["ra"] is None and EDGE[60200.23]["dec"] is None
    assert_detected(EDGE[60200.23], 17.267, 0.024, 19.90)


def test_stray_non_numeric_tokens_read_as_nan():
    lines = text("result_pa_deg.txt").splitlines()
    lines[1] = lines[1].replace(" 1320 ", "    - ", 1)
    photometry = parse_results("\n".join(lines))
    assert len(photometry) == 5
    assert (photometry.values("mag")[0], photometry.values("magerr")[0], photometry.values("limiting_mag")[0]) == (None, None, 19.87)


def test_edge_fixture_summary_and_order():
    photometry = parse("result_edge_cases.txt")
    assert photometry.values("mjd") == sorted(photometry.values("mjd"))
    assert len(photometry) == 13
    assert photometry.detections == 6
    assert all(math.isfinite(limit) for limit in photometry.limiting_mag)


# -- malformed files -------------------------------------------------------------------------------


@pytest.mark.parametrize("column", REQUIRED)
def test_missing_required_column_is_a_remote_error_naming_it(column):
    lines = text("result_pa_deg.txt").splitlines()
    names = lines[0].lstrip("#").split()
    names[names.index(column)] = "unused"
    lines[0] = "###" + " ".join(names)
    with pytest.raises(RemoteError, match=rf"lacks the column\(s\) {column}$"):
        parse_results("\n".join(lines))


def test_several_missing_columns_are_all_named():
    with pytest.raises(RemoteError) as caught:
        parse_results("###MJD m dm uJy duJy F\n60000.1 18.0 0.1 230 10 o\n")
    assert str(caught.value) == "ATLAS result file lacks the column(s) chi/N, RA, Dec, mag5sig"


@pytest.mark.parametrize("change", ["drop", "extra"])
def test_row_with_wrong_number_of_values_is_a_remote_error(change):
    lines = text("result_pa_deg.txt").splitlines()
    values = lines[3].split()
    values = values[:-1] if change == "drop" else [*values, "extra"]
    lines[3] = " ".join(values)
    expected = 19 if change == "drop" else 21
    with pytest.raises(RemoteError, match=rf"^ATLAS result row 3 has {expected} values; the header names 20$"):
        parse_results("\n".join(lines))


@pytest.mark.parametrize(
    "body",
    ["", "\n\n", text("result_pa_deg.txt").split("\n", 1)[1], "<html><body>502 Bad Gateway</body></html>"],
    ids=["empty", "blank", "rows-without-header", "html"],
)
def test_file_without_header_is_a_remote_error(body):
    with pytest.raises(RemoteError, match="no header line"):
        parse_results(body)


# -- SkyPortal body --------------------------------------------------------------------------------


def test_upload_body():
    photometry = parse("result_pa_deg.txt")
    bodies = [json.loads(upload) for upload in photometry.uploads("ZTF26aatlas", 11, group_ids=[5, 2, 5, 1])]
    assert len(bodies) == 1
    (body,) = bodies
    assert set(body) == {"obj_id", "instrument_id", "magsys", "origin", "group_ids", "mjd", "mag", "magerr", "limiting_mag", "filter", "ra", "dec"}
    assert (body["obj_id"], body["instrument_id"], body["magsys"], body["origin"]) == ("ZTF26aatlas", 11, "ab", "fp")
    assert body["group_ids"] == [1, 2, 5]
    assert body["mjd"] == photometry.values("mjd")
    assert body["mag"] == [16.099, 16.422, None, None, 16.885]
    assert body["magerr"] == [0.012, 0.022, None, None, 0.031]
    assert body["limiting_mag"] == [19.87, 20.12, 19.64, 19.91, 19.78]
    assert body["filter"] == ["atlaso", "atlasc", "atlaso", "atlasc", "atlaso"]
    assert body["ra"] == photometry.values("ra") and body["dec"] == photometry.values("dec")
    assert len({len(body[key]) for key in ("mjd", "mag", "magerr", "limiting_mag", "filter", "ra", "dec")}) == 1
    json.dumps(body, allow_nan=False)


def test_upload_body_without_groups_and_with_edge_cases_is_strict_json():
    bodies = [json.loads(upload) for upload in parse("result_edge_cases.txt").uploads("ZTF26aatlas", 11)]
    assert len(bodies) == 1
    (body,) = bodies
    assert "group_ids" not in body
    assert body["ra"][body["mjd"].index(60200.23)] is None
    json.dumps(body, allow_nan=False)  # no NaN reaches SkyPortal
