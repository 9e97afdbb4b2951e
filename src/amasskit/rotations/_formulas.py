"""The rotation formulas, written once for numpy and torch.

Every function takes ``xp``, the array namespace (the ``numpy`` or ``torch`` module), and uses only what both
spell the same way (``sqrt``, ``arctan2``, ``sin``, ``cos``, ``where``, ``stack``, ``abs``, ``clip``, indexing,
arithmetic), so the numpy path (``prepare``'s workers, which never import torch) and the torch path (body models,
loaders, fitting) give the same numbers from the same code. Inputs are already shape-checked and floating point;
the public wrappers in :mod:`amasskit.rotations` do that.

Small angles use series expansions where a quotient would be ``0/0``, with the quotient's denominator replaced by a
safe value on the masked side, so neither branch produces NaN values or NaN gradients.
"""

from __future__ import annotations

from typing import Any

Array = Any
"""A ``numpy.ndarray`` or a ``torch.Tensor``; the formulas do not care which."""

# Below these angles (radians) the quotients switch to their series; both are far above float32's resolution of
# the squared terms they guard and far below where the series' next term (angle^4/3840) reaches float64 epsilon.
_SMALL_ANGLE = 1e-4


def norm(xp: Any, x: Array) -> Array:
    """``(..., n)`` -> ``(...)`` Euclidean norm (torch: ``vector_norm``, whose gradient at 0 is 0, not NaN)."""
    if xp.__name__ == "torch":
        return xp.linalg.vector_norm(x, dim=-1)
    return xp.sqrt(xp.einsum("...i,...i->...", x, x))  # one pass, no squared temporary


def rotvec_to_rotmat(xp: Any, rotvec: Array) -> Array:
    """Rodrigues' formula ``R = cos(a) I + sin(a)/a [v]x + (1 - cos(a))/a^2 v v^T`` (``a = |v|``), each quotient
    with its series where ``a`` is tiny; the nine entries written out (fewer temporaries than the matrix sum)."""
    x, y, z = rotvec[..., 0], rotvec[..., 1], rotvec[..., 2]
    a2 = x * x + y * y + z * z
    small = a2 < _SMALL_ANGLE * _SMALL_ANGLE
    safe = xp.sqrt(xp.where(small, xp.ones_like(a2), a2))
    sinc = xp.where(small, 1.0 - a2 / 6.0, xp.sin(safe) / safe)  # sin(a)/a
    cosc = xp.where(small, 0.5 - a2 / 24.0, (1.0 - xp.cos(safe)) / (safe * safe))  # (1 - cos a)/a^2
    cos = 1.0 - cosc * a2
    sx, sy, sz = sinc * x, sinc * y, sinc * z
    cx = cosc * x
    cxy, cxz, cyz = cx * y, cx * z, cosc * y * z
    entries = [cos + cx * x, cxy - sz, cxz + sy,
               cxy + sz, cos + cosc * y * y, cyz - sx,
               cxz - sy, cyz + sx, cos + cosc * z * z]  # fmt: skip
    return xp.stack(entries, -1).reshape(*rotvec.shape[:-1], 3, 3)


def rotvec_to_quat(xp: Any, rotvec: Array) -> Array:
    angle = norm(xp, rotvec)
    small = angle < _SMALL_ANGLE
    safe = xp.where(small, xp.ones_like(angle), angle)
    # sin(a/2)/a, with its series 1/2 - a^2/48 where a is tiny
    scale = xp.where(small, 0.5 - angle * angle / 48.0, xp.sin(0.5 * safe) / safe)
    return xp.concatenate([rotvec * scale[..., None], xp.cos(0.5 * angle)[..., None]], -1)


