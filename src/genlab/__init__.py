"""genlab: train, evaluate and explore image generative models from one config."""

__version__ = "0.3.0"
