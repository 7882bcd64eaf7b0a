"""Domain classifiers: a small CNN that genlab trains once per labelled data set and caches, for two scores.

Offline machines cannot fetch Inception weights, and Inception's ImageNet features say little about 28x28
digits anyway. A classifier trained on the data set itself gives (1) a feature space for a Fréchet distance,
reported under the extractor's own name (e.g. FD-mnist-classifier), never as "FID", since its numbers are
not comparable with FID in papers; and (2) an independent judge of whether a conditional model draws the
class it was asked for. Its own held-out test accuracy travels with every score, so a reader can tell how
much to trust the judge.

Its parts, one job each: the network and recipe (network.py), the cache identity (identity.py), the
extractor and judge (extractor.py), training (training.py) and the cache on disk (store.py). A cached
classifier is identified by a hash of what decides its weights: the images and labels it sees
(data set, root, size, channels, crops, split) and its training recipe. The run's subsampling (data.limit),
augmentation and normalisation are left out on purpose, so every run on MNIST at 28 px is scored by the
same network and the scores stay comparable.
"""

from __future__ import annotations

from genlab.metrics.classifier.extractor import DomainClassifier
from genlab.metrics.classifier.identity import cache_key, cache_paths, classifier_data_config, dataset_slug
from genlab.metrics.classifier.network import PREPROCESSING, RECIPE_VERSION, Recipe, SmallCNN, make_recipe
from genlab.metrics.classifier.store import get_classifier, save_classifier
from genlab.metrics.classifier.training import train_classifier

__all__ = ["PREPROCESSING", "RECIPE_VERSION", "DomainClassifier", "Recipe", "SmallCNN", "cache_key",
           "cache_paths", "classifier_data_config", "dataset_slug", "get_classifier", "make_recipe",
           "save_classifier", "train_classifier"]
