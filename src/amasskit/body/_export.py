"""Writing meshes and joint arrays for other tools: OBJ and PLY (binary little-endian), ``.npy``; all atomic."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from .._util.atomic import atomic_open
from ..errors import InvalidArgumentError

__all__ = ["write_mesh", "write_npy"]


def write_mesh(path: str | os.PathLike[str], vertices: np.ndarray, faces: np.ndarray) -> Path:
    """Write a triangle mesh as ``.obj`` or ``.ply`` (by the suffix), atomically.

    Args:
        path: ``*.obj`` or ``*.ply``.
        vertices: ``(V, 3)``.
        faces: ``(F, 3)`` 0-based vertex indices.

    Raises:
        ValueError: another suffix, or arrays of the wrong shape.
    """
    target = Path(path)
    v = np.asarray(vertices, dtype=np.float32)
    f = np.asarray(faces, dtype=np.int64)
    if v.ndim != 2 or v.shape[1] != 3 or f.ndim != 2 or f.shape[1] != 3:
        raise InvalidArgumentError(f"need vertices (V, 3) and faces (F, 3), got {v.shape} and {f.shape}")
    suffix = target.suffix.lower()
    if suffix == ".obj":
        buf = io.StringIO()
        buf.write("# written by amasskit\n")
        np.savetxt(buf, v, fmt="v %.6f %.6f %.6f")
        np.savetxt(buf, f + 1, fmt="f %d %d %d")
        data = buf.getvalue().encode()
    elif suffix == ".ply":
        header = (
            "ply\nformat binary_little_endian 1.0\ncomment written by amasskit\n"
            f"element vertex {len(v)}\nproperty float x\nproperty float y\nproperty float z\n"
            f"element face {len(f)}\nproperty list uchar int vertex_indices\nend_header\n"
        )
        face_records = np.empty(len(f), dtype=[("n", "u1"), ("idx", "<i4", (3,))])
        face_records["n"] = 3
        face_records["idx"] = f
        data = header.encode() + v.astype("<f4").tobytes() + face_records.tobytes()
    else:
        raise InvalidArgumentError(f"{target}: mesh files are .obj or .ply")
    with atomic_open(target) as fp:
        fp.write(data)
    return target


def write_npy(path: str | os.PathLike[str], array: np.ndarray) -> Path:
    """Save ``array`` as ``.npy``, atomically."""
    target = Path(path)
    with atomic_open(target) as fp:
        np.save(fp, np.asarray(array), allow_pickle=False)
    return target
