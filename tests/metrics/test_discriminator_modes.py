"""The discriminator's scores in the BatchNorm mode it trained in and in eval mode, held-out and training images.

The case the metric exists for: D trained on real-only and fake-only batches, whose running statistics do
not describe either kind of batch. Here they are set far off on purpose, so eval mode and batch statistics
must disagree, and the default entry must be the batch-statistics one.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from genlab.data import BatchLoader, load_data
from genlab.device import select_device
from genlab.metrics.context import Context, EvalSettings
from genlab.metrics.discriminator import METRIC, discriminator_classification
from genlab.models import build_model, capabilities
from genlab.models.norm_modes import batch_norms, batch_statistics
from genlab.run import LoadedRun, RunDir
from helpers import tiny_config

MODEL = {"name": "dcgan", "g_width": 8, "d_width": 8, "latent_dim": 8}


@pytest.fixture(scope="module")
def gan_and_data():
    """A tiny DCGAN whose D learnt, on real-only and fake-only batches, to tell digits from G's untrained
    samples; then its running statistics are moved far from anything D sees."""
    cfg = tiny_config(model=MODEL, objective={"kind": "adversarial"}, data={"limit": 300, "val_limit": 120,
                                                                            "image_size": 16, "hflip": False})
    data = load_data(cfg.data)
    torch.manual_seed(0)
    model = build_model("dcgan", cfg.model.kwargs(), image_size=16, channels=1)
    opt = torch.optim.Adam(model.discriminator.parameters(), lr=2e-3)
    loader = BatchLoader(data.train.images, None, batch_size=32, shuffle=True, seed=0, normalizer=data.normalizer)
    model.train()
    for epoch in range(6):
        for batch in loader.batches(epoch):
            with torch.no_grad():
                fake = model.sample(len(batch.images))
            loss = (F.binary_cross_entropy_with_logits(model.discriminate(batch.images), torch.ones(len(fake)))
                    + F.binary_cross_entropy_with_logits(model.discriminate(fake), torch.zeros(len(fake))))
            opt.zero_grad()
            loss.backward()
            opt.step()
    for bn in batch_norms(model.discriminator):
        bn.running_mean.fill_(5.0)
        bn.running_var.fill_(1e-2)
    return cfg.model_copy(update={"train": cfg.train.model_copy(update={"batch_size": 32})}), model.eval(), data


def _scores(cfg, model, data, tmp_path):
    caps = capabilities("dcgan", cfg.model.kwargs())
    loaded = LoadedRun(RunDir(tmp_path), cfg, model, data, 1, caps, "last")
    return METRIC.compute(Context(loaded, EvalSettings(), select_device("cpu")))


def test_eval_mode_and_batch_statistics_disagree_and_the_default_is_how_d_trained(gan_and_data, tmp_path):
    cfg, model, data = gan_and_data
    scores = _scores(cfg, model, data, tmp_path)
    default, eval_mode = scores["discriminator_real_vs_fake"], scores["discriminator_real_vs_fake_eval_mode"]
    assert default.protocol["model_mode"].startswith("batch statistics") and "32" in default.protocol["model_mode"]
    assert eval_mode.protocol["model_mode"].startswith("eval")
    assert default.values["d_accuracy"] > 0.9, default.values
    assert abs(default.values["d_accuracy"] - eval_mode.values["d_accuracy"]) > 0.3, (default.values,
                                                                                       eval_mode.values)
    for key in ("discriminator_real_vs_fake_training_images", "discriminator_real_vs_fake_eval_mode_training_images"):
        assert scores[key].protocol["real_split"] == "train" and scores[key].protocol["n_real"] == len(data.val)


def test_batch_statistics_leave_the_running_statistics_and_modes_as_they_were(gan_and_data):
    _, model, data = gan_and_data
    before = {k: v.clone() for k, v in model.discriminator.state_dict().items()}
    loader = BatchLoader(data.val.images, None, batch_size=32, shuffle=False, seed=0, normalizer=data.normalizer)
    discriminator_classification(model, loader, 0, batch_stats=True)
    after = model.discriminator.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not any(m.training for m in model.modules())


def test_batch_statistics_keep_dropout_off():
    net = torch.nn.Sequential(torch.nn.BatchNorm1d(4), torch.nn.Dropout(0.9)).eval()
    with batch_statistics(net):
        assert net[0].training and not net[1].training
        x = torch.randn(64, 4)
        assert torch.equal(net(x), net(x))  # dropout would make two passes differ


def test_a_discriminator_without_batchnorm_gets_one_entry_per_split(tmp_path):
    cfg = tiny_config(model={**MODEL, "d_spectral_norm": True}, objective={"kind": "adversarial"},
                      data={"limit": 64, "val_limit": 40, "image_size": 16})
    data = load_data(cfg.data)
    model = build_model("dcgan", cfg.model.kwargs(), image_size=16, channels=1).eval()
    assert not batch_norms(model.discriminator)
    scores = _scores(cfg, model, data, tmp_path)
    assert set(scores) == {"discriminator_real_vs_fake", "discriminator_real_vs_fake_training_images"}
    assert "no BatchNorm" in scores["discriminator_real_vs_fake"].protocol["model_mode"]


def test_validation_terms_of_the_adversarial_objective_use_the_batch_statistics_d_trained_on(gan_and_data):
    """The history's validation d_real must describe the D the training terms describe, not its eval mode."""
    from genlab.data import Batch
    from genlab.objectives.adversarial import Adversarial, AdversarialConfig
    from genlab.sections import OptimConfig

    _, model, data = gan_and_data
    objective = Adversarial(model, AdversarialConfig(), OptimConfig(), data.normalizer)
    real = next(BatchLoader(data.val.images, None, batch_size=32, shuffle=False, seed=0,
                            normalizer=data.normalizer).batches()).images
    terms = objective.eval_step(Batch(real, None), torch.Generator().manual_seed(0))
    with batch_statistics(model.discriminator):
        expected = torch.sigmoid(model.discriminate(real)).mean()
    assert float(terms["d_real"]) == pytest.approx(float(expected), abs=1e-6)
    assert float(terms["d_real"]) > 0.8 and float(terms["d_fake"]) < 0.2
    with torch.no_grad():  # in eval mode these statistics make D call its fakes real
        assert float(torch.sigmoid(model.discriminate(model.sample(32))).mean()) > 0.8


def test_a_wasserstein_critic_is_cut_at_the_midpoint_of_its_mean_scores(gan_and_data):
    """A critic's scores shifted by a constant are the same critic: its classification must not change."""
    _, model, data = gan_and_data
    loader = BatchLoader(data.val.images, None, batch_size=32, shuffle=False, seed=0, normalizer=data.normalizer)
    base = discriminator_classification(model, loader, 0, batch_stats=True, loss="wasserstein")
    last = model.discriminator.net[-2]  # the final conv: a bias shifts every score
    last.bias = torch.nn.Parameter(torch.full((1,), 40.0))
    try:
        shifted = discriminator_classification(model, loader, 0, batch_stats=True, loss="wasserstein")
        as_bce = discriminator_classification(model, loader, 0, batch_stats=True, loss="bce")
    finally:
        last.bias = None
    assert shifted["d_accuracy"] == base["d_accuracy"] > 0.9
    assert shifted["threshold_value"] == pytest.approx(base["threshold_value"] + 40.0, rel=1e-4)
    assert shifted["threshold"] == base["threshold"]  # the rule, the same in every run
    assert as_bce["d_accuracy"] == pytest.approx(0.5)  # at logit 0 every image is "real"
