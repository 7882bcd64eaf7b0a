"""Figures from a model's public API and a run's files; nothing here trains or evaluates."""
