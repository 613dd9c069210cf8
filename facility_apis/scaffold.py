"""``facility-apis new NAME``: the files of a new facility, written from the templates in
``facility_apis/templates/new_facility``, that pass the conformance suite as they stand.

In a checkout of this package (the default) it writes::

    facility_apis/facilities/<name>.py           the class (a JSON REST queue to adapt)
    facility_apis/schemas/<name>/altdata.json    the allocation form (one secret: api_key)
    facility_apis/schemas/<name>/request.json    the request form (one field: exposure_time)
    tests/test_<name>.py                         exact calls and statuses with ``responses``
    docs/facilities/<name>.md                    the docs page skeleton

and prints the one line each that registers it (``BUILTINS``) and lists its page (the docs
index). With ``--package DIR`` it writes a package of its own instead, registered through the
``skyportal.facility_apis`` entry-point group, whose tests also run the conformance suite.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .core.interface import NAME_RULE

TEMPLATES = "templates/new_facility"


class ScaffoldError(ValueError):
    """The name is unusable or a file to write already exists."""


@dataclass(frozen=True)
class Names:
    """Every name a new facility's files use, derived from its registry name."""

    name: str
    title: str
    package: str | None = None

    @property
    def class_name(self) -> str:
        return "".join(part.capitalize() for part in self.name.split("_")) + "Facility"

    @property
    def skyportal_class(self) -> str:
        return self.name.upper().replace("_", "") + "API"

    @property
    def module(self) -> str:
        return f"{self.package}.facility" if self.package else f"facility_apis.facilities.{self.name}"

    @property
    def schema_package(self) -> str:
        return self.package or "facility_apis"

    def values(self, *, conformance: str) -> dict[str, str]:
        return {
            "name": self.name,
            "title": self.title,
            "summary": f"the {self.title} follow-up facility.",
            "class_name": self.class_name,
            "skyportal_class": self.skyportal_class,
            "module": self.module,
            "schema_package": self.schema_package,
            "conformance": conformance,
        }


def _render(template: str, values: dict[str, str]) -> str:
    text = resources.files("facility_apis").joinpath(TEMPLATES, template).read_text(encoding="utf-8")
    return string.Template(text).substitute(values)


def _plan(names: Names, root: Path) -> dict[Path, str]:
    """Path → content of every file to write."""
    if names.package:
        conformance = f"TestConformance = conformance_suite({names.class_name})\n\n"
        code = root / names.package
        tests, docs = root / "tests", root / "docs"
        init = f'"""{names.title}, a facility_apis follow-up facility."""\n\nfrom .facility import {names.class_name}\n\n__all__ = ["{names.class_name}"]\n'
        files = {
            code / "__init__.py": init,
            code / "facility.py": "facility.py.tmpl",
            root / "pyproject.toml": _pyproject(names),
        }
    else:
        conformance = "# The conformance suite runs on every registered facility in tests/test_conformance.py.\n"
        code = root / "facility_apis" / "facilities"
        tests, docs = root / "tests", root / "docs"
        files = {code / f"{names.name}.py": "facility.py.tmpl"}
        code = root / "facility_apis"
    schemas = code / "schemas" / names.name
    files |= {
        schemas / "altdata.json": "altdata.json.tmpl",
        schemas / "request.json": "request.json.tmpl",
        tests / f"test_{names.name}.py": "test_facility.py.tmpl",
        docs / "facilities" / f"{names.name}.md": "page.md.tmpl",
    }
    values = names.values(conformance=conformance)
    return {path: _render(content, values) if content.endswith(".tmpl") else content for path, content in files.items()}


def _pyproject(names: Names) -> str:
    return f'''[build-system]
requires = ["hatchling>=1.18"]
build-backend = "hatchling.build"

[project]
name = "{names.package.replace("_", "-")}"
version = "0.1.0"
description = "{names.title}: a follow-up facility for SkyPortal, built on facility_apis"
requires-python = ">=3.11"
dependencies = ["facility-apis"]

[project.entry-points."skyportal.facility_apis"]
{names.name} = "{names.module}:{names.class_name}"
'''


def scaffold(name: str, *, title: str | None = None, root: str | Path = ".", package: str | None = None) -> list[Path]:
    """Write the new facility's files below ``root``; return their paths. ``ScaffoldError``
    when ``name`` breaks the registry rule or any file already exists (nothing is written then)."""
    if not NAME_RULE.fullmatch(name):
        raise ScaffoldError(f"{name!r} is not a facility name: lowercase letters, digits and _, starting with a letter")
    if package is not None and not package.isidentifier():
        raise ScaffoldError(f"{package!r} is not a Python package name")
    names = Names(name, title or name.replace("_", " ").title(), package)
    root = Path(root)
    plan = _plan(names, root)
    existing = [str(path) for path in plan if path.exists()]
    if existing:
        raise ScaffoldError("refusing to overwrite: " + ", ".join(existing))
    for path, text in plan.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return list(plan)


def next_steps(name: str, *, package: str | None = None) -> list[str]:
    """What to do after ``scaffold``, in words."""
    names = Names(name, name, package)
    if package:
        return [
            f"pip install -e <dir>  # registers '{name}' through the skyportal.facility_apis entry point",
            "pytest <dir>/tests    # your tests and the conformance suite",
        ]
    return [
        f'add to BUILTINS in facility_apis/core/registry.py:   "{name}": "{names.module}:{names.class_name}",',
        f"add to the Facilities toctree in docs/index.md:      facilities/{name}",
        f"add a row for {names.skyportal_class} to the class table in docs/skyportal.md",
        f"bash scripts/test.sh -q tests/test_{name}.py tests/test_conformance.py",
    ]
