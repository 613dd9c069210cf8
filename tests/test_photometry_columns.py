"""Photometry as columns end to end: float64 arrays in ``Photometry``, written to JSON by
``core.json_text`` with no Python object per point, split into uploads SkyPortal accepts."""

from __future__ import annotations

import json
import math
import struct
import sys
import time
from unittest import mock

import numpy as np
import pytest

from facility_apis.core.json_text import Fragment, encode, encode_text
from facility_apis.core.photometry import Photometry
from facility_apis.facilities.atlas import results
from facility_apis.facilities.atlas.results import parse_results

HEADER = "###MJD m dm uJy duJy F err chi/N RA Dec x y maj min phi apfit mag5sig Sky Obs\n"


def bits(value: float) -> bytes:
    return struct.pack("<d", value)


def atlas_file(rows: int) -> str:
    """A regular ATLAS result file: every third point an upper limit (SNR 1), the rest detections."""
    lines = []
    for n in range(rows):
        flux = 30 if n % 3 == 0 else 900
        band = "co"[n % 2]
        lines.append(f"{60000 + n / 97:.6f} {17 + n % 50 / 100:.3f} 0.021 {flux} 30 {band} 0 1.10 150.{n:05d} -20.12345 1 2 3 3 0 -0.4 19.87 20.1 01a{n}o")
    return HEADER + "\n".join(lines) + "\n"


def test_columns_given_as_lists_become_float64_arrays_with_nan_for_none():
    photometry = Photometry([60000.5, 60001.5], [18.25, None], [0.05, None], [20.0, 19.5], ["ztfg", "ztfr"], ra=[1.5, None], dec=[None, -2.0])
    for name in ("mjd", "mag", "magerr", "limiting_mag", "ra", "dec"):
        column = getattr(photometry, name)
        assert isinstance(column, np.ndarray) and column.dtype == np.float64 and column.shape == (2,)
    assert photometry.values("mag") == [18.25, None] and photometry.values("dec") == [None, -2.0]
    assert photometry.values("filter") == ["ztfg", "ztfr"]
    assert (photometry.detections, photometry.summary()) == (1, "2 points (1 detection, 1 upper limit)")


def test_an_array_of_doubles_is_kept_as_given_not_copied():
    mjd = np.array([60000.5, 60001.5])
    assert Photometry(mjd, [None, None], [None, None], [20.0, 20.0], ["ztfg", "ztfg"]).mjd is mjd


@pytest.mark.parametrize(
    ("column", "value", "rule"),
    [("mag", ["bright"], "not a number"), ("limiting_mag", [{"x": 1}], "not a number"), ("mjd", [[1.0, 2.0]], "one-dimensional")],
)
def test_a_column_that_is_not_numbers_is_refused_by_name(column, value, rule):
    columns = {"mjd": [1.0], "mag": [None], "magerr": [None], "limiting_mag": [19.0], "filter": ["ztfg"]} | {column: value}
    with pytest.raises(ValueError, match=f"'{column}'.*{rule}"):
        Photometry(**columns)


def test_upload_bodies_are_columnar_json_with_null_for_nan_and_exact_values():
    mjd = np.array([60000.123456789012, 60000.1 + 0.2, 1e-7, -0.0])
    photometry = Photometry(mjd, [16.5, None, math.nan, 18.0], [0.01, None, None, 0.2], [20.0] * 4, ["atlaso", "atlasc", "atlaso", "atlasc"], origin="fp")
    (upload,) = photometry.uploads("ZTF26aa", 11, group_ids=[5, 2, 5])
    assert isinstance(upload, bytes)
    body = json.loads(upload)
    fixed = {"obj_id": "ZTF26aa", "instrument_id": 11, "magsys": "ab", "origin": "fp", "group_ids": [2, 5]}
    assert {name: body[name] for name in fixed} == fixed
    assert body["mag"] == [16.5, None, None, 18.0] and body["magerr"] == [0.01, None, None, 0.2]
    assert [bits(value) for value in body["mjd"]] == [bits(value) for value in mjd.tolist()]  # -0.0 included
    assert "ra" not in body and b"NaN" not in upload


def test_uploads_split_every_column_at_max_rows_in_order():
    count = 25
    photometry = Photometry(
        np.arange(count, dtype=float), [None] * count, [None] * count, np.full(count, 20.0), ["ztfg"] * count,
        origin=[f"o{n}" for n in range(count)], altdata=[{"n": n} for n in range(count)],
    )  # fmt: skip
    bodies = [json.loads(upload) for upload in photometry.uploads("ZTF1", 3, max_rows=10)]
    assert [len(body["mjd"]) for body in bodies] == [10, 10, 5]
    for name in ("mjd", "mag", "limiting_mag", "filter"):
        assert [value for body in bodies for value in body[name]] == photometry.values(name)
    assert [value for body in bodies for value in body["origin"]] == [f"o{n}" for n in range(count)]
    assert [value["n"] for body in bodies for value in body["altdata"]] == list(range(count))
    assert all(body["obj_id"] == "ZTF1" and body["instrument_id"] == 3 for body in bodies)
    assert [json.loads(upload)["mjd"] for upload in Photometry([], [], [], [], []).uploads("ZTF1", 3)] == [[]]  # one, empty


