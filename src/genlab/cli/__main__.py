"""`python -m genlab.cli` (how torchrun starts genlab's processes)."""

import sys

from genlab.cli import main

sys.exit(main())
