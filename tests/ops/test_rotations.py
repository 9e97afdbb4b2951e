"""The numpy rotation conversions prepare's workers use agree with roma (the independent reference)."""

from __future__ import annotations

import numpy as np
import roma
import torch

from amasskit.body import from_rotmat
from amasskit.ops._rotations import (
    quat_multiply,
    quat_to_rotmat,
    quat_to_rotvec,
    rotmat_to_6d,
    rotvec_to_quat,
    rotvec_to_rotmat,
)


def rotvecs(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    r = rng.normal(size=(500, 3)) * rng.uniform(0, 6, size=(500, 1))  # angles well past pi, too
    r[:5] = 0.0
    r[5:10] = rng.normal(size=(5, 3)) * 1e-9  # tiny angles take the series branch
    return r


def test_conversions_match_roma() -> None:
    r = rotvecs()
    R_ref = roma.rotvec_to_rotmat(torch.from_numpy(r)).numpy()
    assert np.allclose(rotvec_to_rotmat(r), R_ref, atol=1e-12)
    q = rotvec_to_quat(r)
    assert np.allclose(np.linalg.norm(q, axis=-1), 1.0, atol=1e-12)
    assert np.allclose(quat_to_rotmat(q), R_ref, atol=1e-12)
    back = quat_to_rotvec(q)
    assert np.all(np.linalg.norm(back, axis=-1) <= np.pi + 1e-12)
    assert np.allclose(rotvec_to_rotmat(back), R_ref, atol=1e-12)
    assert np.allclose(rotmat_to_6d(R_ref), from_rotmat(torch.from_numpy(R_ref), "6d").numpy())


def test_quaternion_product_is_composition() -> None:
    a, b = rotvecs(1), rotvecs(2)
    composed = quat_to_rotvec(quat_multiply(rotvec_to_quat(a), rotvec_to_quat(b)))
    ref = roma.rotvec_composition([torch.from_numpy(a), torch.from_numpy(b)]).numpy()
    assert np.allclose(rotvec_to_rotmat(composed), rotvec_to_rotmat(ref), atol=1e-12)
