"""Rotations in numpy and torch: conversions between representations, quaternion algebra, distances, sampling.

Every function takes a ``numpy.ndarray`` (or anything ``numpy.asarray`` accepts) or a ``torch.Tensor`` and returns
the same kind, with any leading batch dimensions ``...``. Representations (see :mod:`amasskit.conventions`):

* ``rotvec`` ``(..., 3)``: axis-angle, angle = norm, radians.
* ``quat`` ``(..., 4)``: unit quaternion, **XYZW** (scalar last). :func:`quat_xyzw_to_wxyz` and
  :func:`quat_wxyz_to_xyzw` convert at the boundaries that use WXYZ (the official Pose-NDF code, for example).
* ``rotmat`` ``(..., 3, 3)``: rotation matrix acting on column vectors.
* ``6d`` ``(..., 6)``: the first two columns of the matrix, ``[c0x, c0y, c0z, c1x, c1y, c1z]`` (named ``rot6d`` in
  function names).

The distances between rotations are angles: :func:`quat_angle`, :func:`rotmat_angle`, :func:`rotvec_angle` (the
rotation between, in ``[0, pi]``; named ``*_geodesic`` before 0.2, names kept for one release). The pose priors'
``geodesic`` metric is another quantity (half-angles summed over joints, :func:`amasskit.prior.pose_distance`).

Names read ``<source>_to_<target>``; :func:`convert`, :func:`to_rotmat` and :func:`from_rotmat` take the
representation by name. Quaternions that amasskit produces from a matrix or from a quaternion operation that picks a
sign have ``w >= 0`` (:func:`quat_canonical`); ``rotvec_to_quat`` gives ``w = cos(angle / 2)``, so ``w >= 0`` for angles
up to pi.

dtypes: numpy inputs are computed in float64 and returned in the input's float dtype (float32 stays float32; integer
input gives float64), so the numpy path is accurate at any input precision. torch inputs are computed in their own
dtype and device, differentiably; integer tensors are refused.

A trailing shape that does not fit raises :class:`~amasskit.errors.RotationError` (a ``ValueError``) naming the
function, the expected and the found shape. The numpy path never imports torch: ``prepare``'s workers use it.
"""

from __future__ import annotations

import sys
from typing import Any, TypeVar

import numpy as np

from ..conventions import ROTATION_SHAPES, ROTATIONS
from ..errors import RotationError
from . import _formulas as formulas

__all__ = [
    "convert",
    "from_rotmat",
    "quat_angle",
    "quat_canonical",
    "quat_canonical_sign",
    "quat_exp",
    "quat_geodesic",
    "quat_inverse",
    "quat_log",
    "quat_normalize",
    "quat_product",
    "quat_slerp",
    "quat_to_rot6d",
    "quat_to_rotmat",
    "quat_to_rotvec",
    "quat_wxyz_to_xyzw",
    "quat_xyzw_to_wxyz",
    "random_quat",
    "rot6d_to_quat",
    "rot6d_to_rotmat",
    "rot6d_to_rotvec",
    "rotmat_angle",
    "rotmat_geodesic",
    "rotmat_to_quat",
    "rotmat_to_rot6d",
    "rotmat_to_rotvec",
    "rotvec_angle",
    "rotvec_geodesic",
    "rotvec_to_quat",
    "rotvec_to_rot6d",
    "rotvec_to_rotmat",
    "to_rotmat",
]

A = TypeVar("A")
"""``numpy.ndarray`` or ``torch.Tensor``: functions return what they were given."""


def _is_tensor(x: object) -> bool:
    torch = sys.modules.get("torch")  # a tensor can only exist if torch is imported: no import here
    return torch is not None and isinstance(x, torch.Tensor)


