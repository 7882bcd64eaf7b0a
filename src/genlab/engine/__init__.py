"""The one training engine: a short loop (loop.py), what a checkpoint holds (state.py), and hooks.

The loop knows objectives only through `genlab.objectives.contract.Objective` and everything else it
does through hooks (`hook.Hook`): history, best checkpoint, progress bar, the non-finite policy, and
whatever an objective adds (a GAN's collapse monitor, a VAE's latent-usage monitor). It never names a
model family. This package's __init__ imports nothing, so objective modules can import the hook
protocol without pulling in the loop.
"""
