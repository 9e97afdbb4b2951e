"""Reading a YAML or JSON file of settings (prepare configs, split schemes), with errors that name the file; checking a
setting against its choices."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

__all__ = ["check_choice", "load_yaml_or_json"]


def load_yaml_or_json(path: Path, error: Callable[[str], Exception]) -> Any:
    """The parsed content of ``path``: YAML for ``.yaml``/``.yml`` (safe loader), JSON otherwise.

    Args:
        error: makes the exception to raise from a message (the message starts with the path).

    Raises:
        what ``error`` makes: no such file, unreadable, PyYAML missing, not valid YAML or JSON.
    """
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read it: {exc}") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise error(f"{path}: reading YAML needs PyYAML (pip install 'amasskit[config]')") from None
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise error(f"{path}: not valid YAML: {exc}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise error(f"{path}: not valid JSON ({exc}); YAML files end in .yaml or .yml") from None


def check_choice(key: str, value: object, allowed: Iterable[str]) -> None:
    """Raises: ConfigError: ``value`` is not one of ``allowed`` (naming the key)."""
    from ..errors import ConfigError

    names = list(allowed)
    if value not in names:
        raise ConfigError(f"{key} must be one of {', '.join(names)}, got {value!r}", key=key)