def _prepare(x: Any, representation: str, fn: str) -> tuple[Any, Any, Any]:
    """``(xp, array ready for the formulas, output dtype or None)`` after checking the trailing shape."""
    trailing = ROTATION_SHAPES[representation]
    xp: Any
    if _is_tensor(x):
        import torch

        if not torch.is_floating_point(x):
            raise RotationError(f"{fn}: expected a floating-point tensor, got {x.dtype}")
        xp, arr, out_dtype = torch, x, None
    else:
        arr = np.asarray(x)
        if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
            raise RotationError(f"{fn}: expected real numbers, got an array of dtype {arr.dtype}")
        out_dtype = arr.dtype if arr.dtype in (np.float32, np.float64) else np.dtype(np.float64)
        xp, arr = np, arr.astype(np.float64, copy=False)
    shape = tuple(arr.shape)
    if shape[len(shape) - len(trailing) :] != trailing or len(shape) < len(trailing):
        raise RotationError(
            f"{fn}: {representation} rotations have shape (..., {', '.join(map(str, trailing))}), got {shape}"
        )
    return xp, arr, out_dtype


def _finish(out: Any, out_dtype: Any) -> Any:
    return out if out_dtype is None else np.asarray(out).astype(out_dtype, copy=False)


def _apply(formula: Any, x: Any, source: str, fn: str) -> Any:
    xp, arr, out_dtype = _prepare(x, source, fn)
    return _finish(formula(xp, arr), out_dtype)


def _check_name(representation: str, fn: str) -> None:
    if representation not in ROTATION_SHAPES:
        raise RotationError(f"{fn}: representation must be one of {ROTATIONS}, got {representation!r}")


# ------------------------------------------------------------------------------------------------ conversions


def rotvec_to_quat(rotvec: A) -> A:
    """``(..., 3)`` axis-angle -> ``(..., 4)`` unit quaternions XYZW, ``w = cos(angle / 2)``."""
    return _apply(formulas.rotvec_to_quat, rotvec, "rotvec", "rotvec_to_quat")


def quat_to_rotvec(quat: A) -> A:
    """``(..., 4)`` unit quaternions XYZW -> ``(..., 3)`` axis-angle with the angle in ``[0, pi]``."""
    return _apply(formulas.quat_to_rotvec, quat, "quat", "quat_to_rotvec")


def quat_to_rotmat(quat: A) -> A:
    """``(..., 4)`` unit quaternions XYZW -> ``(..., 3, 3)`` rotation matrices."""
    return _apply(formulas.quat_to_rotmat, quat, "quat", "quat_to_rotmat")


def rotmat_to_quat(rotmat: A) -> A:
    """``(..., 3, 3)`` rotation matrices -> ``(..., 4)`` unit quaternions XYZW with ``w >= 0``."""
    return _apply(formulas.rotmat_to_quat, rotmat, "rotmat", "rotmat_to_quat")


def rotvec_to_rotmat(rotvec: A) -> A:
    """``(..., 3)`` axis-angle -> ``(..., 3, 3)`` rotation matrices (Rodrigues' formula, its entries written out).

    amasskit's own rather than roma's (tested against roma): importing roma 1.8 imports torch's compiler (about a
    second, at every command that poses a body), and this formula measured twice as fast forward and backward
    (4096 x 52 rotations, float32, one thread: 17 ms against 34).
    """
    xp, arr, out_dtype = _prepare(rotvec, "rotvec", "rotvec_to_rotmat")
    return _finish(formulas.rotvec_to_rotmat(xp, arr), out_dtype)


def rotmat_to_rotvec(rotmat: A) -> A:
    """``(..., 3, 3)`` rotation matrices -> ``(..., 3)`` axis-angle with the angle in ``[0, pi]``."""
    xp, arr, out_dtype = _prepare(rotmat, "rotmat", "rotmat_to_rotvec")
    return _finish(formulas.quat_to_rotvec(xp, formulas.rotmat_to_quat(xp, arr)), out_dtype)


def rot6d_to_rotmat(rot6d: A) -> A:
    """``(..., 6)`` two columns -> ``(..., 3, 3)``, orthonormalised by Gram-Schmidt (any two independent columns
    give a rotation; the first keeps its direction)."""
    return _apply(formulas.rot6d_to_rotmat, rot6d, "6d", "rot6d_to_rotmat")


