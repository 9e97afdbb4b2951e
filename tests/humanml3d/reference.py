"""An independent plain reimplementation of HumanML3D's feature step, for the tests: per-frame loops in float64, and
rotation matrices where the library uses quaternions (so no formula is shared with it). Written from the published
definition (EricGuo5513/HumanML3D ``motion_representation``, ``common/skeleton.py`` as released), quirks included."""

from __future__ import annotations

import math

import numpy as np

CHAINS = ((0, 2, 5, 8, 11), (0, 1, 4, 7, 10), (0, 3, 6, 9, 12, 15), (9, 14, 17, 19, 21), (9, 13, 16, 18, 20))
DIRECTIONS = {1: (1, 0, 0), 2: (-1, 0, 0), 13: (1, 0, 0), 14: (-1, 0, 0), 10: (0, 0, 1), 11: (0, 0, 1),
              15: (0, 0, 1), 3: (0, 1, 0), 6: (0, 1, 0), 9: (0, 1, 0), 12: (0, 1, 0)}  # fmt: skip
REST = np.array([DIRECTIONS.get(j, (0, -1, 0)) if j else (0, 0, 0) for j in range(22)], dtype=float)
PARENT = {c[i + 1]: c[i] for c in CHAINS for i in range(len(c) - 1)}


def rotation_between(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The smallest rotation matrix taking the direction u to the direction v (Rodrigues)."""
    u, v = u / np.linalg.norm(u), v / np.linalg.norm(v)
    axis = np.cross(u, v)
    s, c = np.linalg.norm(axis), float(u @ v)
    if s < 1e-15:
        return np.eye(3)
    k = axis / s
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + s * K + (1 - c) * K @ K


def about_y(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def smooth(x: np.ndarray, sigma: float = 20.0) -> np.ndarray:
    """A truncated Gaussian (4 sigma) along axis 0, the ends held at their edge values, sample by sample."""
    r = int(4 * sigma + 0.5)
    w = [math.exp(-0.5 * (i / sigma) ** 2) for i in range(-r, r + 1)]
    total = sum(w)
    out = np.zeros_like(x)
    for t in range(len(x)):
        for i, wi in zip(range(-r, r + 1), w, strict=True):
            out[t] += wi / total * x[min(max(t + i, 0), len(x) - 1)]
    return out


def facing(joints: np.ndarray, *, hips_sign: float) -> np.ndarray:
    """The facing direction (y x across) of each frame; ``hips_sign`` -1 reads the hips as the published inverse
    kinematics does."""
    out = []
    for p in joints:
        across = hips_sign * (p[2] - p[1]) + (p[17] - p[16])
        across = across / np.linalg.norm(across)
        out.append(np.cross([0.0, 1.0, 0.0], across))
    return np.array(out)


def turn_to_z(forward: np.ndarray) -> np.ndarray:
    """The rotation about y taking a horizontal direction to +z."""
    return about_y(-math.atan2(forward[0], forward[2]))


def inverse_kinematics(joints: np.ndarray, *, smooth_forward: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: the root's rotation matrix (the first frame's the identity) and each joint's local one."""
    forward = facing(joints, hips_sign=-1.0)
    if smooth_forward:
        forward = smooth(forward)
    roots, local = [], np.zeros((len(joints), 22, 3, 3))
    for t, p in enumerate(joints):
        root = np.eye(3) if t == 0 else turn_to_z(forward[t])
        roots.append(root)
        for chain in CHAINS:
            acc = root
            for j in chain[1:]:
                R = acc.T @ rotation_between(REST[j], p[j] - p[PARENT[j]])
                local[t, j] = R
                acc = acc @ R
    return np.array(roots), local


def forward_kinematics(
    roots: np.ndarray, local: np.ndarray, root_pos: np.ndarray, lengths: np.ndarray
) -> np.ndarray:
    out = np.zeros((len(roots), 22, 3))
    for t in range(len(roots)):
        out[t, 0] = root_pos[t]
        for chain in CHAINS:
            acc = roots[t]
            for j in chain[1:]:
                acc = acc @ local[t, j]
                out[t, j] = out[t, PARENT[j]] + acc @ (lengths[j] * REST[j])
    return out


def canonical(joints: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The motion re-posed on the skeleton of ``lengths``, on the floor, its first root at the origin on the ground,
    its first frame facing +z."""
    joints = np.asarray(joints, dtype=float)[:, :22]
    first = joints[0]
    own = [0.0] + [float(np.linalg.norm(first[j] - first[PARENT[j]])) for j in range(1, 22)]
    scale = (lengths[5] + lengths[8]) / (own[5] + own[8])
    roots, local = inverse_kinematics(joints, smooth_forward=False)
    pos = forward_kinematics(roots, local, joints[:, 0] * scale, lengths)
    pos[..., 1] -= pos[..., 1].min()
    start = pos[0].copy()
    pos = pos - np.array([start[0, 0], 0.0, start[0, 2]])
    turn = turn_to_z(facing(start[None], hips_sign=1.0)[0])
    return pos @ turn.T


def features(joints: np.ndarray, lengths: np.ndarray, threshold: float = 0.002) -> np.ndarray:
    world = canonical(joints, lengths)
    roots, local = inverse_kinematics(world, smooth_forward=True)
    rows = []
    for t in range(len(world) - 1):
        step = roots[t + 1] @ roots[t].T
        theta = math.atan2(step[0, 2], step[0, 0])
        root_velocity = roots[t + 1] @ (world[t + 1, 0] - world[t, 0])
        ric = [roots[t] @ (world[t, j] - np.array([world[t, 0, 0], 0, world[t, 0, 2]])) for j in range(1, 22)]
        rot = [np.concatenate([local[t, j][:, 0], local[t, j][:, 1]]) for j in range(1, 22)]
        vel = [roots[t] @ (world[t + 1, j] - world[t, j]) for j in range(22)]
        feet = [float(np.sum((world[t + 1, j] - world[t, j]) ** 2) < threshold) for j in (7, 10, 8, 11)]
        rows.append(np.concatenate([[math.asin(math.sin(theta / 2))], root_velocity[[0, 2]], [world[t, 0, 1]],
                                    np.ravel(ric), np.ravel(rot), np.ravel(vel), feet]))  # fmt: skip
    return np.array(rows)


def recover(features: np.ndarray) -> np.ndarray:
    """Positions from features, frame by frame: integrate the root's turn and velocity, place the ric joints."""
    out, angle, root = [], 0.0, np.zeros(3)
    for t, f in enumerate(features):
        if t:
            angle += features[t - 1, 0]
            root = root + about_y(2 * angle).T @ np.array([features[t - 1, 1], 0.0, features[t - 1, 2]])
        back = about_y(2 * angle).T
        here = np.array([root[0], f[3], root[2]])
        ric = f[4:67].reshape(21, 3)
        out.append(np.vstack([here, [back @ r + np.array([root[0], 0, root[2]]) for r in ric]]))
    return np.array(out)