def test_the_encoder_writes_strided_arrays_fragments_and_names_what_it_cannot_write():
    written = encode({"a": np.arange(7.0)[::3], 1: Fragment(b'{"kept":[1, 2]}'), "n": [math.nan, math.inf]})
    assert written == b'{"a":[0.0,3.0,6.0],"1":{"kept":[1, 2]},"n":[null,null]}'
    assert encode_text({"text": "Ωmega"}) == '{"text":"Ωmega"}'
    with pytest.raises(TypeError, match="set"):
        encode({"bad": {1, 2}})


def test_an_atlas_result_read_column_wise_holds_no_python_object_per_point():
    text = atlas_file(20_000)
    with mock.patch.object(results, "COLUMNS_FROM", 0):
        parse_results(atlas_file(20))  # numpy's first calls allocate their own caches
        before = sys.getallocatedblocks()
        photometry = parse_results(text)
        held = sys.getallocatedblocks() - before
    assert len(photometry) == 20_000 and photometry.detections == 13_333
    assert all(isinstance(getattr(photometry, name), np.ndarray) for name in ("mjd", "mag", "magerr", "limiting_mag", "ra", "dec"))
    assert held < 1_000  # a list of floats would hold 20,000 blocks a column
    uploads = photometry.uploads("ZTF1", 3)
    assert [len(json.loads(upload)["mjd"]) for upload in uploads] == [10_000, 10_000]


class RecordingClient:
    """Stands in for ``SkyPortalClient``: keeps what the deliverer sends."""

    def __init__(self, sent: list[tuple[str, object]]):
        self.sent = sent
        self.transport = mock.Mock()  # closed by the deliverer

    def put_photometry(self, body: bytes) -> list[int]:
        self.sent.append(("photometry", body))
        return []

    def post_status(self, followup_request_id: int, new_status: str) -> None:
        self.sent.append(("status", new_status))


def test_the_gateway_stores_each_upload_as_encoded_and_sends_those_very_bytes(gateway_store):
    from facility_apis.core.interface import Target
    from facility_apis.core.outcome import Outcome, State
    from facility_apis.gateway.outbox import Deliverer

    owner = gateway_store.clients.authenticate(gateway_store.clients.add("columns"))
    gateway_store.allocations.put(owner, 7, "atlas", {"api_token": "FAKE-token-columns"}, instrument_id=1, group_ids=[3])
    gateway_store.requests.add(7, Target("ZTF26cols", 10.0, -5.0), {"use_reduced": False}, followup_request_id=11, remote_id="t/1")
    count = 25_000
    mag = np.where(np.arange(count) % 4 == 0, np.nan, 17.0 + np.arange(count) / 1e5)
    photometry = Photometry(60000.0 + np.arange(count) / 7, mag, mag / 100, np.full(count, 20.5), ["ztfg"] * count, origin="fp")
    uploads = photometry.uploads("ZTF26cols", 1, [3])
    (job,) = gateway_store.jobs.claim("w", 10, lease=30)
    assert gateway_store.jobs.record(job, Outcome(State.COMPLETED, "done", remote_id="t/1", photometry=photometry), can_poll=True)

    (first,) = gateway_store.outbox.claim("peek", 10, 0.001)  # one message at a time per request
    assert (first.kind, first.body) == ("photometry", uploads[0].decode())  # the text as encoded, not decoded
    sent: list[tuple[str, object]] = []
    deliverer = Deliverer(gateway_store, lambda: RecordingClient(sent))
    try:
        time.sleep(0.01)  # the peek's lease ends
        assert deliverer.run_until_empty(timeout=30)
    finally:
        deliverer.close()
    assert sent == [("photometry", upload) for upload in uploads] + [("status", "complete: done")]


def test_ra_and_dec_go_together_and_a_missing_column_is_named():
    with pytest.raises(ValueError, match="'ra' and 'dec' go together"):
        Photometry([1.0], [None], [None], [19.0], ["ztfg"], ra=[1.0])
    with pytest.raises(KeyError, match="no column 'ra'"):
        Photometry([1.0], [None], [None], [19.0], ["ztfg"]).values("ra")


@pytest.mark.parametrize("rows", [20, 400])  # row by row, column-wise
def test_both_parse_paths_give_contiguous_columns_the_encoder_writes_directly(rows):
    photometry = parse_results(atlas_file(rows))
    assert all(getattr(photometry, name).flags.c_contiguous for name in ("mjd", "mag", "magerr", "limiting_mag", "ra", "dec"))