def rotmat_to_rot6d(rotmat: A) -> A:
    """``(..., 3, 3)`` -> ``(..., 6)``: the first column, then the second."""
    return _apply(formulas.rotmat_to_rot6d, rotmat, "rotmat", "rotmat_to_rot6d")


def rotvec_to_rot6d(rotvec: A) -> A:
    """``(..., 3)`` axis-angle -> ``(..., 6)``."""
    return convert(rotvec, source="rotvec", target="6d")


def rot6d_to_rotvec(rot6d: A) -> A:
    """``(..., 6)`` -> ``(..., 3)`` axis-angle, angle in ``[0, pi]``."""
    return convert(rot6d, source="6d", target="rotvec")


def quat_to_rot6d(quat: A) -> A:
    """``(..., 4)`` XYZW -> ``(..., 6)``."""
    return convert(quat, source="quat", target="6d")


def rot6d_to_quat(rot6d: A) -> A:
    """``(..., 6)`` -> ``(..., 4)`` XYZW with ``w >= 0``."""
    return convert(rot6d, source="6d", target="quat")


def to_rotmat(rotations: A, representation: str) -> A:
    """``(..., 3, 3)`` rotation matrices from rotations in the named representation. Quaternions are normalised
    first; ``6d`` is orthonormalised by Gram-Schmidt; ``rotmat`` is returned as given (no copy).

    Raises:
        RotationError: an unknown representation or a trailing shape that does not fit it.
    """
    _check_name(representation, "to_rotmat")
    if representation == "rotmat":
        _prepare(rotations, "rotmat", "to_rotmat")
        return rotations
    if representation == "quat":
        rotations = quat_normalize(rotations)
    return {"rotvec": rotvec_to_rotmat, "quat": quat_to_rotmat, "6d": rot6d_to_rotmat}[representation](
        rotations
    )


def from_rotmat(rotmat: A, representation: str) -> A:
    """The inverse of :func:`to_rotmat`: ``rotvec`` (angle in ``[0, pi]``), ``quat`` (``w >= 0``), ``6d`` or
    ``rotmat`` (returned as given).

    Raises:
        RotationError: an unknown representation or a trailing shape other than ``(3, 3)``.
    """
    _check_name(representation, "from_rotmat")
    if representation == "rotmat":
        _prepare(rotmat, "rotmat", "from_rotmat")
        return rotmat
    return {"rotvec": rotmat_to_rotvec, "quat": rotmat_to_quat, "6d": rotmat_to_rot6d}[representation](rotmat)


def convert(rotations: A, *, source: str, target: str) -> A:
    """Rotations from one named representation to another (see the module docstring for the names).

    ``rotvec -> quat`` and ``quat -> rotvec`` go directly; every other pair goes through the matrix. Quaternions come
    out with ``w >= 0`` from every source (axis-angle beyond pi included).
    """
    _check_name(source, "convert")
    _check_name(target, "convert")
    if source == target:
        _prepare(rotations, source, "convert")
        return rotations
    if (source, target) == ("rotvec", "quat"):
        return quat_canonical(rotvec_to_quat(rotations))
    if (source, target) == ("quat", "rotvec"):
        return quat_to_rotvec(rotations)
    return from_rotmat(to_rotmat(rotations, source), target)


def quat_xyzw_to_wxyz(quat: A) -> A:
    """``(..., 4)`` XYZW -> WXYZ (scalar first)."""
    xp, arr, out_dtype = _prepare(quat, "quat", "quat_xyzw_to_wxyz")
    return _finish(xp.stack([arr[..., 3], arr[..., 0], arr[..., 1], arr[..., 2]], -1), out_dtype)


def quat_wxyz_to_xyzw(quat: A) -> A:
    """``(..., 4)`` WXYZ (scalar first) -> XYZW."""
    xp, arr, out_dtype = _prepare(quat, "quat", "quat_wxyz_to_xyzw")
    return _finish(xp.stack([arr[..., 1], arr[..., 2], arr[..., 3], arr[..., 0]], -1), out_dtype)


