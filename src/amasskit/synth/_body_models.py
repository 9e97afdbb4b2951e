"""Synthetic body-model files with the exact keys and shapes of the real (licensed) ones.

The mesh is amasskit's own humanoid: one capsule per joint (from the joint towards its child), glued along the
kinematic tree by small tubes into one closed surface, with the real vertex and face counts (SMPL+H 6,890 / 13,776;
SMPL-X 10,475 / 20,908, eyeballs as separate parts and a mouth opening). Every array the real files hold is there with
its real shape:

* skinning ``weights`` follow the capsules, blending into the parent joint near each joint;
* ``J_regressor`` row ``j`` averages the ring of vertices around joint ``j``, so ``J_regressor @ v_template`` gives the
  template's joints exactly, and shaped joints follow the shaped surface;
* ``shapedirs``: the first components are height, girth, leg length and shoulder width, the rest smooth random fields;
  SMPL-X's last 100 are expressions around the face;
* ``posedirs``, DMPL ``eigvec``: small, smooth, local fields.

Everything is deterministic for a seed. None of it is derived from the licensed models; it is for tests, the demo and
benchmarks, and each file says so in ``amasskit_meta``.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import numpy as np

from .._util.atomic import atomic_open
from ..io import META_KEY
from ..sequence import Gender
from ..topology import SMPLH_PARENTS, SMPLX_PARENTS
from ._pickles import CscMatrix, dumps_released
from ._tree import SYNTHETIC_NOTE

__all__ = [
    "BODY_MODEL_SIZES",
    "body_model_arrays",
    "dmpl_arrays",
    "humanoid_joints",
    "mask_ids",
    "transfer_coo",
    "write_body_models",
]

logger = logging.getLogger(__name__)

BodyModelName = Literal["smplh", "smplx"]


@dataclass(frozen=True)
class _Sizes:
    vertices: int
    faces: int
    joints: int
    shape_dims: int  # columns of shapedirs (SMPL-X: 300 shape + 100 expression)


BODY_MODEL_SIZES: Final[dict[str, _Sizes]] = {
    "smplh": _Sizes(6890, 13776, 52, 16),
    "smplx": _Sizes(10475, 20908, 55, 400),
}
NUM_DMPLS: Final[int] = 8

# Rest-pose joints of amasskit's humanoid, model frame (Y-up, facing +Z, +X to the subject's left), metres.
_BODY_JOINTS = np.array([
    [0.0, -0.23, 0.02], [0.07, -0.32, 0.01], [-0.07, -0.32, 0.01], [0.0, -0.12, 0.0],
    [0.10, -0.70, 0.01], [-0.10, -0.70, 0.01], [0.0, 0.02, 0.02], [0.09, -1.10, -0.03],
    [-0.09, -1.10, -0.03], [0.0, 0.08, 0.03], [0.11, -1.16, 0.09], [-0.11, -1.16, 0.09],
    [0.0, 0.29, -0.01], [0.08, 0.20, 0.0], [-0.08, 0.20, 0.0], [0.0, 0.36, 0.03],
    [0.18, 0.22, -0.01], [-0.18, 0.22, -0.01], [0.44, 0.21, -0.03], [-0.44, 0.21, -0.03],
    [0.70, 0.22, -0.02], [-0.70, 0.22, -0.02],
])  # fmt: skip
_BODY_RADII = np.array([
    0.12, 0.075, 0.075, 0.12, 0.05, 0.05, 0.12, 0.04, 0.04, 0.13, 0.035, 0.035,
    0.05, 0.05, 0.05, 0.09, 0.045, 0.045, 0.035, 0.035, 0.03, 0.03,
])  # fmt: skip
# finger bases relative to the left wrist, and each finger's direction: index, middle, pinky, ring, thumb
_FINGER_BASE = np.array([[0.09, 0.0, 0.03], [0.095, 0.0, 0.008], [0.08, -0.005, -0.035], [0.09, -0.002, -0.015],
                         [0.03, -0.015, 0.04]])  # fmt: skip
_FINGER_DIR = np.array([[1.0, 0, 0.05], [1.0, 0, 0], [1.0, 0, -0.08], [1.0, 0, -0.04], [0.7, -0.1, 0.7]])
_PHALANX = np.array([0.035, 0.025, 0.02])
_GENDER_SCALE = {
    Gender.MALE: (1.0, 1.0, 1.0),
    Gender.FEMALE: (0.93, 0.9, 1.08),
    Gender.NEUTRAL: (0.965, 0.95, 1.04),
}


def _hand_joints(wrist: np.ndarray, side: float) -> np.ndarray:
    """``(15, 3)`` finger joints of one hand; ``side`` is +1 (left) or -1 (right, mirrored in x)."""
    out = []
    for base, direction in zip(_FINGER_BASE, _FINGER_DIR, strict=True):
        d = direction / np.linalg.norm(direction)
        p = wrist + base * [side, 1, 1]
        for k in range(3):
            out.append(p.copy())
            p = p + _PHALANX[k] * d * [side, 1, 1]
    return np.array(out)


def humanoid_joints(model: BodyModelName, gender: Gender | str = Gender.NEUTRAL) -> np.ndarray:
    """Rest-pose joints of amasskit's humanoid: ``(52, 3)`` (SMPL+H) or ``(55, 3)`` (SMPL-X), Y-up metres.

    Women are a little shorter with narrower shoulders and wider hips; ``neutral`` is in between.
    """
    height, shoulders, hips = _GENDER_SCALE[Gender.parse(gender)]
    body = _BODY_JOINTS.copy()
    body[:, 0] *= np.where(body[:, 1] > 0.1, shoulders, np.where(body[:, 1] < -0.2, hips, 1.0))
    body = body[0] + (body - body[0]) * height
    hands = [_hand_joints(body[20], 1.0), _hand_joints(body[21], -1.0)]
    if model == "smplh":
        return np.concatenate([body, *hands])
    face = body[15] + np.array([[0.0, 0.04, 0.0], [0.032, 0.11, 0.055], [-0.032, 0.11, 0.055]]) * height
    return np.concatenate([body, face, *hands])


# ---------------------------------------------------------------------------------------------- mesh


@dataclass
class _Capsule:
    start: np.ndarray  # the joint
    end: np.ndarray
    radius: float
    joint: int
    segments: int
    ring_at_start: np.ndarray | None = None  # vertex ids of the ring around the joint


def _capsule_specs(model: BodyModelName, joints: np.ndarray) -> list[_Capsule]:
    parents = SMPLH_PARENTS if model == "smplh" else SMPLX_PARENTS
    children: dict[int, list[int]] = {}
    for j, p in enumerate(parents):
        if p >= 0:
            children.setdefault(p, []).append(j)
    caps = []
    for j in range(len(parents)):
        start = joints[j]
        kids = children.get(j, [])
        if j == 0:
            end, radius, segs = joints[3], 0.12, 16
        elif j < 22:
            radius, segs = float(_BODY_RADII[j]), 16 if _BODY_RADII[j] > 0.06 else 12
            if j == 15:
                end = start + np.array([0.0, 0.15, 0.0])
            elif j in (10, 11):
                end = start + np.array([0.0, -0.02, 0.10])
            elif j == 9:
                end = joints[12]
            elif j in (20, 21):
                end = start + np.array([0.07 if j == 20 else -0.07, 0.0, 0.0])
            else:
                end = joints[kids[0]]
        elif model == "smplx" and j == 22:  # jaw
            end, radius, segs = start + np.array([0.0, -0.05, 0.08]), 0.03, 8
        elif model == "smplx" and j in (23, 24):  # eyeballs: spheres
            end, radius, segs = start.copy(), 0.012, 8
        else:  # finger joints
            end = joints[kids[0]] if kids else start + (start - joints[parents[j]]) * 0.8
            radius, segs = 0.009, 6
        caps.append(_Capsule(np.asarray(start, float), np.asarray(end, float), radius, j, segs))
    return caps


def _frame(axis: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    length = float(np.linalg.norm(axis))
    d = axis / length if length > 1e-9 else np.array([0.0, 1.0, 0.0])
    helper = np.array([1.0, 0.0, 0.0]) if abs(d[0]) < 0.9 else np.array([0.0, 0.0, 1.0])
    u = np.cross(d, helper)
    u /= np.linalg.norm(u)
    return d, u, np.cross(d, u)


def _capsule_mesh(cap: _Capsule, cyl_rings: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Vertices, outward faces (local indices) and the index of the ring at the start (the joint)."""
    axis = cap.end - cap.start
    length = float(np.linalg.norm(axis))
    d, u, w = _frame(axis)
    n_cap = 3
    rings: list[tuple[float, float]] = []  # (offset along d from start, ring radius)
    for i in range(1, n_cap + 1):
        theta = 0.5 * np.pi * i / n_cap
        rings.append((-cap.radius * np.cos(theta), cap.radius * np.sin(theta)))
    start_ring = len(rings) - 1
    for i in range(1, cyl_rings + 1):
        rings.append((length * i / (cyl_rings + 1), cap.radius))
    if length > 1e-9:
        for i in range(n_cap, 0, -1):
            theta = 0.5 * np.pi * i / n_cap
            rings.append((length + cap.radius * np.cos(theta), cap.radius * np.sin(theta)))
    else:
        for i in range(n_cap - 1, 0, -1):  # a sphere: the start ring is its equator
            theta = 0.5 * np.pi * i / n_cap
            rings.append((cap.radius * np.cos(theta), cap.radius * np.sin(theta)))
    s = cap.segments
    phi = 2 * np.pi * np.arange(s) / s
    circle = np.cos(phi)[:, None] * u + np.sin(phi)[:, None] * w  # (s, 3)
    verts = [cap.start - cap.radius * d]
    for offset, radius in rings:
        verts.extend(cap.start + offset * d + radius * circle)
    verts.append(cap.start + (length + cap.radius) * d)
    v = np.array(verts)
    faces = []
    n_rings = len(rings)
    top = 1 + n_rings * s
    for k in range(s):
        faces.append((0, 1 + (k + 1) % s, 1 + k))
    for r in range(n_rings - 1):
        a, b = 1 + r * s, 1 + (r + 1) * s
        for k in range(s):
            k1 = (k + 1) % s
            faces.append((a + k, a + k1, b + k))
            faces.append((a + k1, b + k1, b + k))
    last = 1 + (n_rings - 1) * s
    for k in range(s):
        faces.append((top, last + k, last + (k + 1) % s))
    f = np.array(faces, dtype=np.int64)
    # orient every face outwards from the capsule's axis
    centroids = v[f].mean(axis=1)
    t = np.clip((centroids - cap.start) @ d, 0.0, max(length, 0.0))
    outward = centroids - (cap.start + t[:, None] * d)
    normals = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    flip = (normals * outward).sum(axis=1) < 0
    f[flip] = f[flip][:, [0, 2, 1]]
    return v, f, 1 + start_ring * s


