"""Classification Accuracy Score: samples that carry their class teach a classifier the real data; samples
that ignore their label teach it nothing."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from genlab.data import load_data
from genlab.device import select_device
from genlab.metrics.cas import METRIC
from genlab.metrics.context import Context, EvalSettings
from genlab.models import capabilities
from genlab.run import LoadedRun, RunDir
from helpers import tiny_config

MODEL = {"name": "cgan", "g_width": 8, "d_width": 8, "latent_dim": 8, "label_dim": 4}


class RealImagesGenerator(nn.Module):
    """Draws real training images: of the requested class, or (ignore_labels) of any class."""

    conditional, num_classes = True, 10

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, ignore_labels: bool):
        super().__init__()
        self.register_buffer("images", images)
        self.labels, self.ignore_labels = labels, ignore_labels
        self.weight = nn.Parameter(torch.zeros(1))

    def sample(self, n: int, generator: torch.Generator | None = None, labels: torch.Tensor | None = None):
        pick = []
        for c in labels.tolist():
            pool = torch.arange(len(self.labels)) if self.ignore_labels else torch.nonzero(self.labels == c)[:, 0]
            pick.append(pool[torch.randint(len(pool), (1,), generator=generator)])
        return self.images[torch.cat(pick)]


@pytest.fixture(scope="module")
def setup():
    cfg = tiny_config(model=MODEL, objective={"kind": "adversarial"}, data={"image_size": 12, "limit": None,
                                                                            "val_limit": None, "hflip": False})
    data = load_data(cfg.data)
    images = torch.cat([b.images for b in _batches(data)])
    return cfg, data, images, torch.from_numpy(data.train.labels)


def _batches(data):
    from genlab.data import BatchLoader

    return BatchLoader(data.train.images, None, batch_size=256, shuffle=False, seed=0,
                       normalizer=data.normalizer).batches()


def _cas(setup, tmp_path, ignore_labels: bool) -> dict:
    cfg, data, images, labels = setup
    model = RealImagesGenerator(images, labels, ignore_labels)
    loaded = LoadedRun(RunDir(tmp_path), cfg, model, data, 1, capabilities("cgan", cfg.model.kwargs(), 10), "last")
    settings = EvalSettings(class_samples=60, cas_recipe={"min_steps": 120})
    return METRIC.compute(Context(loaded, settings, select_device("cpu")))["cas"]


def test_samples_of_their_class_score_near_the_real_data_baseline(setup, tmp_path):
    score = _cas(setup, tmp_path, ignore_labels=False)
    assert score.values["cas_real_baseline"] > 0.8, score.values
    assert score.values["cas"] > score.values["cas_real_baseline"] - 0.15, score.values
    assert score.protocol["n_per_class"] == 60 and score.protocol["n_train_real_baseline"] == 600


def test_samples_that_ignore_their_label_score_near_chance(setup, tmp_path):
    score = _cas(setup, tmp_path, ignore_labels=True)
    assert score.values["cas"] < 0.3 and score.values["cas_real_baseline"] > 0.8, score.values
