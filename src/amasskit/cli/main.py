"""The ``amasskit`` command: a thin Typer layer. Every command calls one library function and formats its result.

One module per area registers its commands on :data:`app`: ``files`` (info), ``synth``, ``unpack``, ``catalog``
(``catalog scan``, ``catalog stats``, ``split``), ``prepare``, ``store`` (``store stats``, ``store export``),
``previews`` (render, view), ``body`` (joints, mesh), ``convert``, ``demo``.

Errors from amasskit are printed as ``ErrorType: message`` (no traceback; ``-v`` adds it) and give exit code 1.
"""

from __future__ import annotations

import importlib

from ._app import app

# each module registers its commands on import; this order is the order of `amasskit --help`
for _module in (
    "files",
    "synth",
    "unpack",
    "catalog",
    "prepare",
    "store",
    "previews",
    "body",
    "convert",
    "prior",
    "humanml3d",
    "demo",
):
    importlib.import_module(f"{__package__}.{_module}")

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
