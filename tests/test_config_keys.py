"""Deployment settings, kit-wide: every facility declares the keys it reads (``config_keys``),
accepts each of them, and refuses any other key by name, listing the known ones; the CLI's
``--base-url`` sets the facility's own service-URL key or is refused for a facility with several."""

import json
import re
from pathlib import Path
from typing import ClassVar

import pytest

from facility_apis.cli import facility_settings, main
from facility_apis.core.errors import ConfigurationError
from facility_apis.core.interface import COMMON_CONFIG_KEYS, Facility, Kind, common_config_keys
from facility_apis.core.registry import default_registry

FACILITIES = default_registry().all()
DOCS = Path(__file__).resolve().parent.parent / "docs"

#: A usable value of every setting a facility declares (a new key needs one here).
SAMPLES = {
    "base_url": "https://facility.example.org",
    "archive_url": "https://archive.example.org",
    "poll_interval": 60,
    "notify": {"skyportal_url": "https://skyportal.example.org"},
    "list_period": 3600,
    "list_delay": 300,
    "match_degrees": 1e-5,
    "match_days": 1e-5,
    "busy_wait": 120,
    "output_format": "csv",
    "max_ids_per_call": 5,
    "archive_wait_hours": 6,
    "reduction_level": 91,
    "north_url": "https://gnodb.example.org:8443",
    "south_url": "https://gsodb.example.org:8443",
    "test_servers": True,
    "offset_stars": {"url": "https://skyportal.example.org/api/sources/{obj_id}/offsets", "token": "t0k"},
    "endpoint": "https://sedm.example.org/add_request",
    "contact_email": "pi@example.org",
    "too_api_url": "https://too.example.org/api/v2",
    "xrt_url": "https://xrt.example.org",
    "too_poll_interval": 1800,
    "confirmation_markers": ["Thank you for your submission"],
    "ssh_timeout": 30,
}


@pytest.mark.parametrize("cls", FACILITIES, ids=lambda cls: cls.name)
def test_every_declared_setting_is_accepted_with_a_one_line_meaning(cls):
    assert set(cls.config_keys) <= set(SAMPLES), f"{cls.name}: add a sample of its new setting to SAMPLES"
    for key, meaning in cls.config_keys.items():
        assert meaning.strip() and "\n" not in meaning
        assert cls({key: SAMPLES[key]}).config[key] == SAMPLES[key]
    cls({key: SAMPLES[key] for key in cls.config_keys})  # all at once too


@pytest.mark.parametrize("cls", FACILITIES, ids=lambda cls: cls.name)
def test_an_unknown_setting_is_refused_by_name_listing_the_known_ones(cls):
    with pytest.raises(ConfigurationError) as caught:
        cls({"base_ulr": "https://facility.example.org"})
    message = str(caught.value)
    assert message.startswith(f"{cls.name}: unknown setting(s) base_ulr; known: ")
    assert all(key in message for key in cls.config_keys)


@pytest.mark.parametrize("cls", FACILITIES, ids=lambda cls: cls.name)
def test_the_base_url_key_is_a_declared_setting(cls):
    assert cls.base_url_key is None or cls.base_url_key in cls.config_keys
    if "base_url" in cls.config_keys:
        assert cls.base_url_key == "base_url"


def test_common_settings_mean_one_thing_everywhere():
    for cls in FACILITIES:
        for key in set(cls.config_keys) & set(COMMON_CONFIG_KEYS) - {"poll_interval"}:  # what is polled differs
            assert cls.config_keys[key] == COMMON_CONFIG_KEYS[key], f"{cls.name}.{key}"
    with pytest.raises(KeyError):
        common_config_keys("no_such_setting")


def test_a_facility_class_must_declare_its_settings_as_meanings():
    with pytest.raises(TypeError, match="config_keys = "):

        class Vague(Facility):
            name = "vague"
            title = "Vague"
            kind = Kind.OBSERVATION
            skyportal_class = "VAGUEAPI"
            config_keys: ClassVar[dict[str, str]] = {"base_url": ""}

    with pytest.raises(TypeError, match="base_url_key = None or one of config_keys"):

        class Elsewhere(Facility):
            name = "elsewhere"
            title = "Elsewhere"
            kind = Kind.OBSERVATION
            skyportal_class = "ELSEWHEREAPI"
            base_url_key = "base_url"


