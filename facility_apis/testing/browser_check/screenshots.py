"""The form screenshots in the docs: rewritten only when the form they show changed."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .paths import MARKUP_DIGESTS, SCREENSHOTS

# Defaults move with the clock ("the last 30 days"): dates and times are masked.
_DATES = re.compile(r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?Z?)?")
# React's useId ids ("_r_1f_") count every component the page mounted before: masked, so a
# form's markup does not depend on which forms the same page checked first.
_REACT_IDS = re.compile(r"_r_[0-9a-z]+_")
# MUI mounts an invisible ripple container in a button on the first pointer event near it, which
# may come before the picture or not: left out.
_IDLE_RIPPLE = re.compile(r'<span class="MuiTouchRipple-root[^"]*"></span>')


def markup_digest(markup: str, versions: Mapping[str, Any]) -> str:
    """The form's markup with dates and React's generated ids masked and MUI's idle ripple left
    out, plus the renderer's package versions (not Chromium's): what decides whether a committed
    screenshot still shows the form."""
    masked = _IDLE_RIPPLE.sub("", _REACT_IDS.sub("ID", _DATES.sub("DATE", markup)))
    text = masked + json.dumps({k: versions[k] for k in sorted(versions) if k != "chromium"})
    return hashlib.sha256(text.encode()).hexdigest()


def keep_screenshots(results: Mapping[str, Any], shot_dir: Path, target: Path = SCREENSHOTS) -> dict[str, str]:
    """Copy each screenshot of ``results`` from ``shot_dir`` into ``target`` when its form's markup
    changed or it is missing there; returns ``{file name: "unchanged" | "updated" | "added"}``."""
    digests_path = target / MARKUP_DIGESTS.name
    digests = json.loads(digests_path.read_text()) if digests_path.exists() else {}
    states = {}
    for run in results["runs"]:
        untouched = run["untouched"]
        if not untouched.get("screenshot") or untouched.get("markup") is None:
            continue
        name = f"{run['facility']}-{untouched['screenshot']}.png"
        digest = markup_digest(untouched["markup"], results.get("versions", {}))
        if (target / name).exists() and digests.get(name) == digest:
            states[name] = "unchanged"
            continue
        states[name] = "updated" if (target / name).exists() else "added"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot_dir / name, target / name)
        digests[name] = digest
    if any(state != "unchanged" for state in states.values()):
        digests_path.write_text(json.dumps(dict(sorted(digests.items())), indent=2) + "\n")
    return states
