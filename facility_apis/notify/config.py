"""Reading the ``notify`` settings: one check for every mapping of them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core.errors import ConfigurationError


def settings_mapping(config: Any, where: str, known: set[str]) -> Mapping[str, Any]:
    """``config`` if it is a mapping whose keys are all ``known``; else ``ConfigurationError``
    naming ``where`` (``notify``, ``notify.smtp``) and the unknown keys."""
    if not isinstance(config, Mapping):
        raise ConfigurationError(f"{where} must be a mapping")
    unknown = sorted(set(config) - known)
    if unknown:
        raise ConfigurationError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return config