# ------------------------------------------------------------------------------------------------ quaternion algebra


def quat_normalize(quat: A) -> A:
    """``(..., 4)`` scaled to unit norm (the sign kept)."""
    xp, arr, out_dtype = _prepare(quat, "quat", "quat_normalize")
    return _finish(arr / formulas.norm(xp, arr)[..., None], out_dtype)


def quat_canonical(quat: A, *, normalize: bool = False) -> A:
    """``(..., 4)``: of ``q`` and ``-q`` (the same rotation), the one with ``w > 0``, and where ``w = 0`` the one whose
    first non-zero of ``x, y, z`` is positive, so that ``q`` and ``-q`` always give the same output (learning code and
    distances on quaternions expect it). With ``normalize``, each is scaled to unit norm first (``q / max(|q|,
    1e-12)``; torch: :func:`torch.nn.functional.normalize`). Differentiable in torch except where the sign flips."""
    xp, arr, out_dtype = _prepare(quat, "quat", "quat_canonical")
    if normalize:
        arr = formulas.quat_unit(xp, arr)
    return _finish(formulas.quat_canonical(xp, arr), out_dtype)


def quat_canonical_sign(quat: A) -> A:
    """``(...)`` ``-1.0`` where :func:`quat_canonical` negates a quaternion, else ``1.0`` (to carry a gradient through
    the choice)."""
    xp, arr, out_dtype = _prepare(quat, "quat", "quat_canonical_sign")
    negated = formulas.quat_negated(xp, arr)
    return _finish(xp.where(negated, -xp.ones_like(arr[..., 0]), xp.ones_like(arr[..., 0])), out_dtype)


def _binary(a: Any, b: Any, fn: str, source: str = "quat") -> tuple[Any, Any, Any, Any]:
    xp, arr_a, dtype_a = _prepare(a, source, fn)
    xp_b, arr_b, dtype_b = _prepare(b, source, fn)
    if xp is not xp_b:
        raise RotationError(f"{fn}: both arguments must be numpy arrays or both torch tensors")
    out_dtype = None if xp is not np else np.result_type(dtype_a, dtype_b)
    return xp, arr_a, arr_b, out_dtype


def quat_product(a: A, b: A) -> A:
    """The Hamilton product ``a b`` of XYZW quaternions (broadcasting): the rotation ``b``, then ``a``."""
    xp, qa, qb, out_dtype = _binary(a, b, "quat_product")
    return _finish(formulas.quat_product(xp, qa, qb), out_dtype)


def quat_inverse(quat: A) -> A:
    """The inverse of unit quaternions: the conjugate ``(-x, -y, -z, w)``."""
    return _apply(formulas.quat_conjugate, quat, "quat", "quat_inverse")


def quat_log(quat: A) -> A:
    """The logarithm map of unit quaternions: ``(..., 4)`` -> ``(..., 3)`` tangent vectors ``v`` with
    ``quat_exp(v) == quat`` and ``|v|`` in ``[0, pi]`` (``|v|`` is half the rotation angle; ``2 quat_log(q)`` is the
    axis-angle of ``q`` when ``w >= 0``). ``-1`` (a full turn, the identity rotation) maps to 0."""
    return _apply(formulas.quat_log, quat, "quat", "quat_log")


def quat_exp(tangent: A) -> A:
    """The exponential map: ``(..., 3)`` tangent vectors -> ``(..., 4)`` unit XYZW, ``(sin|v| v/|v|, cos|v|)``.
    ``quat_exp(rotvec / 2) == rotvec_to_quat(rotvec)``."""
    return _apply(formulas.quat_exp, tangent, "rotvec", "quat_exp")


