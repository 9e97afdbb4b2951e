"""The Sequence data model: validation, slicing, dtypes, equality and the lossless npz round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import amasskit
from amasskit import Gender, Markers, ModelType, Provenance, Sequence
from amasskit.errors import SequenceError


def make(
    num_frames: int = 20,
    *,
    model: str = "smplh",
    dtype: object = np.float32,
    seed: int = 0,
    dmpls: bool = True,
) -> Sequence:
    rng = np.random.default_rng(seed)
    width = 156 if model == "smplh" else 165
    return Sequence.from_flat(
        rng.normal(0, 0.4, size=(num_frames, width)),
        trans=rng.normal(size=(num_frames, 3)),
        betas=rng.normal(size=16),
        gender="female",
        fps=120.00004578,
        dmpls=rng.normal(size=(num_frames, 8)) if dmpls else None,
        provenance=Provenance(dataset="CMU", subject="01", name="walk_01"),
        dtype=dtype,
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [("male", Gender.MALE), (b"female", Gender.FEMALE), (np.array(b"neutral"), Gender.NEUTRAL),
     (np.array("Female"), Gender.FEMALE), (" male\x00", Gender.MALE), (np.bytes_(b"male"), Gender.MALE)],
)  # fmt: skip
def test_gender_parse(value: object, expected: Gender) -> None:
    assert Gender.parse(value) is expected


@pytest.mark.parametrize("value", ["man", b"", 1, None, np.array(["male", "female"])])
def test_gender_parse_rejects(value: object) -> None:
    with pytest.raises(ValueError, match="gender"):
        Gender.parse(value)


def test_bytes_gender_is_not_silently_male() -> None:
    """The classic bug: b'female' == 'female' is False; parsing makes them equal."""
    assert Gender.parse(b"female") == Gender.parse("female") == "female"


def test_shapes_and_properties() -> None:
    seq = make(30)
    assert (seq.root_orient.shape, seq.pose_body.shape, seq.pose_hand.shape) == (
        (30, 3),
        (30, 21, 3),
        (30, 30, 3),
    )
    assert seq.num_frames == len(seq) == 30
    assert seq.duration == pytest.approx(30 / 120.00004578)
    assert seq.dtype == np.float32 and seq.model is ModelType.SMPLH
    assert seq.pose_jaw is None and seq.pose_eye is None
    assert np.allclose(seq.times()[1], 1 / seq.fps)


def test_smplx_sequence_has_jaw_and_eyes() -> None:
    seq = make(5, model="smplx")
    assert seq.model is ModelType.SMPLX
    assert seq.pose_jaw is not None and seq.pose_jaw.shape == (5, 3)
    assert seq.pose_eye is not None and seq.pose_eye.shape == (5, 2, 3)
    assert seq.to_flat().shape == (5, 165)
    assert seq.to_flat("smplh").shape == (5, 156)


@pytest.mark.parametrize(
    ("change", "match"),
    [({"trans": np.zeros((19, 3), np.float32)}, "trans must have shape"),
     ({"pose_body": np.zeros((20, 22, 3), np.float32)}, "pose_body must have shape"),
     ({"trans": np.zeros((20, 3), np.float64)}, "share one dtype"),
     ({"betas": np.zeros((1, 16), np.float32)}, "betas must have shape"),
     ({"fps": 0.0}, "fps must be positive"), ({"fps": float("nan")}, "fps must be positive"),
     ({"gender": "x"}, "gender"), ({"model": "smpl"}, "model type"),
     ({"pose_jaw": np.zeros((20, 3), np.float32)}, "belong to SMPL-X"),
     ({"model": ModelType.SMPLX}, "needs pose_jaw")],
)  # fmt: skip
def test_invalid_sequences(change: dict[str, object], match: str) -> None:
    with pytest.raises(SequenceError, match=match):
        make(20).replace(**change)


def test_zero_frames_refused() -> None:
    seq = make(1)
    with pytest.raises(SequenceError, match="at least one frame"):
        seq.replace(**{name: arr[:0] for name, arr in seq.arrays().items() if name != "betas"})
    with pytest.raises(IndexError, match="selects no frame"):
        seq[5:9]


def test_slicing_in_time() -> None:
    seq = make(40)
    part = seq[10:20]
    assert part.num_frames == 10 and part.fps == seq.fps
    assert np.array_equal(part.trans, seq.trans[10:20])
    assert np.array_equal(part.dmpls, seq.dmpls[10:20])  # type: ignore[index]
    assert np.array_equal(part.betas, seq.betas)
    assert seq[-1].num_frames == 1 and np.array_equal(seq[-1].trans[0], seq.trans[-1])
    strided = seq[::2]
    assert strided.num_frames == 20 and strided.fps == pytest.approx(seq.fps / 2)
    with pytest.raises(IndexError):
        seq[40]
    with pytest.raises(TypeError):
        seq["a"]  # type: ignore[index]


def test_time_slice() -> None:
    seq = make(120).replace(fps=60.0)
    part = seq.time_slice(0.5, 1.5)
    assert part.num_frames == 60
    assert np.array_equal(part.trans, seq.trans[30:90])


def test_astype_round_trip() -> None:
    seq64 = make(10, dtype=np.float64)
    seq32 = seq64.astype(np.float32)
    assert all(a.dtype == np.float32 for a in seq32.arrays().values())
    assert seq32.astype(np.float32) is seq32
    with pytest.raises(TypeError):
        seq64.astype(np.int32)


def test_equality_is_exact() -> None:
    seq = make(10)
    assert seq == make(10)
    other = seq.trans.copy()
    other[3, 1] = np.nextafter(other[3, 1], np.float32(10))
    assert seq != seq.replace(trans=other)
    assert seq != seq.astype(np.float64)
    assert seq != seq.replace(provenance=Provenance())


@pytest.mark.parametrize("model", ["smplh", "smplx"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("dmpls", [True, False])
def test_npz_round_trip_is_lossless(tmp_path: Path, model: str, dtype: object, dmpls: bool) -> None:
    """Sequence -> npz (release layout) -> read at the same dtype is equal in every array and field."""
    seq = make(25, model=model, dtype=dtype, seed=3, dmpls=dmpls)
    path = seq.save(tmp_path / "CMU" / "01" / f"walk_01_{'poses' if model == 'smplh' else 'stageii'}.npz")
    back = amasskit.read(path, dtype=dtype)
    assert back.provenance.source == str(path)
    assert back.replace(provenance=seq.provenance) == seq
    assert back.provenance.dataset == "CMU" and back.provenance.name == "walk_01"


def test_round_trip_keeps_markers_and_foreign_provenance(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    positions = rng.normal(size=(25, 4, 3)).astype(np.float32)
    positions[2, 1] = np.nan
    markers = Markers(positions=positions, labels=("A", "B", "C", "D"), vertex_ids=np.arange(4))
    seq = make(25).replace(markers=markers, provenance=Provenance(dataset="KIT", subject="3", name="jump"))
    path = seq.save(tmp_path / "anywhere.npz")
    back = amasskit.read(path, markers=True)
    assert (
        back.provenance.dataset == "KIT" and back.provenance.name == "jump"
    )  # recorded, not taken from the path
    assert back.replace(provenance=seq.provenance) == seq


def test_saved_file_is_readable_by_plain_numpy(tmp_path: Path) -> None:
    """What amasskit writes is the release layout: other tools read it with np.load(allow_pickle=False)."""
    seq = make(8, dtype=np.float64)
    with np.load(seq.save(tmp_path / "x_poses.npz"), allow_pickle=False) as raw:
        assert raw["poses"].shape == (8, 156)
        assert str(raw["gender"]) == "female"
        assert float(raw["mocap_framerate"]) == seq.fps
        assert np.array_equal(raw["poses"], seq.to_flat())


def test_save_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that fails half-way leaves the old file and no temporary behind."""
    path = make(5).save(tmp_path / "a_poses.npz")
    before = path.read_bytes()

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        make(7).save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_poses.npz"]


def test_repr_names_the_sequence() -> None:
    assert "CMU/01/walk_01" in repr(make(3)) and "T=3" in repr(make(3))