def _tube(a: np.ndarray, b: np.ndarray, verts: np.ndarray) -> np.ndarray:
    """Six faces joining the hole left by removed face ``a`` to the hole left by removed face ``b``."""
    best = None
    for shift in range(3):
        br = b[::-1][np.roll(np.arange(3), shift)]
        cost = float(np.linalg.norm(verts[a] - verts[br], axis=1).sum())
        if best is None or cost < best[0]:
            best = (cost, br)
    assert best is not None
    br = best[1]
    out = []
    for i in range(3):
        i1 = (i + 1) % 3
        # the tube takes over the removed faces' own edges: a_i -> a_i1 and (b reversed) br_i1 -> br_i
        out.append((a[i], a[i1], br[i1]))
        out.append((a[i], br[i1], br[i]))
    return np.array(out, dtype=np.int64)


def _gendered_mesh(
    model: BodyModelName, gender: Gender
) -> tuple[np.ndarray, np.ndarray, list[_Capsule], np.ndarray]:
    """The humanoid mesh of ``gender`` on the neutral mesh's topology (see :func:`_humanoid_mesh` for the outputs).

    The released models of one kind share their mesh across genders (vertex ``i`` is the same surface point on all
    three), which is what lets one deformation-transfer file serve every gender. So the mesh is built once, for the
    neutral body, and each vertex is carried to the gender's body by its capsule: along the axis in proportion to the
    capsule's length (the end caps by the radius), around it scaled by the radius and turned with the axis.
    """
    verts, faces, caps, owner = _neutral_mesh(model)
    if gender is Gender.NEUTRAL:
        return verts, faces, caps, owner
    target = _capsule_specs(model, humanoid_joints(model, gender))
    out = verts.copy()
    for i, (c0, c1) in enumerate(zip(caps, target, strict=True)):
        c1.ring_at_start = c0.ring_at_start
        idx = np.flatnonzero(owner == i)
        ratio = c1.radius / c0.radius
        a0, a1 = c0.end - c0.start, c1.end - c1.start
        L0, L1 = float(np.linalg.norm(a0)), float(np.linalg.norm(a1))
        rel = verts[idx] - c0.start
        if L0 < 1e-9 or L1 < 1e-9:  # spheres (eyeballs)
            out[idx] = c1.start + rel * ratio
            continue
        d0, d1 = a0 / L0, a1 / L1
        t = rel @ d0
        radial = rel - t[:, None] * d0
        t_new = np.where(t < 0, t * ratio, np.where(t > L0, L1 + (t - L0) * ratio, t * L1 / L0))
        out[idx] = c1.start + _turn(d0, d1, radial * ratio) + t_new[:, None] * d1
    return out, faces, target, owner


