"""Perturbed poses for distance-field training: seeded per (seed, pose, sample), identical however the work is split.

Every (pose, sample) pair draws a fixed budget of :func:`words_per_sample` 64-bit words from a counter-based
generator (SplitMix64's output function on ``seed_state + counter * golden``): the ``i``-th word of sample ``s`` of
pose ``p`` (counted over the whole pose set) is the same number in any chunk, worker, device or machine, so the
noisy set is byte-identical whatever the number of workers or chunks. (numpy's stream generators would tie the draws
to the order of the work.)

Schemes (``sigma`` of sample ``s`` is ``sigmas[s % len(sigmas)]``, so every level gets its share of every pose):

* ``posendf``: Pose-NDF's additive noise with its defects fixed: ``q_j + sigma * e_j`` with ``e_j`` uniform on
  ``[-1, 1)^4`` (symmetric; Pose-NDF draws ``[0, 1)``) drawn independently per joint, pose and sample (Pose-NDF
  broadcasts one draw over a level), then normalised.
* ``nrdf``: NRDF's tangent-space noise: a total rotation angle ``A = sigma |g|``, ``g`` standard normal, split over
  the joints by uniform weights on the simplex (Dirichlet(1, ..., 1)); joint ``j`` turns by ``A w_j`` about a
  uniformly random axis (``q_j <- exp(A w_j / 2 * axis) q_j``). The geodesic distance to the source is ``A / 2``
  (half-angles) while every joint's turn stays under ``pi``.
* ``haar``: every joint an independent uniformly random rotation (Haar measure; Shoemake's construction).
* ``mixture``: each sample one of the three, chosen by ``weights``.

Output quaternions are XYZW, normalised in float64, with ``w >= 0``, returned as float32.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import numpy as np

from ... import choices
from ...errors import InvalidArgumentError
from ...rotations import quat_canonical, quat_product

__all__ = ["NOISE_SCHEMES", "NoiseConfig", "perturb", "words_per_sample"]

NOISE_SCHEMES: Final[tuple[str, ...]] = choices.values(choices.NoiseScheme)
_SCHEME_IDS: Final[dict[str, int]] = {"posendf": 0, "nrdf": 1, "haar": 2}
_DEFAULT_SIGMAS: Final[dict[str, tuple[float, ...]]] = {
    "posendf": (0.01, 0.05, 0.1, 0.25, 0.5),  # Pose-NDF's levels
    "nrdf": (0.1, 0.25, 0.5, 1.0, 2.0),  # total angle scale, radians
    "haar": (0.0,),
}
_GOLDEN: Final[np.uint64] = np.uint64(0x9E3779B97F4A7C15)
_M1: Final[np.uint64] = np.uint64(0xBF58476D1CE4E5B9)
_M2: Final[np.uint64] = np.uint64(0x94D049BB133111EB)


@dataclass(frozen=True)
class NoiseConfig:
    """A perturbation scheme: ``scheme`` (:data:`NOISE_SCHEMES`), ``sigmas`` per scheme (defaults above; for
    ``mixture``, each component keeps its own), ``weights`` of the mixture's components."""

    scheme: str = "nrdf"
    sigmas: dict[str, tuple[float, ...]] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=lambda: {"posendf": 0.4, "nrdf": 0.5, "haar": 0.1})

    def __post_init__(self) -> None:
        if self.scheme not in NOISE_SCHEMES:
            raise InvalidArgumentError(
                f"noise must be one of {', '.join(NOISE_SCHEMES)}, got {self.scheme!r}"
            )
        for name, values in self.sigmas.items():
            if name not in _SCHEME_IDS:
                raise InvalidArgumentError(
                    f"sigmas for an unknown scheme {name!r} (known: posendf, nrdf, haar)"
                )
            if not values or any(not np.isfinite(v) or v < 0 for v in values):
                raise InvalidArgumentError(f"sigmas for {name} must be finite numbers >= 0, got {values!r}")
        if self.scheme == "mixture":
            if set(self.weights) - set(_SCHEME_IDS) or any(w < 0 for w in self.weights.values()):
                raise InvalidArgumentError(
                    f"mixture weights must be >= 0 for posendf, nrdf, haar; got {self.weights}"
                )
            if sum(self.weights.values()) <= 0:
                raise InvalidArgumentError("mixture weights must not all be zero")

    def levels(self, name: str) -> tuple[float, ...]:
        return tuple(float(v) for v in self.sigmas.get(name, _DEFAULT_SIGMAS[name]))

    def describe(self) -> dict[str, object]:
        """The scheme as data (for manifests)."""
        names = list(_SCHEME_IDS) if self.scheme == "mixture" else [self.scheme]
        out: dict[str, object] = {"scheme": self.scheme, "sigmas": {n: list(self.levels(n)) for n in names}}
        if self.scheme == "mixture":
            out["weights"] = dict(self.weights)
        return out


def words_per_sample(joints: int) -> int:
    """The 64-bit words each (pose, sample) draws, used or not (4 per joint and 8 more)."""
    return 4 * joints + 8


def _mix(z: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def _seed_state(seed: int) -> np.uint64:
    return np.uint64(
        _mix(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64) ^ np.uint64(0x616D6173736B6974))[0]
    )


def uniforms(seed: int, first_sample: int, samples: int, words: int) -> np.ndarray:
    """``(samples, words)`` uniform numbers in ``[0, 1)`` (float64, 53 bits) for the global samples
    ``first_sample, ..., first_sample + samples - 1``."""
    return uniforms_of(seed, np.arange(samples, dtype=np.uint64) + np.uint64(first_sample), words)


