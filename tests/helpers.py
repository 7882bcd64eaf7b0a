"""Tiny configs shared by the engine and objective tests."""

from __future__ import annotations

from typing import Any

from genlab.config import RunConfig, apply_overrides, validate


def tiny_config(**sections: dict[str, Any]) -> RunConfig:
    base = {
        "name": "tiny",
        "model": {"name": "vae", "hidden_dims": [4, 8], "latent_dim": 3},
        "objective": {"kind": "reconstruction", "beta": 1.0},
        "data": {"name": "digits", "image_size": 12, "limit": 96, "val_limit": 24, "hflip": True},
        "optim": {"lr": 0.003, "scheduler": "cosine"},
        "train": {"epochs": 3, "batch_size": 16, "seed": 1, "deterministic": True, "progress": False,
                  "figures": False, "epoch_samples": False, "checkpoint_every_steps": 4},
    }
    for key, value in sections.items():
        replace = not isinstance(value, dict) or (key == "model" and value.get("name", "vae") != "vae")
        base[key] = value if replace else {**base[key], **value}
    return validate(base)


def with_overrides(cfg: RunConfig, *overrides: str) -> RunConfig:
    return validate(apply_overrides(cfg.to_dict(), list(overrides)))
