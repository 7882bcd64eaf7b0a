"""Figures from a model's public API and a run's files; nothing here trains or evaluates."""

# The figures `genlab figures` draws (names usable with --only); kept here, free of heavy imports, so
# the command line can list them without loading torch.
FIGURES = ("samples", "reconstructions", "traversal", "interpolation", "tsne", "kl_per_dim", "loss_curves",
           "trajectory", "code_usage")