def _turn(a: np.ndarray, b: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``v (N, 3)`` turned by the rotation taking unit ``a`` to unit ``b`` (Rodrigues; a and b are never opposite
    here: the genders' bones point the same way to within a few degrees)."""
    axis = np.cross(a, b)
    s, c = float(np.linalg.norm(axis)), float(a @ b)
    if s < 1e-12:
        return v
    k = axis / s
    return v * c + np.cross(k, v) * s + np.outer(v @ k, k) * (1 - c)


@functools.lru_cache(maxsize=2)
def _neutral_mesh_built(model: BodyModelName) -> tuple[np.ndarray, np.ndarray, list[_Capsule], np.ndarray]:
    return _humanoid_mesh(model, humanoid_joints(model, Gender.NEUTRAL))


def _neutral_mesh(model: BodyModelName) -> tuple[np.ndarray, np.ndarray, list[_Capsule], np.ndarray]:
    """The neutral humanoid mesh of ``model`` (see :func:`_humanoid_mesh`): built once per process (about 0.15 s,
    and every model file, gender, transfer and mask starts from it), handed out as copies."""
    verts, faces, caps, owner = _neutral_mesh_built(model)
    return verts.copy(), faces.copy(), copy.deepcopy(caps), owner.copy()


def _humanoid_mesh(
    model: BodyModelName, joints: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[_Capsule], np.ndarray]:
    """Vertices ``(V, 3)``, faces ``(F, 3)``, the capsules, and each vertex's capsule ``(V,)``."""
    sizes = BODY_MODEL_SIZES[model]
    caps = _capsule_specs(model, joints)
    parents = SMPLH_PARENTS if model == "smplh" else SMPLX_PARENTS
    separate = {23, 24} if model == "smplx" else set()
    lengths = np.array([np.linalg.norm(c.end - c.start) for c in caps])
    fixed = np.array([2 + 6 * c.segments for c in caps])  # poles and cap rings (sphere: one ring less)
    fixed -= np.array([c.segments if lengths[i] < 1e-9 else 0 for i, c in enumerate(caps)])
    # cylinder rings per capsule: as many as the budget allows, spaced evenly along the body
    budget = sizes.vertices - int(fixed.sum())
    segs = np.array([c.segments for c in caps])
    lo, hi = 1e-4, 1.0
    for _ in range(60):  # bisect the ring spacing
        mid = (lo + hi) / 2
        used = int((np.floor(lengths / mid) * segs).sum())
        lo, hi = (mid, hi) if used > budget else (lo, mid)  # hi stays a spacing that fits
    rings = np.floor(lengths / hi).astype(int)
    verts_list, faces_list, owner_list = [], [], []
    offset = 0
    for i, cap in enumerate(caps):
        v, f, start_ring = _capsule_mesh(cap, int(rings[i]))
        cap.ring_at_start = offset + start_ring + np.arange(cap.segments)
        verts_list.append(v)
        faces_list.append(f + offset)
        owner_list.append(np.full(len(v), i))
        offset += len(v)
    verts = np.concatenate(verts_list)
    owner = np.concatenate(owner_list)
    face_owner = np.concatenate([np.full(len(f), i) for i, f in enumerate(faces_list)])
    faces = np.concatenate(faces_list)
    alive = np.ones(len(faces), dtype=bool)
    new_faces = []
    # glue each capsule to its parent's with a tube (a closed genus-0 surface: F = 2V - 4 per part)
    for j, p in enumerate(parents):
        if p < 0 or j in separate:
            continue
        centroids = verts[faces].mean(axis=1)
        mine = np.flatnonzero(alive & (face_owner == j))
        theirs = np.flatnonzero(alive & (face_owner == p))
        fa = mine[np.argmin(np.linalg.norm(centroids[mine] - caps[j].start, axis=1))]
        fb = theirs[np.argmin(np.linalg.norm(centroids[theirs] - caps[j].start, axis=1))]
        alive[[fa, fb]] = False
        new_faces.append(_tube(faces[fa], faces[fb], verts))
    faces = np.concatenate([faces[alive], *new_faces])
    is_tube = np.arange(len(faces)) >= int(alive.sum())
    # fill the vertex budget by splitting the largest capsule faces (1 vertex and 2 faces each)
    extra = sizes.vertices - len(verts)
    logger.debug("%s humanoid: %d capsule vertices, %d added by face splits", model, len(verts), extra)
    if extra < 0:
        raise AssertionError(f"humanoid mesh has {len(verts)} vertices, more than {sizes.vertices}")
    areas = np.linalg.norm(
        np.cross(verts[faces[:, 1]] - verts[faces[:, 0]], verts[faces[:, 2]] - verts[faces[:, 0]]), axis=1
    )
    areas[is_tube] = -1.0  # tubes lie inside the body; never put a vertex there
    split = np.argsort(-areas, kind="stable")[:extra]
    added_v = verts[faces[split]].mean(axis=1)
    ids = len(verts) + np.arange(extra)
    a, b, c = faces[split].T
    faces_keep = np.delete(faces, split, axis=0)
    faces = np.concatenate(
        [faces_keep, np.stack([a, b, ids], 1), np.stack([b, c, ids], 1), np.stack([c, a, ids], 1)]
    )
    verts = np.concatenate([verts, added_v])
    owner = np.concatenate([owner, owner[a]])
    # open the mouth (SMPL-X) to reach the real face count: remove the faces nearest the chin
    surplus = len(faces) - sizes.faces
    if surplus < 0:
        raise AssertionError(f"humanoid mesh has {len(faces)} faces, fewer than {sizes.faces}")
    if surplus:
        mouth = joints[15] + np.array([0.0, 0.0, 0.09])
        dist = np.linalg.norm(verts[faces].mean(axis=1) - mouth, axis=1)
        uses = np.bincount(faces.ravel(), minlength=len(verts))
        removed: list[int] = []
        for k in np.argsort(dist, kind="stable"):  # nearest first, never leaving a vertex without a face
            if len(removed) == surplus:
                break
            if (uses[faces[k]] > 1).all():
                uses[faces[k]] -= 1
                removed.append(int(k))
        faces = np.delete(faces, removed, axis=0)
    return verts, faces, caps, owner


# ---------------------------------------------------------------------------------------------- arrays


def _smooth_fields(points: np.ndarray, count: int, rng: np.random.Generator, scale: float) -> np.ndarray:
    """``(V, 3, count)`` smooth random vector fields over ``points (V, 3)``: a few low-frequency sinusoids each."""
    freq = rng.normal(0.0, 4.0, size=(count, 3, 3))  # (component, waves, xyz)
    phase = rng.uniform(0, 2 * np.pi, size=(count, 3))
    amp = rng.normal(0.0, 1.0, size=(count, 3, 3))  # (component, waves, output axis)
    # matrix products, not einsum: einsum without BLAS took a second per SMPL-X file
    waves = np.sin(
        (points @ freq.reshape(count * 3, 3).T).reshape(-1, count, 3) + phase[None]
    )  # (V, count, waves)
    return (
        np.matmul(waves.transpose(1, 0, 2), amp).transpose(1, 2, 0) * scale
    )  # (count, V, o) -> (V, o, count)


def body_model_arrays(
    model: BodyModelName, gender: Gender | str = Gender.NEUTRAL, *, seed: int = 0, hand_pca: bool = False
) -> dict[str, np.ndarray]:
    """The arrays of a synthetic body-model file, keyed and shaped as the real file.

    Args:
        model: ``smplh`` (AMASS ``smplh/{gender}/model.npz``) or ``smplx`` (``SMPLX_{GENDER}.npz``).
        gender: the model's gender.
        seed: the same seed gives the same arrays.
        hand_pca: also add the hand-PCA keys (``hands_componentsl/r``, ``hands_meanl/r``) to an SMPL+H model, as the
            ``smplx`` package needs them; SMPL-X files always have them.

    Returns:
        ``v_template (V, 3)``, ``f (F, 3)``, ``shapedirs (V, 3, S)``, ``posedirs (V, 3, 9(J-1))``,
        ``J_regressor (J, V)``, ``kintree_table (2, J)``, ``weights (V, J)``; SMPL-X adds the hand PCA and landmark
        arrays. All float64 (faces int32), as the released files.
    """
    g = Gender.parse(gender)
    sizes = BODY_MODEL_SIZES[model]
    rng = np.random.default_rng([seed, ["smplh", "smplx"].index(model), list(Gender).index(g)])
    joints = humanoid_joints(model, g)
    verts, faces, caps, owner = _gendered_mesh(model, g)
    V, J = sizes.vertices, sizes.joints
    parents = np.asarray(SMPLH_PARENTS if model == "smplh" else SMPLX_PARENTS)

    # skinning: each vertex to its capsule's joint, blending into the parent near the joint
    weights = np.zeros((V, J))
    axial = np.zeros(V)
    radial = np.zeros((V, 3))
    for i, cap in enumerate(caps):
        idx = np.flatnonzero(owner == i)
        axis = cap.end - cap.start
        length = max(float(np.linalg.norm(axis)), 1e-9)
        d = axis / length
        t = (verts[idx] - cap.start) @ d
        axial[idx] = t / length
        foot = cap.start + np.clip(t, 0, length)[:, None] * d
        out = verts[idx] - foot
        radial[idx] = out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)
        has_parent = parents[cap.joint] >= 0 and length > 1e-6  # eyeballs (spheres) follow their joint alone
        parent_share = np.clip(0.5 * (1.0 - t / (0.3 * length)), 0.0, 0.5) if has_parent else 0.0
        weights[idx, cap.joint] += 1.0 - parent_share
        if has_parent:
            weights[idx, parents[cap.joint]] += parent_share

    regressor = np.zeros((J, V))
    for cap in caps:
        assert cap.ring_at_start is not None
        regressor[cap.joint, cap.ring_at_start] = 1.0 / len(cap.ring_at_start)

    pelvis = joints[0]
    shapedirs = np.zeros((V, 3, sizes.shape_dims))
    shapedirs[:, :, 0] = (verts - pelvis) * 0.06  # height
    shapedirs[:, :, 1] = radial * 0.02  # girth
    legs = np.minimum(verts[:, 1] - pelvis[1], 0.0)
    shapedirs[:, 1, 2] = legs * 0.05  # leg length
    upper = np.clip((verts[:, 1] - joints[9, 1]) / 0.2, 0.0, 1.0)
    shapedirs[:, 0, 3] = verts[:, 0] * 0.08 * upper  # shoulder width
    num_shape = sizes.shape_dims if model == "smplh" else 300
    decay = 1.0 / np.arange(1, num_shape - 3)
    shapedirs[:, :, 4:num_shape] = _smooth_fields(verts, num_shape - 4, rng, 0.004) * decay
    if model == "smplx":  # expressions: around the face only
        face = np.exp(-((np.linalg.norm(verts - joints[22], axis=1) / 0.06) ** 2))[:, None, None]
        shapedirs[:, :, 300:] = _smooth_fields(verts, 100, rng, 0.003) * face

    # pose correctives: each joint's 9 (R - I) entries move the vertices it skins, a little
    posedirs = np.zeros((V, 3, 9 * (J - 1)))
    coeffs = rng.normal(0.0, 0.01, size=(J - 1, 9))
    for j in range(1, J):
        local = weights[:, j][:, None, None] * radial[:, :, None]  # (V, 3, 1)
        posedirs[:, :, 9 * (j - 1) : 9 * j] = local * coeffs[j - 1]

    kintree = np.stack([parents, np.arange(J)]).astype(np.int64)
    kintree[0, 0] = 4294967295  # as in the released files (an unsigned -1)
    arrays: dict[str, np.ndarray] = {
        "v_template": verts,
        "f": faces.astype(np.int32),
        "shapedirs": shapedirs,
        "posedirs": posedirs,
        "J_regressor": regressor,
        "kintree_table": kintree,
        "weights": weights,
    }
    if model == "smplx" or hand_pca:
        for side in "lr":
            q, _ = np.linalg.qr(rng.normal(size=(45, 45)))
            arrays[f"hands_components{side}"] = q
            arrays[f"hands_mean{side}"] = np.tile([0.0, 0.0, 0.15 if side == "l" else -0.15], 15)
    if model == "smplx":
        head = np.flatnonzero(owner == 15)
        head_faces = np.flatnonzero(np.isin(faces, head).all(axis=1))
        arrays["lmk_faces_idx"] = rng.choice(head_faces, size=51).astype(np.int64)
        arrays["lmk_bary_coords"] = rng.dirichlet(np.ones(3), size=51)
        arrays["dynamic_lmk_faces_idx"] = rng.choice(head_faces, size=(79, 17)).astype(np.int64)
        arrays["dynamic_lmk_bary_coords"] = rng.dirichlet(np.ones(3), size=(79, 17))
    return arrays


def dmpl_arrays(gender: Gender | str = Gender.NEUTRAL, *, seed: int = 0) -> dict[str, np.ndarray]:
    """A synthetic DMPL file: ``eigvec (6890, 3, 8)``, soft-tissue fields along the surface normal of the torso and
    thighs of the SMPL+H humanoid."""
    g = Gender.parse(gender)
    rng = np.random.default_rng([seed, 7, list(Gender).index(g)])
    verts, _faces, caps, owner = _gendered_mesh("smplh", g)
    soft = np.isin(owner, [0, 1, 2, 3, 6, 9, 16, 17])  # pelvis, thighs, spine, upper arms
    radial = np.zeros_like(verts)
    for i, cap in enumerate(caps):
        idx = np.flatnonzero(owner == i)
        d, _, _ = _frame(cap.end - cap.start)
        t = np.clip((verts[idx] - cap.start) @ d, 0, np.linalg.norm(cap.end - cap.start))
        out = verts[idx] - (cap.start + t[:, None] * d)
        radial[idx] = out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)
    amplitude = _smooth_fields(verts, NUM_DMPLS, rng, 1.0)[:, 0, :]  # (V, 8) scalar fields
    eigvec = radial[:, :, None] * amplitude[:, None, :] * 0.004 * soft[:, None, None]
    return {"eigvec": eigvec}


