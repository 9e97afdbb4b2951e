"""Helpers for tests, amasskit's own and yours: small motion files written exactly as given, and synthetic body-model
files in the released layouts. Nothing here is licensed data; everything is generated.

* :func:`write_npz` - an npz written exactly as given (object arrays pickled, as a hostile file would hold them).
* :func:`smplh_arrays` - valid SMPL+H release arrays, to break one at a time.
* :func:`smpl_model_arrays`, :func:`write_smpl_pickle` - a synthetic SMPL model, pickled as the SMPL release is
  (chumpy objects, a scipy sparse regressor), without chumpy or scipy installed.
* :func:`write_body_models`, :func:`synth_tree` - synthetic body-model folders and AMASS trees (from
  :mod:`amasskit.synth`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..synth import Ch, CscMatrix, body_model_arrays, dumps_released, synth_tree, write_body_models
from ..topology import SMPL_PARENTS

__all__ = [
    "smpl_model_arrays",
    "smplh_arrays",
    "synth_tree",
    "write_body_models",
    "write_npz",
    "write_smpl_pickle",
]


def write_npz(path: Path, **arrays: object) -> Path:
    """Write arrays to an uncompressed npz exactly as given (object arrays pickled, as a hostile file would be)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fp:
        np.savez(fp, **arrays)  # type: ignore[arg-type]
    return path


def smplh_arrays(num_frames: int = 10, *, seed: int = 0) -> dict[str, np.ndarray]:
    """Valid SMPL+H release arrays, to be broken one at a time by the tests."""
    rng = np.random.default_rng(seed)
    return {
        "poses": rng.normal(0, 0.3, size=(num_frames, 156)),
        "trans": rng.normal(0, 1, size=(num_frames, 3)),
        "betas": rng.normal(0, 1, size=16),
        "dmpls": rng.normal(0, 1, size=(num_frames, 8)),
        "gender": np.array("female"),
        "mocap_framerate": np.array(120.0),
    }


def smpl_model_arrays(*, gender: str = "male", seed: int = 1) -> dict[str, np.ndarray]:
    """A synthetic SMPL model (24 joints, 10 betas) derived from the synthetic SMPL+H model of ``gender`` and ``seed``
    (the defaults: the one the body-model tests use; ``gender="neutral", seed=0``: the SMPL+H that
    :func:`~amasskit.synth.write_body_models` writes by default): the fingers fold into one hand joint per side."""
    h = body_model_arrays("smplh", gender, seed=seed)
    rng = np.random.default_rng(5)
    weights = np.zeros((6890, 24))
    weights[:, :22] = h["weights"][:, :22]
    weights[:, 22] = h["weights"][:, 22:37].sum(axis=1)
    weights[:, 23] = h["weights"][:, 37:52].sum(axis=1)
    regressor = np.concatenate([h["J_regressor"][:22], h["J_regressor"][[22]], h["J_regressor"][[37]]])
    kintree = np.stack([np.array(SMPL_PARENTS), np.arange(24)]).astype(np.int64)
    kintree[0, 0] = 4294967295
    return {
        "v_template": h["v_template"],
        "f": h["f"].astype(np.uint32),
        "shapedirs": h["shapedirs"][:, :, :10],
        "posedirs": rng.normal(0.0, 0.005, size=(6890, 3, 207)),
        "J_regressor": regressor,
        "weights": weights,
        "kintree_table": kintree,
    }


def write_smpl_pickle(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Pickle ``arrays`` the way the SMPL release does: chumpy objects and a scipy CSC regressor (written through
    stand-in classes under chumpy's and scipy's names, so neither package is needed)."""
    payload: dict[str, object] = dict(arrays)
    for key in ("v_template", "shapedirs", "posedirs", "weights"):
        payload[key] = Ch(arrays[key])
    payload["J_regressor"] = CscMatrix.from_dense(arrays["J_regressor"])
    payload["bs_style"] = "lbs"
    path.write_bytes(dumps_released(payload))
