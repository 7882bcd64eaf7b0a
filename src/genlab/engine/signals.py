"""SIGINT and SIGTERM as a flag the loop checks at step boundaries, so an interrupted run saves first."""

from __future__ import annotations

import contextlib
import os
import signal

EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143}
# Set by a supervisor that stops this process itself (genlab sweep): a repeated signal is then not "now",
# since the supervisor escalates to SIGKILL on its own, and the kernel may deliver one stop twice.
SUPERVISED_ENV = "GENLAB_SUPERVISED"


def supervised() -> bool:
    return os.environ.get(SUPERVISED_ENV) == "1"


class Signals:
    """Turns SIGINT/SIGTERM into a flag checked at step boundaries (main thread only).

    A second signal means "now" for a single process. Under torchrun it does not: a worker commonly gets
    the same signal twice at once (from SLURM, which signals every process of a job step, and again from
    torchrun, which forwards it), and torchrun's own shutdown (SIGKILL 30 s after its signal) bounds the wait.
    """

    def __init__(self, repeat_aborts: bool = True):
        self.received: str | None = None
        self.repeat_aborts = repeat_aborts
        self._old: dict[int, object] = {}

    def __enter__(self):
        with contextlib.suppress(ValueError):  # not in the main thread: leave handlers alone
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.received and self.repeat_aborts:  # a second Ctrl-C means "now"
            raise KeyboardInterrupt
        self.received = self.received or signal.Signals(signum).name

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
