"""``python -m miragelab`` runs the ``mirage`` command line."""

from miragelab.cli import main

main()
