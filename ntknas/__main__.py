"""``python -m ntknas`` runs the command line."""

from ntknas.cli import main

main()
