"""`python -m genlab` is the `genlab` command (sweeps start their runs this way, with this interpreter)."""

from genlab.cli import entry

entry()
