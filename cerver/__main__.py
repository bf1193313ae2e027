"""``python -m cerver`` runs the CLI."""

from cerver.cli import main

main()
