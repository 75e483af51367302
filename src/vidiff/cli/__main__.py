"""``python -m vidiff.cli ...`` (what ``torchrun -m vidiff.cli`` runs)."""

import sys

from . import main

sys.exit(main())
