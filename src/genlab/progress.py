"""A bar of images drawn, for the commands that wait on a sampler: a diffusion model or a PixelCNN prior takes
tens of network passes per image, so `genlab eval` and `genlab sample` can sit for minutes on their samples.

tqdm decides where it shows (a terminal or a notebook; nothing in a log file or a pipe, so logs stay clean).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from genlab import distributed

T = TypeVar("T")


def counted(batches: Iterable[T], total: int, what: str, size: Callable[[Any], int] = len) -> Iterator[T]:
    """The batches, unchanged, with a bar that counts their images (`size` of each) up to `total`."""
    from tqdm.auto import tqdm  # notebook-aware

    with tqdm(total=total, desc=what, unit="img", leave=False, dynamic_ncols=True, mininterval=0.5,
              disable=None if distributed.is_main() else True) as bar:
        for batch in batches:
            yield batch
            bar.update(size(batch))
