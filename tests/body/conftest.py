"""Synthetic body-model files (the real keys and shapes) and the smplx reference built on them."""

from __future__ import annotations

import pickle
import sys
import types
from pathlib import Path

import numpy as np

from amasskit.synth import body_model_arrays
from amasskit.topology import SMPL_PARENTS


def smpl_arrays() -> dict[str, np.ndarray]:
    """A synthetic SMPL model (24 joints, 10 betas) derived from the SMPL+H humanoid: the fingers fold into one hand
    joint per side."""
    h = body_model_arrays("smplh", "male", seed=1)
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


def write_chumpy_pickle(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Pickle ``arrays`` the way the SMPL release does: chumpy objects and a scipy CSC regressor (made with stand-in
    classes registered under chumpy's and scipy's module names, so neither package is needed)."""
    ch_module = types.ModuleType("chumpy.ch")
    sparse_module = types.ModuleType("scipy.sparse._csc")

    class Ch:
        def __init__(self, x: np.ndarray) -> None:
            self.x = x

        def __getstate__(self) -> dict[str, object]:
            return {"x": self.x, "_cache": {}}

    class csc_matrix:  # noqa: N801
        def __init__(self, dense: np.ndarray) -> None:
            nz_cols = [np.flatnonzero(dense[:, c]) for c in range(dense.shape[1])]
            self.data = np.concatenate([dense[rows, c] for c, rows in enumerate(nz_cols)])
            self.indices = np.concatenate(nz_cols).astype(np.int32)
            self.indptr = np.concatenate([[0], np.cumsum([len(r) for r in nz_cols])]).astype(np.int32)
            self._shape = dense.shape

        def __getstate__(self) -> dict[str, object]:
            return {"data": self.data, "indices": self.indices, "indptr": self.indptr, "_shape": self._shape,
                    "maxprint": 50}  # fmt: skip

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    csc_matrix.__module__, csc_matrix.__qualname__ = "scipy.sparse._csc", "csc_matrix"
    ch_module.Ch = Ch  # type: ignore[attr-defined]
    sparse_module.csc_matrix = csc_matrix  # type: ignore[attr-defined]
    names = ("chumpy", "chumpy.ch", "scipy", "scipy.sparse", "scipy.sparse._csc")
    saved = {name: sys.modules.get(name) for name in names}
    for name in names:  # parent packages too: pickle imports each class's module to check it
        sys.modules[name] = types.ModuleType(name)
    sys.modules["chumpy.ch"] = ch_module
    sys.modules["scipy.sparse._csc"] = sparse_module
    try:
        payload = {k: v for k, v in arrays.items()}
        for key in ("v_template", "shapedirs", "posedirs", "weights"):
            payload[key] = Ch(arrays[key])
        payload["J_regressor"] = csc_matrix(arrays["J_regressor"])
        payload["bs_style"] = "lbs"
        path.write_bytes(pickle.dumps(payload, protocol=2))
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
