"""`python -m genlab` is the `genlab` command (sweeps start their runs this way, with this interpreter)."""

import sys

from genlab.cli import main

sys.exit(main())
