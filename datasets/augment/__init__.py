"""Augmentation recipes (``recipe``: pure validation) and their MONAI transforms (``transforms``).

Importing this package loads neither torch nor MONAI: the web process validates recipes, and
only the export worker that materializes copies imports ``transforms`` (on the first call of
the augmenter :func:`make_augmenter` returns).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import numpy.typing as npt

from datasets.augment.recipe import validate_recipe

if TYPE_CHECKING:
    from datasets.exporters.base import Augmenter, Sample

__all__ = ["copy_seed", "make_augmenter", "validate_recipe"]


def copy_seed(recipe_seed: int, sample_key: str, copy: int) -> int:
    """The seed of one materialized copy: stable across runs and machines, distinct per sample and copy."""
    digest = hashlib.sha256(f"{recipe_seed}:{sample_key}:{copy}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def make_augmenter(recipe: dict[str, Any]) -> Augmenter:
    """An exporter hook writing ``recipe["copies"]`` augmented copies of each train sample.

    Copies are cases named ``<sample>_<suffix>`` of the same sample, so they keep its patient and
    split (never crossing into validation or test). Each copy's seed comes from (recipe seed,
    sample key, copy number), so the same version exports the same copies. Validation and test
    samples, and recipes without ``materialize``, get no copies.
    """
    clean = validate_recipe(recipe)
    copies = clean["copies"] if clean["materialize"] else 0

    def augment(
        sample: Sample, image: npt.NDArray[Any], label: npt.NDArray[Any]
    ) -> list[tuple[str, npt.NDArray[Any], npt.NDArray[Any], dict[str, Any]]]:
        if sample.split != "train" or copies == 0:
            return []
        from datasets.augment.transforms import materialize  # torch and MONAI, in the export worker only

        out = []
        for n in range(1, copies + 1):
            seed = copy_seed(clean["seed"], sample.key, n)
            new_image, new_label, applied = materialize(image, label, clean, seed=seed)
            out.append((f"aug{n:02d}", new_image, new_label, {"copy": n, **applied}))
        return out

    return augment