def transfer_coo(
    source: BodyModelName, target: BodyModelName
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]:
    """The deformation transfer between the synthetic meshes, as the entries of the released matrix
    ``(V_target, 2 V_source)``: each target vertex from its three nearest source vertices of the neutral rest meshes,
    inverse-distance weights summing to 1 (a point inside their triangle, as barycentric weights are); the normals'
    half repeats the positions' (amasskit does not use it). Computed once per process and direction (about 1.5 s),
    handed out as copies.

    Returns:
        ``(rows, cols, values, shape)``.
    """
    rows, cols, values, shape = _transfer_coo_built(source, target)
    return rows.copy(), cols.copy(), values.copy(), shape


@functools.lru_cache(maxsize=4)
def _transfer_coo_built(
    source: BodyModelName, target: BodyModelName
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]:
    src = _neutral_mesh(source)[0]  # the v_template of each model
    dst = _neutral_mesh(target)[0]
    rows, cols, values = [], [], []
    for start in range(0, len(dst), 1024):
        chunk = dst[start : start + 1024]
        d2 = (chunk**2).sum(1)[:, None] - 2.0 * chunk @ src.T + (src**2).sum(1)[None]
        near = np.argpartition(d2, 3, axis=1)[:, :3]
        dist = np.sqrt(np.maximum(np.take_along_axis(d2, near, axis=1), 0.0))
        inv = 1.0 / np.maximum(dist, 1e-9)
        w = inv / inv.sum(axis=1, keepdims=True)
        rows.append(np.repeat(np.arange(start, start + len(chunk)), 3))
        cols.append(near.reshape(-1))
        values.append(w.reshape(-1))
    r, c, v = np.concatenate(rows), np.concatenate(cols), np.concatenate(values)
    V_s = len(src)
    shape = (len(dst), 2 * V_s)
    return np.concatenate([r, r]), np.concatenate([c, c + V_s]), np.concatenate([v, v]), shape


