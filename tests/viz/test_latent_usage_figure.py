"""kl_per_dim.png from a run's latent_stats.json and history.csv alone."""

from __future__ import annotations

import numpy as np
from PIL import Image

from genlab.viz.latent_usage import active_units_per_epoch, kl_per_dim_figure

ROWS = [  # history.csv rows as csv.DictReader gives them; eval rows and train rows carry no count
    {"scope": "step", "split": "train", "epoch": "0", "step": "1", "loss": "3"},
    {"scope": "epoch", "split": "train", "epoch": "0", "step": "6", "loss": "2"},
    {"scope": "epoch", "split": "val", "epoch": "0", "step": "6", "loss": "2", "active_units": "5"},
    {"scope": "eval", "split": "val", "epoch": "1", "step": "9", "loss": "2", "active_units": ""},
    {"scope": "epoch", "split": "val", "epoch": "1", "step": "12", "loss": "1", "active_units": "3"},
]


def test_active_units_per_epoch_reads_end_of_epoch_validation_rows():
    assert active_units_per_epoch(ROWS) == ([1, 2], [5, 3])
    assert active_units_per_epoch([]) == ([], [])


def test_figure_is_drawn_for_large_and_small_latent_spaces(tmp_path):
    for dims in (6, 128):  # indices under the bars only where they can be read
        kl = [float(i % 7) for i in range(dims)]
        stats = {"kl_per_dim": kl, "mean_variance": [0.5 if k else 0.0 for k in kl], "threshold": 0.01,
                 "epoch": 1, "step": 12}
        path = kl_per_dim_figure(stats, ROWS, tmp_path / f"kl_{dims}.png", title="tiny: latent usage")
        img = Image.open(path)
        assert img.size[0] > 1000 and img.size[1] > 350
        assert np.asarray(img.convert("L")).std() > 5  # something was drawn
    path = kl_per_dim_figure(stats, [], tmp_path / "no_history.png")  # a run folder without history.csv
    assert path.is_file()
