"""A secret in a deployment's settings, given inline or in a file.

Facilities and the notifier take a password or token as ``<key>`` or, better, as
``<key>_file`` (a file holding it, so that the settings file itself holds no secret)::

    password = secret_setting(config, "password", where="notify.smtp")
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import ConfigurationError


def secret_setting(config: Mapping[str, Any], key: str, *, where: str) -> Any:
    """The value of ``config[key]``, or the content of the file ``config[key + "_file"]`` (its
    final line break dropped), or ``None`` when neither is given. ``ConfigurationError`` naming
    ``<where>.<key>`` (never the value) when both are given or the file cannot be read; the
    caller checks what the value must be."""
    value, path = config.get(key), config.get(f"{key}_file")
    if value is not None and path is not None:
        raise ConfigurationError(f"{where}: give {key} or {key}_file, not both")
    if path is not None:
        try:
            return Path(path).read_text(encoding="utf-8").strip("\r\n")
        except (OSError, TypeError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"{where}.{key}_file cannot be read: {type(exc).__name__}") from None
    return value