def quat_log(xp: Any, quat: Array) -> Array:
    """``(..., 4)`` unit XYZW -> ``(..., 3)``: ``v`` with ``quat = exp(v)``, ``|v|`` in ``[0, pi]``."""
    v = quat[..., :3]
    w = quat[..., 3]
    s = norm(xp, v)
    small = (s < _SMALL_ANGLE) & (w > 0)
    safe_s = xp.where(s > 0, s, xp.ones_like(s))
    safe_w = xp.where(small, w, xp.ones_like(w))
    # atan2(s, w) / s, with its series 1/w - s^2/(3 w^3) where s is tiny and w close to 1. (A quaternion of
    # w < 0 and no vector part is -1, whose logarithm has length pi along an undefined axis; it maps to 0.)
    scale = xp.where(small, 1.0 / safe_w - s * s / (3.0 * safe_w**3), xp.arctan2(s, w) / safe_s)
    return v * scale[..., None]


def quat_exp(xp: Any, v: Array) -> Array:
    """``(..., 3)`` -> ``(..., 4)`` unit XYZW: ``(sin|v| v/|v|, cos|v|)``."""
    angle = norm(xp, v)
    small = angle < _SMALL_ANGLE
    safe = xp.where(small, xp.ones_like(angle), angle)
    scale = xp.where(small, 1.0 - angle * angle / 6.0, xp.sin(safe) / safe)
    return xp.concatenate([v * scale[..., None], xp.cos(angle)[..., None]], -1)


def quat_negated(xp: Any, quat: Array) -> Array:
    """``(...)`` bool: whether :func:`quat_canonical` negates each quaternion: ``w < 0``, or ``w = 0`` and the first
    non-zero of ``x, y, z`` negative (so that ``q`` and ``-q`` always give the same output)."""
    x, y, z, w = (quat[..., i] for i in range(4))
    return (w < 0) | ((w == 0) & ((x < 0) | ((x == 0) & ((y < 0) | ((y == 0) & (z < 0))))))


def quat_canonical(xp: Any, quat: Array) -> Array:
    """The sign of each quaternion chosen so that ``w >= 0``, ties at ``w = 0`` broken by ``x, y, z`` (the same
    rotation)."""
    return xp.where(quat_negated(xp, quat)[..., None], -quat, quat)


def quat_unit(xp: Any, quat: Array) -> Array:
    """``quat / max(|quat|, 1e-12)`` (torch: :func:`torch.nn.functional.normalize` itself, bit for bit)."""
    if xp.__name__ == "torch":
        return xp.nn.functional.normalize(quat, dim=-1)
    return quat / xp.maximum(norm(xp, quat), 1e-12)[..., None]


def quat_to_rotvec(xp: Any, quat: Array) -> Array:
    """``2 quat_log(quat_canonical(quat))``, in one pass: the sign is folded into the scale (prepare's hot path)."""
    v = quat[..., :3]
    sign = xp.where(quat[..., 3] < 0, -xp.ones_like(quat[..., 3]), xp.ones_like(quat[..., 3]))
    w = quat[..., 3] * sign
    s = norm(xp, v)
    small = s < _SMALL_ANGLE
    safe_s = xp.where(s > 0, s, xp.ones_like(s))
    safe_w = xp.where(small & (w != 0), w, xp.ones_like(w))
    # 2 atan2(s, w) / s, with its series 2/w - 2 s^2/(3 w^3) where s is tiny (w is then close to 1)
    scale = xp.where(small, 2.0 / safe_w - 2.0 * s * s / (3.0 * safe_w**3), 2.0 * xp.arctan2(s, w) / safe_s)
    return v * (sign * scale)[..., None]


def quat_product(xp: Any, a: Array, b: Array) -> Array:
    ax, ay, az, aw = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    bx, by, bz, bw = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    return xp.stack(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ],
        -1,
    )


def quat_conjugate(xp: Any, quat: Array) -> Array:
    return xp.stack([-quat[..., 0], -quat[..., 1], -quat[..., 2], quat[..., 3]], -1)


