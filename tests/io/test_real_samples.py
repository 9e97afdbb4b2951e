"""The real AMASS samples in ../shared: read exactly, headers agree with data, flat round trip bit-exact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import amasskit
from amasskit import Gender, ModelType
from amasskit.io import NpzArchive


def test_amass_sample_is_601_frames_male_120fps(samples: Path) -> None:
    seq = amasskit.read(samples / "amass_sample.npz")
    assert seq.num_frames == 601
    assert seq.gender is Gender.MALE
    assert seq.fps == 120.0
    assert seq.model is ModelType.SMPLH
    assert seq.dtype == np.float32
    assert seq.dmpls is not None and seq.dmpls.shape == (601, 8)
    assert seq.betas.shape == (16,)
    assert seq.markers is None  # markers are ignored unless asked for


def test_dmpl_sample_bytes_gender_and_non_integer_fps(samples: Path) -> None:
    """Gender stored as b'female' is decoded, not compared as a str; the fps keeps its non-integer value."""
    raw = np.load(samples / "dmpl_sample.npz")
    assert raw["gender"].dtype.kind == "S"  # the file really stores bytes
    seq = amasskit.read(samples / "dmpl_sample.npz")
    assert seq.num_frames == 235
    assert seq.gender is Gender.FEMALE
    assert seq.fps == pytest.approx(120.00004578, abs=1e-8)
    assert seq.fps != 120.0


@pytest.mark.parametrize("name", ["amass_sample.npz", "dmpl_sample.npz", "human_body_prior/amass_sample.npz"])
def test_flat_round_trip_is_exact(samples: Path, name: str) -> None:
    """file poses -> Sequence (float64) -> flat 156 vector equals the stored array bit for bit."""
    raw = np.load(samples / name)
    seq = amasskit.read(samples / name, dtype=np.float64)
    assert np.array_equal(seq.to_flat(), raw["poses"])
    assert np.array_equal(seq.trans, raw["trans"])
    assert np.array_equal(seq.betas, raw["betas"])
    assert np.array_equal(seq.dmpls, raw["dmpls"])
    rebuilt = amasskit.Sequence.from_flat(
        seq.to_flat(), trans=seq.trans, betas=seq.betas, gender=seq.gender, fps=seq.fps, dtype=np.float64
    )
    assert np.array_equal(rebuilt.to_flat(), raw["poses"])


@pytest.mark.parametrize("name", ["amass_sample.npz", "dmpl_sample.npz", "human_body_prior/amass_sample.npz"])
def test_header_matches_full_read(samples: Path, name: str) -> None:
    header = amasskit.read_header(samples / name)
    seq = amasskit.read(samples / name)
    assert (header.num_frames, header.fps, header.gender, header.model) == (
        seq.num_frames,
        seq.fps,
        seq.gender,
        seq.model,
    )
    assert header.num_betas == 16 and header.has_dmpls and header.has_markers
    assert header.duration == pytest.approx(seq.duration)
    assert not header.synthetic


def test_header_reads_no_pose_data(samples: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """read_header reads only small scalars; poses, trans, betas, dmpls and markers come from .npy headers alone."""
    read_keys: list[str] = []
    original = NpzArchive.read

    def spy(self: NpzArchive, key: str) -> np.ndarray:
        read_keys.append(key)
        return original(self, key)

    monkeypatch.setattr(NpzArchive, "read", spy)
    amasskit.read_header(samples / "amass_sample.npz")
    assert set(read_keys) <= {"gender", "mocap_framerate", "mocap_frame_rate", "surface_model_type"}
    assert "poses" not in read_keys


def test_markers_on_request(samples: Path) -> None:
    seq = amasskit.read(samples / "dmpl_sample.npz", markers=True)
    assert seq.markers is not None
    assert seq.markers.positions.shape == (235, 67, 3)
    assert len(seq.markers.labels) == 67 and all(isinstance(x, str) for x in seq.markers.labels)
    assert np.isnan(seq.markers.positions).any()  # NaN markers are kept, not rejected
    other = amasskit.read(samples / "human_body_prior/amass_sample.npz", markers=True)
    assert other.markers is not None and other.markers.vertex_ids is not None
    assert other.markers.positions.shape == (500, 38, 3)


def test_not_motion_file_is_named(samples: Path) -> None:
    with pytest.raises(amasskit.errors.MissingKeyError, match=r"body_pose_rnd\.npz: has no 'poses'"):
        amasskit.read(samples / "human_body_prior/body_pose_rnd.npz")
