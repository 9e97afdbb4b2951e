"""Paths as users give them, resolved once where they enter amasskit (the CLI and each public entry point).

A user types ``~/amass``, ``./poses``, ``../stores``, a path through a symlink, or a relative path from another
working directory than an earlier run's. Each public function and each command turns what it is given into one
absolute, resolved :class:`~pathlib.Path` with :func:`user_path` before doing anything with it, so that messages,
manifests and the comparisons that decide whether a rerun is the same experiment all see the same path for the same
file. Config files (YAML/JSON) resolve their relative paths against the file's own folder
(:func:`config_path`), as users expect of a file they keep beside their data.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import InvalidArgumentError

__all__ = ["PATH_KEYS", "config_path", "resolve_fields", "user_path"]

#: config-file keys that hold paths, in every config amasskit reads (prepare, prior poses, prior data, prior train)
PATH_KEYS: frozenset[str] = frozenset({"catalog", "out", "body_models", "data", "val_data", "clean", "poses"})


def user_path(path: str | os.PathLike[str]) -> Path:
    """``path`` as the user means it: ``~`` (and ``~user``) expanded, made absolute against the current working
    directory, ``..`` and symlinks resolved. The path need not exist.

    Raises:
        InvalidArgumentError: an empty path (an empty string would silently mean the working directory).
    """
    text = os.fspath(path)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if not text:
        raise InvalidArgumentError("an empty path was given")
    return Path(os.path.expanduser(text)).resolve()


def config_path(value: str | os.PathLike[str], base: str | os.PathLike[str]) -> Path:
    """A path written in a config file in the folder ``base``: ``~`` and ``$VARS`` expanded, then relative paths
    taken from ``base`` (not from the working directory), resolved as :func:`user_path` does."""
    text = os.path.expandvars(os.path.expanduser(os.fspath(value)))
    if not text:
        raise InvalidArgumentError("an empty path was given")
    return user_path(Path(base) / text)


def resolve_fields(config: object, keys: tuple[str, ...]) -> None:
    """Replace each of ``keys`` of the frozen dataclass ``config`` that holds a path (a non-empty ``str`` or
    path-like) by its resolved form, as a ``str`` (:func:`user_path`); other values are left for the config's own
    checks to name. Configs call it first in ``__post_init__``, so two configs of the same files compare equal."""
    for key in keys:
        value = getattr(config, key)
        if isinstance(value, (str, os.PathLike)) and os.fspath(value):
            object.__setattr__(config, key, str(user_path(value)))
