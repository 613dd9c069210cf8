"""docs/gateway.md against the code: every key of the configuration file is in its table, and every
field of a follow-up request's ``target`` (and of its photometry points) is listed, saying which
are required."""

import re
from pathlib import Path

from facility_apis.core.schemas import load_schema
from facility_apis.gateway.api_schemas import HostPointBody, TargetBody

GATEWAY = (Path(__file__).resolve().parent.parent / "docs" / "gateway.md").read_text()


def _config_keys(schema, prefix=""):
    for key, spec in (schema.get("properties") or {}).items():
        if key == "facilities":
            yield "facilities.<name>"
        elif spec.get("type") == "object" and spec.get("properties"):
            yield from _config_keys(spec, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def test_every_configuration_key_is_in_the_table():
    table = set(re.findall(r"^\| `([^`]+)` \|", GATEWAY, re.M))
    missing = [key for key in _config_keys(load_schema("gateway/config")) if key not in table]
    assert not missing, f"docs/gateway.md's configuration table lacks {missing}"


def _row(name):
    return next(line for line in GATEWAY.splitlines() if line.startswith(f"| `{name}` |"))


def test_the_target_and_its_photometry_points_are_listed_with_what_is_required():
    for name, body in (("target", TargetBody()), ("target.photometry[]", HostPointBody())):
        required, optional = _row(name).split("Optional:")
        for field_name, spec in body.fields.items():
            where = required if spec.required else optional
            assert f"`{field_name}`" in where, f"docs/gateway.md: {name}.{field_name} must be listed as {'required' if spec.required else 'optional'}"
