"""``python -m amasskit`` runs the command line."""

from .cli.main import main

main()