def _section(text: str) -> str | None:
    match = re.search(r"^##+ Deployment setting.*?(?=^## )", text, re.M | re.S)
    return match.group(0) if match else None


@pytest.mark.parametrize("cls", FACILITIES, ids=lambda cls: cls.name)
def test_a_facility_page_with_a_settings_section_names_every_setting(cls):
    page = DOCS / "facilities" / f"{cls.name}.md"
    if not page.exists():  # a family's page (lt_ioo -> lt.md) is named by its docs table
        return
    section = _section(page.read_text())
    if section is None:
        return
    missing = [key for key in cls.config_keys if f"`{key}`" not in section]
    assert not missing, f"{page.name}'s settings section does not name {missing}"


# -- the CLI: --config and --base-url ----------------------------------------------------------


def test_base_url_goes_to_the_facilitys_own_key():
    assert facility_settings(default_registry().get("atlas"), None, "https://a.example.org") == {"base_url": "https://a.example.org"}
    assert facility_settings(default_registry().get("sedm"), {}, "https://sedm.example.org/add_request") == {
        "endpoint": "https://sedm.example.org/add_request"
    }


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("swift", "error: --base-url: swift has several service URLs; give archive_url, too_api_url, xrt_url in a --config file instead"),
        ("gemini", "error: --base-url: gemini has several service URLs; give north_url, south_url in a --config file instead"),
        ("mma", "error: --base-url: mma takes no service URL"),
    ],
)
def test_base_url_is_refused_clearly_where_a_facility_has_several_endpoints_or_none(tmp_path, capsys, name, error):
    altdata = tmp_path / "a.json"
    altdata.write_text("{}")
    code = main(["submit", name, "--ra", "10", "--dec", "10", "--altdata", str(altdata), "--base-url", "https://x.example.org", "--dry-run"])
    assert code == 2 and capsys.readouterr().err.strip() == error


def test_a_config_file_with_an_unknown_key_is_refused_naming_it(tmp_path, capsys):
    config, altdata = tmp_path / "c.json", tmp_path / "a.json"
    config.write_text(json.dumps({"base_url": "https://swift.example.org"}))
    altdata.write_text("{}")
    code = main(["submit", "swift", "--ra", "10", "--dec", "10", "--altdata", str(altdata), "--config", str(config), "--dry-run"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: swift: unknown setting(s) base_url; known: archive_url, notify, poll_interval, too_api_url")


def test_a_config_file_sets_a_facilitys_endpoints(tmp_path, capsys):
    config, altdata = tmp_path / "c.json", tmp_path / "a.json"
    config.write_text(json.dumps({"north_url": "https://north.example.org:8443"}))
    altdata.write_text(json.dumps({"user_email": "pi@example.org", "user_key": "k3y-0042", "programid": "GN-2026B-Q-101"}))
    payload = tmp_path / "p.json"
    payload.write_text(json.dumps({"template_ids": "3"}))
    args = ["submit", "gemini", "--ra", "10", "--dec", "10", "--altdata", str(altdata), "--payload", str(payload), "--config", str(config)]
    assert main([*args, "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith("POST https://north.example.org:8443/too?")


def test_base_url_and_config_may_not_disagree(tmp_path, capsys):
    config, altdata = tmp_path / "c.json", tmp_path / "a.json"
    config.write_text(json.dumps({"base_url": "https://one.example.org"}))
    altdata.write_text(json.dumps({"api_token": "t0ken-42"}))
    args = ["submit", "atlas", "--ra", "10", "--dec", "10", "--altdata", str(altdata), "--config", str(config)]
    assert main([*args, "--base-url", "https://two.example.org", "--dry-run"]) == 2
    assert "--base-url and the --config file's base_url differ" in capsys.readouterr().err
