"""The gateway's verbs and configuration: keys, clients, refusing to start without a key, the
config file's errors, and ``serve`` answering over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import requests

from facility_apis.cli import main
from facility_apis.core.errors import ConfigurationError
from facility_apis.core.registry import default_registry
from facility_apis.gateway.config import GatewayConfig
from facility_apis.gateway.crypto import KEY_ENV, generate_key
from facility_apis.gateway.pacing import Rate


@pytest.fixture
def key_env(monkeypatch, secret_key):
    monkeypatch.setenv(KEY_ENV, secret_key)
    return secret_key


def test_keygen_prints_a_usable_key(capsys):
    assert main(["keygen"]) == 0
    key = capsys.readouterr().out.strip()
    assert GatewayConfig.load(database_url="sqlite://", environ={KEY_ENV: key}).secret_key == key


def test_the_gateway_refuses_to_start_without_a_key(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    assert main(["client", "add", "someone", "--data-dir", str(tmp_path)]) == 1
    assert "no encryption key for allocation credentials: set FACILITY_APIS_SECRET_KEY" in capsys.readouterr().err
    assert not (tmp_path / "gateway.db").exists()
    with pytest.raises(ConfigurationError, match="must decode to 32 bytes"):
        GatewayConfig.load(database_url="sqlite://", environ={KEY_ENV: "c2hvcnQ="})


def test_client_add_prints_a_token_that_authenticates(tmp_path, capsys, key_env):
    assert main(["client", "add", "skyportal-prod", "--data-dir", str(tmp_path)]) == 0
    token = capsys.readouterr().out.strip()
    from facility_apis.gateway.service import open_store

    store = open_store(GatewayConfig.load(data_dir=tmp_path))
    try:
        assert store.clients.authenticate(token) is not None
    finally:
        store.close()
    assert main(["client", "add", "skyportal-prod", "--data-dir", str(tmp_path)]) == 1
    assert "already exists" in capsys.readouterr().err


def test_config_file_errors_name_the_field(tmp_path):
    path = tmp_path / "gateway.json"
    path.write_text(json.dumps({"worker": {"concurrency": 0}, "facilities": {"atlas": {"min_interval": "fast"}}, "colour": "blue"}))
    with pytest.raises(ConfigurationError) as caught:
        GatewayConfig.load(path, environ={KEY_ENV: generate_key()})
    message = str(caught.value)
    assert "worker.concurrency" in message and "facilities.atlas.min_interval" in message and "colour" in message
    path.write_text("{not json")
    with pytest.raises(ConfigurationError, match="is not JSON"):
        GatewayConfig.load(path, environ={KEY_ENV: generate_key()})


def test_config_file_values_and_secrets_from_the_environment(tmp_path):
    path = tmp_path / "gateway.json"
    path.write_text(
        json.dumps(
            {
                "database_url": "postgresql+psycopg://gw:pw-8812@db.example.org/gateway",
                "skyportal": {"url": "https://skyportal.example.org"},
                "facilities": {"atlas": {"base_url": "https://atlas.example.org/forcedphot", "concurrency": 4, "min_interval": 0.2}},
                "worker": {"concurrency": 16, "horizon_hours": 24},
                "listen": {"port": 9000},
            }
        )
    )
    with pytest.raises(ConfigurationError, match=r"skyportal\.url is set but no token"):
        GatewayConfig.load(path, environ={KEY_ENV: generate_key()})
    config = GatewayConfig.load(path, environ={KEY_ENV: generate_key(), "FACILITY_APIS_SKYPORTAL_TOKEN": "sp-token-991"})
    assert config.facility_config() == {"atlas": {"base_url": "https://atlas.example.org/forcedphot"}}
    assert (config.worker.concurrency, config.worker.limits["atlas"].concurrency, config.worker.limits["atlas"].min_interval) == (16, 4, 0.2)
    assert (config.schedule.horizon, config.port, config.skyportal_token) == (86400.0, 9000, "sp-token-991")
    assert "pw-8812" not in repr(config) and "sp-token-991" not in repr(config)


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://skyportal.example.org", "credentials may travel only over https (plain http only to a loopback address), not to skyportal.example.org"),
        ("ftp://skyportal.example.org", "the scheme 'ftp' is not allowed"),
    ],
)
def test_a_skyportal_url_the_token_may_not_travel_to_stops_the_gateway_at_start(tmp_path, url, rule):
    """Every delivery carries the SkyPortal token: with plain http off loopback, all statuses would
    go undelivered (a newcomer's gateway started and every message went dead), so loading refuses
    it naming the key; http to a loopback SkyPortal is fine."""
    path = tmp_path / "gateway.json"
    environ = {KEY_ENV: generate_key(), "FACILITY_APIS_SKYPORTAL_TOKEN": "sp-token-991"}
    path.write_text(json.dumps({"skyportal": {"url": url}}))
    with pytest.raises(ConfigurationError) as caught:
        GatewayConfig.load(path, environ=environ)
    assert "skyportal.url: " + rule in str(caught.value) and "sp-token-991" not in str(caught.value)
    path.write_text(json.dumps({"skyportal": {"url": "http://127.0.0.1:5000"}}))
    assert GatewayConfig.load(path, environ=environ).skyportal_url == "http://127.0.0.1:5000"


def test_serve_answers_health_with_a_client_token(tmp_path, key_env):
    env = dict(os.environ, **{KEY_ENV: key_env})
    data = ["--data-dir", str(tmp_path)]
    command = [sys.executable, "-m", "facility_apis"]
    token = subprocess.run([*command, "client", "add", "ops", *data], env=env, capture_output=True, text=True, check=True).stdout.strip()
    process = subprocess.Popen([*command, "serve", *data, "--port", "0"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert line.startswith("gateway listening on http://127.0.0.1:"), process.stderr.read()
        url = line.split()[-1]
        assert requests.get(f"{url}/api/health", timeout=5).status_code == 401
        health = requests.get(f"{url}/api/health", headers={"Authorization": f"token {token}"}, timeout=5).json()
        assert health["status"] == "success" and health["data"]["outbox_backlog"] == 0
    finally:
        process.terminate()
        started = time.monotonic()
        assert process.wait(20) == 0 and time.monotonic() - started < 20


@pytest.mark.parametrize(
    ("facilities", "message"),
    [
        ({"atlsa": {}}, "facilities.atlsa: no facility of that name; known facilities: atlas, "),
        ({"atlas": {"pol_interval": 5}}, "facilities.atlas: atlas: unknown setting(s) pol_interval; known: base_url, poll_interval"),
        ({"kait": {"base_url": "http://kait.example.org/x"}}, "facilities.kait: the configured KAIT base_url is refused: credentials may travel only"),
    ],
)
def test_a_facility_setting_the_gateway_cannot_use_stops_it_at_start(tmp_path, facilities, message):
    """A newcomer's misspelt facility and key started silently, the defaults staying in force; a
    plain-http KAIT URL was refused only when an allocation was saved."""
    from facility_apis.gateway.service import Gateway

    path = tmp_path / "gateway.json"
    path.write_text(json.dumps({"facilities": facilities}))
    config = GatewayConfig.load(path, data_dir=tmp_path / "data", environ={KEY_ENV: generate_key()})
    with pytest.raises(ConfigurationError) as caught:
        Gateway(config)
    assert str(caught.value).startswith(message)
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").iterdir()), "nothing created before the refusal"


def test_facility_rates_are_configured_per_scope_over_the_documented_ones(tmp_path):
    path = tmp_path / "gateway.json"
    path.write_text(json.dumps({"facilities": {"atlas": {"read_rate": "300/60"}, "fink_fp": {"write_rate": [5, 1.5], "read_rate": None}}}))
    config = GatewayConfig.load(path, environ={KEY_ENV: generate_key()})
    assert config.facility_config() == {"atlas": {}, "fink_fp": {}}  # the worker's keys, not the facility's
    atlas = config.worker.limits["atlas"].over(default_registry().get("atlas").rate_limits)
    assert atlas.rates == {"read": Rate(300, 60.0), "write": Rate(60, 60.0)}  # ATLAS documents 60 writes a minute
    assert config.worker.limits["fink_fp"].over({"read": (1, 1.0)}).rates == {"write": Rate(5, 1.5)}  # null: no read rate


@pytest.mark.parametrize("value", ["0/60", "600/0", [600], [True, 60], "fast"])
def test_a_rate_that_is_no_rate_names_the_key(tmp_path, value):
    path = tmp_path / "gateway.json"
    path.write_text(json.dumps({"facilities": {"atlas": {"read_rate": value}}}))
    with pytest.raises(ConfigurationError, match=r"facilities\.atlas\.read_rate"):
        GatewayConfig.load(path, environ={KEY_ENV: generate_key()})
