"""``python -m effowt`` (also what ``torchrun -m effowt`` runs)."""

import sys

from effowt.cli import main

sys.exit(main())
