"""Flat AMASS pose layouts <-> named parts: property tests (Hypothesis) over shapes and values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from amasskit.layouts import LAYOUTS, PART_SHAPES, join_pose_parts, split_flat_poses

finite = st.floats(-10, 10, allow_nan=False, width=32)


@st.composite
def flat_poses(draw: st.DrawFn, layout: str) -> np.ndarray:
    lead = draw(array_shapes(min_dims=0, max_dims=3, max_side=4))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return draw(arrays(dtype, (*lead, LAYOUTS[layout].width), elements=finite))


@pytest.mark.parametrize("layout", ["smplh", "smplx"])
@given(data=st.data())
def test_split_then_join_is_identity(layout: str, data: st.DataObject) -> None:
    """flat -> parts -> flat returns the same array, dtype included, for any leading shape."""
    poses = data.draw(flat_poses(layout))
    parts = split_flat_poses(poses, layout)
    for name, part in parts.items():
        assert part.shape == (*poses.shape[:-1], *PART_SHAPES[name])
    back = join_pose_parts(dict(parts), layout)
    assert back.dtype == poses.dtype
    assert np.array_equal(back, poses)


@given(poses=flat_poses("smplh"))
def test_smplh_through_smplx_is_lossless(poses: np.ndarray) -> None:
    """156 -> parts -> 165 (zero jaw and eyes) -> parts -> 156 is exact; jaw and eyes come out as zeros."""
    wide = join_pose_parts(dict(split_flat_poses(poses, "smplh")), "smplx")
    parts = split_flat_poses(wide, "smplx")
    assert not parts["pose_jaw"].any() and not parts["pose_eye"].any()
    assert np.array_equal(join_pose_parts(dict(parts), "smplh"), poses)


@given(poses=flat_poses("smplx"))
def test_parts_sit_where_the_release_puts_them(poses: np.ndarray) -> None:
    """smplx 165 = root 3 + body 63 + jaw 3 + eyes 6 + left hand 45 + right hand 45."""
    parts = split_flat_poses(poses, "smplx")
    lead = poses.shape[:-1]
    assert np.array_equal(parts["root_orient"], poses[..., 0:3])
    assert np.array_equal(parts["pose_jaw"], poses[..., 66:69])
    assert np.array_equal(parts["pose_eye"].reshape(*lead, 6), poses[..., 69:75])
    assert np.array_equal(parts["pose_hand"][..., :15, :].reshape(*lead, 45), poses[..., 75:120])
    assert np.array_equal(parts["pose_hand"][..., 15:, :].reshape(*lead, 45), poses[..., 120:165])


def test_smplh_hands_left_then_right() -> None:
    poses = np.arange(156, dtype=np.float64)[None]
    parts = split_flat_poses(poses, "smplh")
    assert parts["pose_hand"][0, 0, 0] == 66 and parts["pose_hand"][0, 15, 0] == 111
    assert parts["pose_body"][0, 20, 2] == 65


def test_wrong_width_is_refused() -> None:
    with pytest.raises(ValueError, match="needs poses"):
        split_flat_poses(np.zeros((4, 165)), "smplh")
    with pytest.raises(ValueError, match="Unknown pose layout"):
        split_flat_poses(np.zeros((4, 156)), "smpl")
    with pytest.raises(ValueError, match="must have shape"):
        join_pose_parts({"root_orient": np.zeros((4, 3)), "pose_body": np.zeros((4, 20, 3))}, "smplh")
