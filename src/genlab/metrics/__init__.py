"""Scores computed from a model's public API and data; every value is stored with its protocol."""