def quat_slerp(a: A, b: A, t: Any) -> A:
    """Spherical linear interpolation from ``a`` (``t = 0``) to ``b`` (``t = 1``) along the shorter arc.

    Args:
        a, b: ``(..., 4)`` unit XYZW, broadcasting together.
        t: a number or an array broadcasting against the leading dimensions ``...``.

    Returns:
        ``(..., 4)``; at ``t = 1`` the rotation of ``b`` (its sign may differ).
    """
    xp, qa, qb, out_dtype = _binary(a, b, "quat_slerp")
    tt = np.asarray(t, dtype=np.float64) if xp is np else xp.as_tensor(t, dtype=qa.dtype, device=qa.device)
    return _finish(formulas.quat_slerp(xp, qa, qb, tt), out_dtype)


# ------------------------------------------------------------------------------------------------ distances


def quat_angle(a: A, b: A) -> A:
    """``(...)`` the angle in ``[0, pi]`` of the rotation between ``a`` and ``b`` (XYZW, broadcasting), independent
    of their signs: ``2 acos |<a, b>|``, computed as ``2 atan2(|vec(a* b)|, |w(a* b)|)`` (accurate near 0)."""
    xp, qa, qb, out_dtype = _binary(a, b, "quat_angle")
    return _finish(formulas.quat_angle(xp, qa, qb), out_dtype)


def rotmat_angle(a: A, b: A) -> A:
    """``(...)`` the angle in ``[0, pi]`` of the rotation between rotation matrices ``a`` and ``b``."""
    xp, ra, rb, out_dtype = _binary(a, b, "rotmat_angle", "rotmat")
    qa, qb = formulas.rotmat_to_quat(xp, ra), formulas.rotmat_to_quat(xp, rb)
    return _finish(formulas.quat_angle(xp, qa, qb), out_dtype)


def rotvec_angle(a: A, b: A) -> A:
    """``(...)`` the angle in ``[0, pi]`` of the rotation between axis-angle rotations ``a`` and ``b``."""
    xp, ra, rb, out_dtype = _binary(a, b, "rotvec_angle", "rotvec")
    qa, qb = formulas.rotvec_to_quat(xp, ra), formulas.rotvec_to_quat(xp, rb)
    return _finish(formulas.quat_angle(xp, qa, qb), out_dtype)


# ------------------------------------------------------------------------------------------------ sampling


def random_quat(
    shape: int | tuple[int, ...], *, rng: Any, dtype: Any = None, device: Any = None, canonical: bool = True
) -> Any:
    """Rotations drawn uniformly (Haar measure on SO(3)) as ``(*shape, 4)`` XYZW quaternions.

    A normalised 4D standard normal is uniform on the unit sphere of quaternions, whose image is Haar on SO(3).

    Args:
        shape: leading shape.
        rng: a ``numpy.random.Generator`` (numpy output, float64 unless ``dtype``) or a ``torch.Generator``
            (torch output on the generator's device unless ``device``; torch's default dtype unless ``dtype``).
        canonical: flip to ``w >= 0`` (still Haar on SO(3)); ``False`` keeps the uniform sphere of quaternions.

    Raises:
        TypeError: ``rng`` is neither.
    """
    size = (shape,) if isinstance(shape, int) else tuple(shape)
    if isinstance(rng, np.random.Generator):
        quat = rng.standard_normal((*size, 4))
        quat /= np.linalg.norm(quat, axis=-1, keepdims=True)
        out = formulas.quat_canonical(np, quat) if canonical else quat
        return out.astype(np.float64 if dtype is None else dtype, copy=False)
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(rng, torch.Generator):
        target = rng.device if device is None else torch.device(device)
        quat = torch.randn((*size, 4), generator=rng, device=rng.device, dtype=dtype).to(target)
        quat = quat / torch.linalg.vector_norm(quat, dim=-1, keepdim=True)
        return formulas.quat_canonical(torch, quat) if canonical else quat
    raise TypeError(f"rng must be a numpy.random.Generator or a torch.Generator, got {type(rng).__name__}")


# the names before 0.2 (kept for one release): "geodesic" is the pose prior's half-angle metric
quat_geodesic = quat_angle
rotmat_geodesic = rotmat_angle
rotvec_geodesic = rotvec_angle