def quat_to_rotmat(xp: Any, quat: Array) -> Array:
    x, y, z, w = quat[..., 0], quat[..., 1], quat[..., 2], quat[..., 3]
    xx, yy, zz = x * x, y * y, z * z
    xy, xz, yz, wx, wy, wz = x * y, x * z, y * z, w * x, w * y, w * z
    rows = [
        1 - 2 * (yy + zz), 2 * (xy - wz), 2 * (xz + wy),
        2 * (xy + wz), 1 - 2 * (xx + zz), 2 * (yz - wx),
        2 * (xz - wy), 2 * (yz + wx), 1 - 2 * (xx + yy),
    ]  # fmt: skip
    return xp.stack(rows, -1).reshape(*quat.shape[:-1], 3, 3)


def rotmat_to_quat(xp: Any, rotmat: Array) -> Array:
    """Shepperd's method: of the four ways to read a quaternion off the matrix, the one whose divisor is largest;
    normalised and with ``w >= 0``."""
    m = rotmat
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    trace = m00 + m11 + m22
    candidates = [
        xp.stack([1 + 2 * m00 - trace, m01 + m10, m02 + m20, m21 - m12], -1),
        xp.stack([m01 + m10, 1 + 2 * m11 - trace, m12 + m21, m02 - m20], -1),
        xp.stack([m02 + m20, m12 + m21, 1 + 2 * m22 - trace, m10 - m01], -1),
        xp.stack([m21 - m12, m02 - m20, m10 - m01, 1 + trace], -1),
    ]
    # pick the candidate with the largest diagonal term (its norm is ~2x that term: no cancellation)
    diag = [m00, m11, m22, trace]
    best, best_value = candidates[3], diag[3]
    for candidate, value in zip(candidates[:3], diag[:3], strict=True):
        take = value > best_value
        best = xp.where(take[..., None], candidate, best)
        best_value = xp.where(take, value, best_value)
    quat = best / norm(xp, best)[..., None]
    return quat_canonical(xp, quat)


def rot6d_to_rotmat(xp: Any, rot6d: Array) -> Array:
    """Gram-Schmidt on the two stored columns; the third is their cross product."""
    a, b = rot6d[..., 0:3], rot6d[..., 3:6]
    c0 = a / norm(xp, a)[..., None]
    b = b - (c0 * b).sum(-1)[..., None] * c0
    c1 = b / norm(xp, b)[..., None]
    c2 = xp.stack(
        [
            c0[..., 1] * c1[..., 2] - c0[..., 2] * c1[..., 1],
            c0[..., 2] * c1[..., 0] - c0[..., 0] * c1[..., 2],
            c0[..., 0] * c1[..., 1] - c0[..., 1] * c1[..., 0],
        ],
        -1,
    )
    return xp.stack([c0, c1, c2], -1)


def rotmat_to_rot6d(xp: Any, rotmat: Array) -> Array:
    """The first column, then the second: ``[c0x, c0y, c0z, c1x, c1y, c1z]``."""
    return xp.stack([rotmat[..., :, 0], rotmat[..., :, 1]], -2).reshape(*rotmat.shape[:-2], 6)


def quat_angle(xp: Any, a: Array, b: Array) -> Array:
    """The angle in ``[0, pi]`` of the rotation from ``a`` to ``b``: ``2 atan2(|vec(a* b)|, |w(a* b)|)``, which is
    ``2 acos |<a, b>|`` for unit quaternions but accurate near 0 (where ``acos`` loses half the digits)."""
    rel = quat_product(xp, quat_conjugate(xp, a), b)
    return 2.0 * xp.arctan2(norm(xp, rel[..., :3]), xp.abs(rel[..., 3]))


def quat_slerp(xp: Any, a: Array, b: Array, t: Array) -> Array:
    """Along the shorter arc: ``a exp(t log(a* b))`` with ``a* b`` sign-canonicalised."""
    rel = quat_canonical(xp, quat_product(xp, quat_conjugate(xp, a), b))
    return quat_product(xp, a, quat_exp(xp, quat_log(xp, rel) * t[..., None]))
