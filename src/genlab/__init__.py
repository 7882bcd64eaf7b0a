"""genlab: train, evaluate and explore image generative models from one config.

The Python API (genlab.api) is reachable from here, loaded on first use so that `genlab --help` and
`import genlab` stay fast: `genlab.train`, `genlab.open`, `genlab.load_config`, `genlab.compare`,
`genlab.report`, `genlab.sweep`, `genlab.Run`. (The modules behind the command line are named apart
from these functions: genlab.training, genlab.comparison, genlab.reporting, genlab.sweeps.)
"""

__version__ = "0.4.0"

_API = ("Figure", "Images", "Run", "Scores", "Table", "compare", "load_config", "open", "report", "train")
_SWEEP = ("sweep",)


def __getattr__(name: str):
    if name in _API:
        from genlab import api

        return getattr(api, name)
    if name in _SWEEP:
        from genlab import sweeps

        return sweeps.run_sweep
    raise AttributeError(f"module 'genlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API, *_SWEEP])
