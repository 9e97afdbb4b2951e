"""Loading any distance field: a model trained by amasskit (``model.pt``) or a released Pose-NDF/NRDF checkpoint."""

from __future__ import annotations

import os

import torch

from ...errors import CheckpointError, NotAmasskitModelError
from ._network import DistanceField
from ._official import load_official
from ._train import load_model

__all__ = ["load_prior"]


def load_prior(path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu") -> DistanceField:
    """The distance field in ``path``: an amasskit model (``model.pt``), else a released checkpoint (with its
    ``config.yaml`` beside it or one folder up).

    Raises:
        CheckpointError: neither (the message says what each reader found), or an amasskit model that cannot be
            used (damaged, another format version, weights that do not fit).
    """
    try:
        return load_model(path, map_location=map_location)
    except NotAmasskitModelError:  # a readable file of another kind: perhaps a released checkpoint
        try:
            return load_official(path, map_location=map_location)
        except CheckpointError as theirs:
            raise CheckpointError(
                path, f"neither an amasskit model nor a released checkpoint ({theirs.reason})"
            ) from None
