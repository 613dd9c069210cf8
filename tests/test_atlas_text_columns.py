"""The column-wise reader of ATLAS result files (``text_columns.read_table``) and the parser's two paths.

Its values must be those of ``float()`` bit for bit, for every token (the fast path's own, and the
ones it hands to ``float()``); it must refuse (``None``) any text that is not a regular table, so
that ``parse_results`` reads it row by row, with the behaviour it always had.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from photometry_support import fields

from facility_apis.core.errors import RemoteError
from facility_apis.facilities.atlas import results, text_columns
from facility_apis.facilities.atlas.results import parse_results
from facility_apis.facilities.atlas.text_columns import read_table

FIXTURES = Path(__file__).parent / "fixtures" / "atlas"
ODD = ["-", "null", "NaN", "nan", "-NaN", "NaNa", "inf", "-inf", "Infinity", "1e5", "-2.5E-3", "1_000", "0x10", "+-1", "1.2.3", "--1", ".", "+.", "1-"]


def bits(value: float) -> bytes:
    return struct.pack("<d", value)


def expected(token: str) -> float:
    """What the row-by-row parser reads: ``float()``, NaN when it refuses the token."""
    try:
        return float(token)
    except ValueError:
        return math.nan


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or bits(a) == bits(b)


def table(rows: list[list[str]], labels: list[str], gap: str = " ") -> str:
    return "".join(gap.join([label, *row]) + "\n" for label, row in zip(labels, rows, strict=True))


def read(text: str, numeric: int):
    return read_table(text, 0, numeric + 1, list(range(1, numeric + 1)), 0, ("c", "o"))


decimal_tokens = st.from_regex(r"[+-]?[0-9]{0,17}(\.[0-9]{0,17})?", fullmatch=True).filter(lambda token: token not in ("", "+", "-"))
float_tokens = st.builds(
    lambda value, digits, form: repr(value) if form == "repr" else f"{value:.{digits}f}",
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12),
    st.integers(0, 12),
    st.sampled_from(["repr", "fixed"]),
)
tokens = st.one_of(decimal_tokens, float_tokens, st.sampled_from(ODD))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])  # slow on a shared machine
@given(st.lists(st.lists(tokens, min_size=3, max_size=3), min_size=1, max_size=40), st.sampled_from([" ", "   ", "\t"]))
def test_every_value_is_float_of_its_token_bit_for_bit(rows, gap):
    numbers, codes, other = read(table(rows, ["o"] * len(rows), gap), 3)
    for column in range(3):
        for row, token in enumerate(row[column] for row in rows):
            assert same(float(numbers[column][row]), expected(token)), token
    assert codes.tolist() == [1] * len(rows) and other == {}


@pytest.mark.parametrize(
    "token", ["57230.559592", "-20.65431", "150.12347", "0", "-0", "-0.0", "+7", "5.", ".5", "00012.50", "99999999999999", "0.0000000000001"]
)
def test_fast_path_tokens(token, monkeypatch):
    """Tokens of at most 15 characters, 14 digits: read by the fast path itself, never by float()."""
    monkeypatch.setattr(text_columns, "_number", lambda token: pytest.fail(f"{token!r} left to float()"))
    numbers, _, _ = read(f"c {token} {token}\n", 2)
    assert bits(float(numbers[0][0])) == bits(float(token)) == bits(float(numbers[1][0]))


def test_long_and_short_values_in_one_column_are_each_exact():
    """The first row decides how many bytes a column's values are read with; a longer value later
    (here 15 and 20 characters in a column of 1-character values) is still read exactly."""
    rows = [["1"], ["123456789.12345"], ["1234567890.1234567890"], ["2"]]
    numbers, _, _ = read(table(rows, ["c"] * 4), 1)
    assert [bits(value) for value in numbers[0].tolist()] == [bits(float(row[0])) for row in rows]


def test_labels_are_coded_and_other_labels_counted():
    _, codes, other = read(table([["1"]] * 5, ["c", "o", "t", "cyan", "t"]), 1)
    assert codes.tolist() == [0, 1, 2, 2, 2]
    assert other == {"t": 2, "cyan": 1}


def test_blocks_join_seamlessly(monkeypatch):
    rows = [[f"{n}.{n % 7}", f"-{n % 13}.25"] for n in range(500)]
    text = "\r\n".join(" ".join(["oc"[n % 2], *row]) for n, row in enumerate(rows)) + "\r\n"
    whole = read(text, 2)
    monkeypatch.setattr(text_columns, "BLOCK", 64)
    blocked = read(text, 2)
    for column in range(2):
        assert whole[0][column].tobytes() == blocked[0][column].tobytes()
        assert [bits(value) for value in blocked[0][column].tolist()] == [bits(float(row[column])) for row in rows]
    assert whole[1].tolist() == blocked[1].tolist() == [1 - n % 2 for n in range(500)]  # o, c, o, ...


@pytest.mark.parametrize(
    "text",
    [
        "c 1 2\no 3\n",  # a row of another width
        "c 1 2\no 3 4 5\n",
        "c 1 2\n# a comment\no 3 4\n",
        "c 1 2\no 3 4 # a remark\n",
        "c 1 2\no 3 4\x0c\n",  # a control character str.split() reads as a space, splitlines() as a break
        "c 1 2\x01\no 3 4\n",  # one it reads as part of a value
        "c 1 2\no 3 4\u00a0\n",  # not ASCII
        "c 1 2 o 3 4\n",  # two rows on one line
        "c 1\n2\no 3 4\n",  # one row on two lines
    ],
)
def test_irregular_text_is_refused(text):
    assert read(text, 2) is None


def test_regular_text_is_read():
    numbers, codes, _ = read("\n  c 1 2\r\n\r\no\t3   4", 2)
    assert [column.tolist() for column in numbers] == [[1.0, 3.0], [2.0, 4.0]] and codes.tolist() == [0, 1]
    numbers, codes, _ = read("\n \n", 2)
    assert [column.tolist() for column in numbers] == [[], []] and codes.tolist() == []


# -- parse_results: the fast path and the row-by-row path give the same ---------------------------


def fixture_text() -> str:
    return (FIXTURES / "result_edge_cases.txt").read_text()


def columns_for_any_size():
    """The column-wise path taken whatever the file's size (by default small files go row by row)."""
    return mock.patch.object(results, "COLUMNS_FROM", 0)


