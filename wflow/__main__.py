"""``python -m wflow ...`` runs the ``wflow`` command."""

import sys

from wflow.app.cli import main

sys.exit(main())