def mask_ids() -> np.ndarray:
    """The SMPL-X vertex ids to fit (``smplx_mask_ids.npy``): every vertex of the synthetic SMPL-X mesh but the
    eyeballs', as the released mask leaves out the eyeballs and the inside of the mouth."""
    _verts, _faces, caps, owner = _neutral_mesh("smplx")
    eyes = [i for i, cap in enumerate(caps) if cap.joint in (23, 24)]
    return np.flatnonzero(~np.isin(owner, eyes)).astype(np.int64)


def _write_transfer(base: Path) -> list[Path]:
    """``transfer/<a>2<b>_deftrafo_setup.pkl`` both ways between the meshes (SMPL and SMPL+H share one), and the
    mask."""
    written = []
    folder = base / "transfer"
    for source, target in (("smplh", "smplx"), ("smplx", "smplh")):
        rows, cols, values, shape = transfer_coo(source, target)  # type: ignore[arg-type]
        payload = dumps_released(
            {"mtx": CscMatrix.from_coo(rows, cols, values, shape), "synthetic": SYNTHETIC_NOTE}
        )
        names = [f"{source}2{target}", f"{source.replace('smplh', 'smpl')}2{target.replace('smplh', 'smpl')}"]
        for name in names:
            path = folder / f"{name}_deftrafo_setup.pkl"
            with atomic_open(path, fsync=False) as fp:
                fp.write(payload)
            written.append(path)
    with atomic_open(folder / "smplx_mask_ids.npy", fsync=False) as fp:
        np.save(fp, mask_ids())
    written.append(folder / "smplx_mask_ids.npy")
    return written