def with_comment(text: str) -> str:
    """The same file with a comment line after the header: it goes row by row."""
    header, body = text.split("\n", 1)
    return f"{header}\n# a comment line\n{body}"


@pytest.mark.parametrize("snr_threshold", [3.0, 5.0])
def test_both_paths_give_the_same_photometry(snr_threshold):
    text = fixture_text()
    assert read_table(text, text.index("\n"), 20, [0], 5, ("c", "o")) is not None  # fast path
    with columns_for_any_size():
        fast, slow = parse_results(text, snr_threshold=snr_threshold), parse_results(with_comment(text), snr_threshold=snr_threshold)
    assert fields(fast) == fields(slow)
    assert [bits(value) for value in fast.limiting_mag] == [bits(value) for value in slow.limiting_mag]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["c", "o", "t"]), st.lists(tokens, min_size=9, max_size=9)), min_size=1, max_size=30))
def test_both_paths_agree_on_random_rows(rows):
    header = "###MJD m dm uJy duJy F err chi/N RA Dec mag5sig"
    lines = [header] + [" ".join([*values[:5], band, "0", *values[5:]]) for band, values in rows]
    text = "\n".join(lines) + "\n"
    with columns_for_any_size():
        fast, slow = parse_results(text), parse_results(with_comment(text))
    assert fields(fast) == fields(slow)
    for column in ("mjd", "mag", "magerr", "limiting_mag", "ra", "dec"):
        assert [None if value is None else bits(value) for value in fast.values(column)] == [
            None if value is None else bits(value) for value in slow.values(column)
        ]


@pytest.mark.parametrize("rows, column_wise", [(20, False), (400, True)])
def test_small_files_go_row_by_row_and_large_ones_column_wise(rows, column_wise):
    """numpy's per-call cost outweighs its speed on a small file (a gateway follows thousands of
    20-row results at once): below ``COLUMNS_FROM`` bytes of rows the file is read row by row, with
    the same values either way."""
    header = "###MJD m dm uJy duJy F err chi/N RA Dec mag5sig"
    text = header + "\n" + "".join(f"60000.{n:04d} 17.5 0.05 351.2 9.8 o 0 1.1 150.0 2.0 19.4\n" for n in range(rows))
    assert (len(text) - len(header) >= results.COLUMNS_FROM) is column_wise
    with mock.patch.object(results, "read_table", wraps=read_table) as column_reader:
        photometry = parse_results(text)
    assert column_reader.called is column_wise
    with columns_for_any_size():
        assert fields(parse_results(text)) == fields(photometry)


def test_three_sigma_limit_has_the_bits_of_math_log10():
    """The limit from duJy, where mag5sig is not a number, is computed as it always was, with
    ``math.log10`` (numpy's may differ in the last bit)."""
    header = "###MJD m dm uJy duJy F err chi/N RA Dec mag5sig"
    dujys = [0.3, 1.0, 7.0, 8.0, 10.0, 13.0, 31.0, 47.0, 123.0, 999.0, 4321.0, 12345.0]
    text = header + "\n" + "".join(f"60000.{n:03d} NaN NaN NaN {dujy} o 0 1.0 150.0 2.0 NaN\n" for n, dujy in enumerate(dujys))
    photometry = parse_results(text)
    assert [bits(value) for value in photometry.limiting_mag] == [bits(-2.5 * math.log10(3.0 * dujy) + 23.9) for dujy in dujys]


def test_wrong_width_still_names_the_row_and_widths():
    lines = fixture_text().splitlines()
    lines[4] = " ".join(lines[4].split()[:-2])
    with pytest.raises(RemoteError, match=r"^ATLAS result row 4 has 18 values; the header names 20$") as caught:
        parse_results("\n".join(lines))
    assert caught.value.permanent


def test_comment_lines_and_stray_tokens_behave_as_before():
    lines = fixture_text().splitlines()
    values = lines[1].split()
    values[3] = "null"  # uJy of the first point: it becomes an upper limit, nothing else changes
    lines[1] = " ".join(values)
    photometry = parse_results("\n".join([lines[0], "# ATLAS note", *lines[1:]]))
    baseline = parse_results(fixture_text())
    assert len(photometry) == len(baseline)
    assert photometry.values("mag")[0] is None and baseline.values("mag")[0] is not None
    assert photometry.values("mag")[1:] == baseline.values("mag")[1:] and photometry.values("limiting_mag") == baseline.values("limiting_mag")
