"""The flat pose vectors of the AMASS releases, and their named parts.

Two flat layouts exist, both axis-angle (``rotvec``), frame axis first:

* ``smplh`` (156 values, ``*_poses.npz``): root 3 | body 63 | left hand 45 | right hand 45.
* ``smplx`` (165 values, ``*_stageii.npz``): root 3 | body 63 | jaw 3 | eyes 6 | left hand 45 | right hand 45.

The named parts are ``root_orient (..., 3)``, ``pose_body (..., 21, 3)``, ``pose_hand (..., 30, 3)`` (left hand's 15
joints, then the right hand's), ``pose_jaw (..., 3)`` and ``pose_eye (..., 2, 3)`` (left, right). These functions are
pure and work on any leading batch shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from .errors import InvalidArgumentError
from .topology import NUM_BODY_JOINTS, NUM_HAND_JOINTS

__all__ = [
    "LAYOUTS",
    "PART_SHAPES",
    "RELEASE_SUFFIXES",
    "PoseLayout",
    "get_layout",
    "join_pose_parts",
    "sequence_name",
    "split_flat_poses",
]

PART_SHAPES: Final[dict[str, tuple[int, ...]]] = {
    "root_orient": (3,),
    "pose_body": (NUM_BODY_JOINTS, 3),
    "pose_hand": (2 * NUM_HAND_JOINTS, 3),
    "pose_jaw": (3,),
    "pose_eye": (2, 3),
}
"""Trailing shape of each named pose part."""


@dataclass(frozen=True)
class PoseLayout:
    """A flat pose layout: which part sits at which columns.

    Attributes:
        name: ``"smplh"`` or ``"smplx"``.
        width: number of values per frame (156 or 165).
        slices: part name -> columns of the flat vector. Hands are split in two slices (left, right) in ``smplx``
            only because jaw and eyes sit between body and hands; both layouts keep the hands contiguous.
    """

    name: str
    width: int
    slices: tuple[tuple[str, slice], ...]

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.slices)


LAYOUTS: Final[dict[str, PoseLayout]] = {
    "smplh": PoseLayout(
        "smplh",
        156,
        (("root_orient", slice(0, 3)), ("pose_body", slice(3, 66)), ("pose_hand", slice(66, 156))),
    ),
    "smplx": PoseLayout(
        "smplx",
        165,
        (
            ("root_orient", slice(0, 3)),
            ("pose_body", slice(3, 66)),
            ("pose_jaw", slice(66, 69)),
            ("pose_eye", slice(69, 75)),
            ("pose_hand", slice(75, 165)),
        ),
    ),
}


def get_layout(layout: str | PoseLayout) -> PoseLayout:
    """The :class:`PoseLayout` named ``layout`` (``"smplh"``/``"smplx"``, or a layout passed through)."""
    if isinstance(layout, PoseLayout):
        return layout
    try:
        return LAYOUTS[str(layout)]
    except KeyError:
        raise InvalidArgumentError(
            f"Unknown pose layout {layout!r}; expected one of {sorted(LAYOUTS)}."
        ) from None


def split_flat_poses(poses: np.ndarray, layout: str | PoseLayout) -> dict[str, np.ndarray]:
    """Split flat poses into named parts.

    Args:
        poses: ``(..., 156)`` for ``smplh`` or ``(..., 165)`` for ``smplx``, axis-angle.
        layout: the layout of ``poses``.

    Returns:
        Part name -> array of shape ``(..., *PART_SHAPES[name])``; views of ``poses`` where possible.

    Raises:
        ValueError: the last axis does not match the layout.
    """
    lay = get_layout(layout)
    if poses.shape[-1:] != (lay.width,):
        raise InvalidArgumentError(
            f"Layout {lay.name!r} needs poses (..., {lay.width}), got {tuple(poses.shape)}."
        )
    lead = poses.shape[:-1]
    return {name: poses[..., cols].reshape(*lead, *PART_SHAPES[name]) for name, cols in lay.slices}


def join_pose_parts(
    parts: dict[str, np.ndarray | None], layout: str | PoseLayout, *, dtype: object | None = None
) -> np.ndarray:
    """Join named parts into one flat pose vector.

    Parts the layout has but ``parts`` lacks (or holds as ``None``) are filled with zeros: the rest pose, as when a
    SMPL+H motion is written in the SMPL-X layout (jaw and eyes closed and straight). Parts the layout has no room for
    are dropped (jaw and eyes, written in the SMPL+H layout).

    Args:
        parts: part name -> ``(..., *PART_SHAPES[name])``; ``root_orient`` and ``pose_body`` are required.
        layout: the layout to produce.
        dtype: dtype of the result; default: that of ``root_orient``.

    Returns:
        ``(..., 156)`` or ``(..., 165)``.

    Raises:
        ValueError: a required part is missing, or a part's shape does not fit.
    """
    lay = get_layout(layout)
    root = parts.get("root_orient")
    if root is None or parts.get("pose_body") is None:
        raise InvalidArgumentError("join_pose_parts needs at least 'root_orient' and 'pose_body'.")
    lead = root.shape[:-1]
    out = np.zeros((*lead, lay.width), dtype=root.dtype if dtype is None else np.dtype(dtype))  # type: ignore[call-overload]
    for name, cols in lay.slices:
        value = parts.get(name)
        if value is None:
            continue
        expected = (*lead, *PART_SHAPES[name])
        if tuple(value.shape) != expected:
            raise InvalidArgumentError(f"Part {name!r} must have shape {expected}, got {tuple(value.shape)}.")
        out[..., cols] = value.reshape(*lead, cols.stop - cols.start)
    return out


RELEASE_SUFFIXES: Final[tuple[str, ...]] = ("_poses", "_stageii")
"""What the releases append to a sequence's name: ``_poses`` (SMPL+H), ``_stageii`` (SMPL-X)."""


def sequence_name(filename: str) -> str:
    """The sequence's name from its file name: without ``.npz`` (any case) and the release suffix
    (``01_01_poses.npz`` -> ``01_01``, ``Walk_stageii.npz`` -> ``Walk``)."""
    stem = filename[: -len(".npz")] if filename.lower().endswith(".npz") else filename
    for suffix in RELEASE_SUFFIXES:
        if stem.endswith(suffix):
            return stem[: -len(suffix)]
    return stem
