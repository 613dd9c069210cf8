"""The Fink emulator answers ``/api/v1/fp`` as Fink's documentation and API code describe: the
documented example calls work against it, in every format, with ids that a float would change."""

import io
import json

import pytest
import requests

from facility_apis.testing.fink import FinkEmulator

BIG, OTHER = "313761043604045880", "313699514821640259"
COLUMNS = "r:diaSourceId,r:midpointMjdTai,r:psfFlux,r:psfFluxErr"


@pytest.fixture
def fink():
    with FinkEmulator() as emulator:
        emulator.add_object(BIG, points=24)
        emulator.add_object(OTHER, points=6)
        yield emulator


def post(fink, **body):
    return requests.post(f"{fink.url}/api/v1/fp", json=body, timeout=5)


def test_the_documented_json_example(fink):
    pd = pytest.importorskip("pandas")
    r = post(fink, **{"diaObjectId": BIG, "columns": "r:diaObjectId," + COLUMNS, "output-format": "json"})
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    pdf = pd.read_json(io.BytesIO(r.content))
    assert len(pdf) == 24 and list(pdf.columns) == ["r:diaObjectId", "r:midpointMjdTai", "r:psfFlux", "r:psfFluxErr"]  # r:diaSourceId is unknown: ignored
    assert pdf["r:psfFlux"].isna().sum() == 3  # NaN fluxes travel as null


def test_the_documented_csv_and_parquet_examples_and_several_objects(fink):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    csv = post(fink, **{"diaObjectId": ",".join([BIG, OTHER]), "columns": COLUMNS, "output-format": "csv"})
    assert csv.headers["Content-Type"] == "application/csv" and len(pd.read_csv(io.BytesIO(csv.content))) == 30
    parquet = post(fink, **{"diaObjectId": BIG, "columns": COLUMNS, "output-format": "parquet"})
    assert parquet.headers["Content-Type"] == "parquet" and len(pd.read_parquet(io.BytesIO(parquet.content))) == 24


def test_query_parameters_work_like_the_json_body(fink):
    r = requests.get(f"{fink.url}/api/v1/fp", params={"diaObjectId": BIG, "output-format": "json"}, timeout=5)
    assert len(r.json()) == 24 and set(r.json()[0]) >= {"r:diaObjectId", "r:band", "r:psfFlux", "r:ra"}  # all columns
    assert requests.get(f"{fink.url}/api/v1/fp", timeout=5).text.startswith("Get forced photometry")


def test_ids_are_written_in_full_and_lose_digits_if_read_as_floats(fink):
    text = post(fink, diaObjectId=BIG, columns="r:diaObjectId").text
    assert f'"r:diaObjectId": {BIG}' in text
    assert json.loads(text)[0]["r:diaObjectId"] == int(BIG)
    assert json.loads(text, parse_int=float)[0]["r:diaObjectId"] != int(BIG)
    assert int(float(BIG)) != int(BIG)


def test_refusals_and_empty_answers(fink):
    missing = post(fink, columns="r:band")
    assert missing.status_code == 400 and missing.text.startswith("{'status': 'error', 'text': 'A value for `diaObjectId` is required.")
    assert post(fink, diaObjectId=BIG, **{"output-format": "xml"}).status_code == 400
    assert post(fink, diaObjectId="12345").json() == []
    assert post(fink, diaObjectId="12345", **{"output-format": "csv"}).text == "\n"
    broken = requests.post(f"{fink.url}/api/v1/fp", data="not json", headers={"Content-Type": "application/json"}, timeout=5)
    assert broken.status_code == 400
    assert [q["diaObjectId"] for q in fink.queries] == ["12345", "12345"]  # refusals are not queries
