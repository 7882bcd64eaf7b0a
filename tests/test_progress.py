"""The bar of images drawn: batches pass through unchanged, and the bar counts their images to the total."""

from __future__ import annotations

import tqdm.auto

from genlab.progress import counted


class RecordingBar:
    made: list[RecordingBar] = []

    def __init__(self, **kwargs):
        self.kwargs, self.n = kwargs, 0
        RecordingBar.made.append(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.closed = True

    def update(self, k: int) -> None:
        self.n += k


def test_batches_pass_through_and_the_bar_counts_their_images(monkeypatch):
    monkeypatch.setattr(tqdm.auto, "tqdm", RecordingBar)
    batches = [[1, 2, 3], [4, 5], [6]]
    assert list(counted(iter(batches), 6, "drawing samples")) == batches
    bar = RecordingBar.made[-1]
    assert (bar.n, bar.kwargs["total"], bar.kwargs["desc"], bar.closed) == (6, 6, "drawing samples", True)
    assert bar.kwargs["disable"] is None  # tqdm's own choice: a terminal or a notebook, never a log file


def test_a_size_function_counts_tuples():
    pairs = [(0, "ab"), (1, "cde")]
    assert list(counted(pairs, 5, "x", size=lambda b: len(b[1]))) == pairs
