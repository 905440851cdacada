"""``python -m maskface`` runs the command line."""

from maskface.apps.cli import main

main()
