"""Reading a YAML or JSON file of settings (prepare configs, split schemes), with errors that name the file; checking a
setting against its choices."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["check_choice", "config_values", "load_yaml_or_json"]


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


def config_values(
    cls: type, data: object, *, required: Iterable[str] = (), what: str = "config"
) -> dict[str, Any]:
    """The keyword arguments of the dataclass ``cls`` in a parsed config ``data`` (lists become tuples), checked the
    same way for every config amasskit reads: a mapping, no key ``cls`` does not have, every ``required`` key set.

    Raises:
        ConfigError: not a mapping; unknown keys (the known ones named); a required key missing (its flag named).
    """
    from ..errors import ConfigError

    if not isinstance(data, Mapping):
        raise ConfigError(f"a {what} is a mapping of keys to values, got {type(data).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown config keys {unknown}; known: {sorted(known)}", key=str(unknown[0]))
    missing = [k for k in required if data.get(k) is None]
    if missing:
        raise ConfigError(
            f"the {what} needs {' and '.join(missing)} (or --{' and --'.join(missing)})", key=missing[0]
        )
    return {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