def uniforms_of(seed: int, sample_ids: np.ndarray, words: int) -> np.ndarray:
    """``(len(sample_ids), words)`` uniform numbers in ``[0, 1)`` for the given global sample numbers."""
    counter = np.asarray(sample_ids, dtype=np.uint64)[:, None] * np.uint64(words)
    counter = counter + np.arange(words, dtype=np.uint64)[None, :]
    with np.errstate(over="ignore"):
        state = _seed_state(seed) + (counter + np.uint64(1)) * _GOLDEN
    return (_mix(state) >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def _gaussian(u1: np.ndarray, u2: np.ndarray) -> np.ndarray:
    """Box-Muller: one standard normal from two uniforms."""
    return np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2)


def _posendf(q: np.ndarray, u: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    J = q.shape[-2]
    e = 2.0 * u[:, : 4 * J].reshape(-1, J, 4) - 1.0
    return q + sigma[:, None, None] * e


def _nrdf(q: np.ndarray, u: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    J = q.shape[-2]
    total = sigma * np.abs(_gaussian(u[:, 0], u[:, 1]))
    e = -np.log1p(-u[:, 2 : 2 + J])
    weights = e / e.sum(1, keepdims=True)
    z = 2.0 * u[:, 2 + J : 2 + 2 * J] - 1.0
    phi = 2.0 * np.pi * u[:, 2 + 2 * J : 2 + 3 * J]
    r = np.sqrt(np.maximum(0.0, 1.0 - z * z))
    axis = np.stack([r * np.cos(phi), r * np.sin(phi), z], -1)
    half = 0.5 * total[:, None] * weights
    turn = np.concatenate([np.sin(half)[..., None] * axis, np.cos(half)[..., None]], -1)
    return quat_product(turn, q)


def _haar(q: np.ndarray, u: np.ndarray) -> np.ndarray:
    J = q.shape[-2]
    u1, u2, u3 = u[:, :J], u[:, J : 2 * J], u[:, 2 * J : 3 * J]
    a, b = np.sqrt(1.0 - u1), np.sqrt(u1)
    return np.stack(
        [
            a * np.sin(2 * np.pi * u2),
            a * np.cos(2 * np.pi * u2),
            b * np.sin(2 * np.pi * u3),
            b * np.cos(2 * np.pi * u3),
        ],
        -1,
    )


def perturb(
    poses: np.ndarray,
    *,
    samples: int,
    noise: NoiseConfig,
    seed: int,
    first_pose: int = 0,
    pose_ids: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``samples`` perturbed copies of every pose of ``poses (P, J, 4)``, the poses numbered from ``first_pose`` in
    the whole set (so any chunk of a set gives the same result as the whole set), or by ``pose_ids (P,)``.

    Returns:
        ``noisy (P, samples, J, 4)`` float32 (``w >= 0``), ``scheme (P, samples)`` int8 (0 posendf, 1 nrdf,
        2 haar) and ``sigma (P, samples)`` float32 of each sample.
    """
    poses = np.asarray(poses)
    if poses.ndim != 3 or poses.shape[-1] != 4:
        raise InvalidArgumentError(f"poses must be (P, J, 4) quaternions, got {poses.shape}")
    if samples < 1:
        raise InvalidArgumentError(f"samples must be at least 1, got {samples}")
    P, J = poses.shape[:2]
    W = words_per_sample(J)
    ids = np.arange(first_pose, first_pose + P) if pose_ids is None else np.asarray(pose_ids, dtype=np.int64)
    if ids.shape != (P,):
        raise InvalidArgumentError(f"pose_ids must be ({P},), got {ids.shape}")
    u = uniforms_of(seed, (ids[:, None] * samples + np.arange(samples)[None]).reshape(-1), W)
    q = np.repeat(poses.astype(np.float64), samples, axis=0)  # (P * S, J, 4), sample-major within each pose
    s_index = np.tile(np.arange(samples), P)
    if noise.scheme == "mixture":
        names = [n for n in _SCHEME_IDS if noise.weights.get(n, 0) > 0]
        cum = np.cumsum([noise.weights[n] for n in names]) / sum(noise.weights[n] for n in names)
        pick = np.minimum(np.searchsorted(cum, u[:, W - 1], side="right"), len(names) - 1)
        scheme = np.array([_SCHEME_IDS[n] for n in names], dtype=np.int8)[pick]
    else:
        scheme = np.full(P * samples, _SCHEME_IDS[noise.scheme], dtype=np.int8)
    out = np.empty_like(q)
    sigma = np.zeros(P * samples)
    for name, sid in _SCHEME_IDS.items():
        rows = np.flatnonzero(scheme == sid)
        if not len(rows):
            continue
        levels = np.asarray(noise.levels(name))
        sig = levels[s_index[rows] % len(levels)]
        sigma[rows] = sig
        if name == "posendf":
            out[rows] = _posendf(q[rows], u[rows], sig)
        elif name == "nrdf":
            out[rows] = _nrdf(q[rows], u[rows], sig)
        else:
            out[rows] = _haar(q[rows], u[rows])
    out /= np.linalg.norm(out, axis=-1, keepdims=True)
    out = quat_canonical(out)
    return (
        out.astype(np.float32).reshape(P, samples, J, 4),
        scheme.reshape(P, samples),
        sigma.astype(np.float32).reshape(P, samples),
    )
