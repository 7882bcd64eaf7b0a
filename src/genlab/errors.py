"""One exception type for everything a user can get wrong.

The CLI prints a `GenlabError` as a single paragraph and exits non-zero; anything else is a bug
and keeps its traceback. Keeping the distinction in one class means a module never has to know
how errors are shown.
"""


class GenlabError(Exception):
    """A problem with the user's input (config, data, run folder), stated as what, where, what is valid."""


class TrainingInterrupted(Exception):
    """Raised by the engine after it saved a checkpoint in response to SIGINT or SIGTERM."""

    def __init__(self, signal_name: str, exit_code: int, checkpoint: str):
        super().__init__(f"{signal_name} received: saved {checkpoint}; resume with --resume")
        self.signal_name = signal_name
        self.exit_code = exit_code
        self.checkpoint = checkpoint


class SweepInterrupted(TrainingInterrupted):
    """A sweep stopped by SIGINT or SIGTERM after each of its running trainings saved a checkpoint."""

    def __init__(self, signal_name: str, exit_code: int, root: str):
        Exception.__init__(self, f"{signal_name} received: every run in progress saved a checkpoint; start the "
                                 f"same genlab sweep again to continue {root}")
        self.signal_name, self.exit_code, self.checkpoint = signal_name, exit_code, root


class NonFiniteLoss(GenlabError):
    """A loss term became NaN or inf; the last good checkpoint is kept."""
