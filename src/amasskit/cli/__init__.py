"""The ``amasskit`` command line (Typer). Thin: each command calls one library function."""

from .main import app, main

__all__ = ["app", "main"]
