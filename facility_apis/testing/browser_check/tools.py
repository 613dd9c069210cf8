"""What the check needs on the machine: Node.js, Debian's Chromium, and the locked npm packages."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from .paths import BROWSER

DEFAULT_CHROMIUM = "/usr/bin/chromium"


def chromium_path() -> str:
    """Debian's Chromium, or the one the ``CHROMIUM`` environment variable names."""
    return os.environ.get("CHROMIUM", DEFAULT_CHROMIUM)


def node_modules_current(browser: Path = BROWSER) -> bool:
    """Whether ``browser/node_modules`` holds what the lock file asks for (npm records what it
    installed in ``node_modules/.package-lock.json``; other platforms' optional packages aside)."""
    installed_path = browser / "node_modules" / ".package-lock.json"
    if not installed_path.exists():
        return False
    wanted = json.loads((browser / "package-lock.json").read_text())["packages"]
    installed = json.loads(installed_path.read_text())["packages"]
    return all(installed.get(name, {}).get("version") == spec.get("version") for name, spec in wanted.items() if name and not spec.get("optional"))


def missing_tools(browser: Path = BROWSER) -> list[str]:
    """What this machine lacks to run the check, in words (empty when it can run)."""
    missing = []
    if shutil.which("node") is None:
        missing.append("node (Debian package nodejs)")
    if not os.access(chromium_path(), os.X_OK):
        missing.append(f"Chromium at {chromium_path()} (Debian package chromium; or set CHROMIUM)")
    if not node_modules_current(browser) and shutil.which("npm") is None:
        missing.append("npm, to install browser/package-lock.json")
    return missing


def install(browser: Path = BROWSER) -> None:
    """``npm ci`` in ``browser/`` when ``node_modules`` does not match the lock file."""
    if node_modules_current(browser):
        return
    print("browser check: installing browser/package-lock.json (npm ci)", flush=True)
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=browser, check=True)