def write_body_models(
    root: str | os.PathLike[str],
    *,
    seed: int = 0,
    models: tuple[BodyModelName, ...] = ("smplh", "smplx"),
    genders: tuple[Gender, ...] = (Gender.MALE, Gender.FEMALE, Gender.NEUTRAL),
    hand_pca: bool = False,
    transfer: bool = True,
) -> list[Path]:
    """Write synthetic body-model files in amasskit's model-folder layout (the one ``AMASSKIT_BODY_MODELS`` points at):

    ``root/smplh/{gender}/model.npz``, ``root/dmpls/{gender}/model.npz`` and ``root/smplx/SMPLX_{GENDER}.npz``; with
    both models and ``transfer``, also ``root/transfer/smplh2smplx_deftrafo_setup.pkl`` (and ``smplx2smplh``,
    ``smpl2smplx``, ``smplx2smpl``) in the released pickle layout, and ``root/transfer/smplx_mask_ids.npy``.

    Returns:
        The files written.
    """
    base = Path(root)
    meta = np.array(json.dumps({"synthetic": True, "note": SYNTHETIC_NOTE, "seed": seed}))
    written = []
    for model in models:
        for gender in genders:
            targets: list[tuple[Path, dict[str, np.ndarray]]] = []
            if model == "smplh":
                targets.append(
                    (
                        base / "smplh" / gender.value / "model.npz",
                        body_model_arrays(model, gender, seed=seed, hand_pca=hand_pca),
                    )
                )
                targets.append((base / "dmpls" / gender.value / "model.npz", dmpl_arrays(gender, seed=seed)))
            else:
                targets.append(
                    (
                        base / "smplx" / f"SMPLX_{gender.value.upper()}.npz",
                        body_model_arrays(model, gender, seed=seed),
                    )
                )
            for path, arrays in targets:
                with atomic_open(path, fsync=False) as fp:
                    np.savez(fp, **arrays, **{META_KEY: meta})  # type: ignore[arg-type]
                written.append(path)
    if transfer and {"smplh", "smplx"} <= set(models):
        written += _write_transfer(base)
    return written
