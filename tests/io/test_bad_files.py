"""Every bad input gives a typed error that is also the builtin a caller expects, and names the file."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

import amasskit
from amasskit import errors
from amasskit.io import NpzArchive
from amasskit.testing import smplh_arrays, write_npz


def expect(path: Path, error: type[Exception], builtin: type[Exception], match: str) -> None:
    for reader in (amasskit.read_header, amasskit.read):
        with pytest.raises(error, match=match) as info:
            reader(path)
        assert isinstance(info.value, builtin)
        assert isinstance(info.value, errors.AmassKitError)
        assert str(path) in str(info.value)


def test_valid_arrays_read(tmp_path: Path) -> None:
    """The base case every test below breaks one thing of."""
    seq = amasskit.read(write_npz(tmp_path / "ok_poses.npz", **smplh_arrays()))
    assert seq.num_frames == 10


def test_missing_file(tmp_path: Path) -> None:
    expect(tmp_path / "nope_poses.npz", errors.MotionFileNotFoundError, FileNotFoundError, "no such file")


def test_directory(tmp_path: Path) -> None:
    (tmp_path / "dir.npz").mkdir()
    expect(tmp_path / "dir.npz", errors.MotionFileNotFoundError, FileNotFoundError, "directory")


@pytest.mark.parametrize("content", [b"", b"not a zip file at all" * 10, b"PK\x03\x04" + b"\x00" * 40])
def test_not_a_zip(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "junk_poses.npz"
    path.write_bytes(content)
    expect(path, errors.CorruptFileError, ValueError, "not a readable npz")


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9, 0.999])
def test_truncated(tmp_path: Path, fraction: float) -> None:
    full = write_npz(tmp_path / "full_poses.npz", **smplh_arrays(200)).read_bytes()
    path = tmp_path / "cut_poses.npz"
    path.write_bytes(full[: int(len(full) * fraction)])
    with pytest.raises(errors.CorruptFileError, match=r"cut_poses\.npz") as info:
        amasskit.read(path)
    assert isinstance(info.value, ValueError)


def test_corrupt_member_data_fails_crc(tmp_path: Path) -> None:
    """Damaged pose bytes (same length) are caught by the zip CRC check, not returned as motion."""
    path = write_npz(tmp_path / "flip_poses.npz", **smplh_arrays(50))
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("poses.npy")
    start = info.header_offset + 30 + len(info.filename) + 200  # inside the poses data
    data[start : start + 8] = b"\xff" * 8
    path.write_bytes(bytes(data))
    amasskit.read_header(path)  # the header is intact
    with pytest.raises(errors.CorruptFileError, match="'poses' cannot be read"):
        amasskit.read(path)


@pytest.mark.parametrize("key", ["gender", "trans", "betas"])
def test_missing_key(tmp_path: Path, key: str) -> None:
    arrays = smplh_arrays()
    del arrays[key]
    path = write_npz(tmp_path / f"no_{key}_poses.npz", **arrays)
    with pytest.raises(errors.MissingKeyError, match=f"no array '{key}'|no '{key}'") as info:
        amasskit.read(path)
    assert isinstance(info.value, KeyError)
    assert str(path) in str(info.value)


def test_missing_poses(tmp_path: Path) -> None:
    arrays = smplh_arrays()
    del arrays["poses"]
    expect(write_npz(tmp_path / "x_poses.npz", **arrays), errors.MissingKeyError, KeyError, "no 'poses'")


def test_missing_frame_rate(tmp_path: Path) -> None:
    arrays = smplh_arrays()
    del arrays["mocap_framerate"]
    expect(write_npz(tmp_path / "x_poses.npz", **arrays), errors.MissingKeyError, KeyError, "no frame rate")


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("poses", np.zeros((10, 100)), "100 values per frame"),
        ("poses", np.zeros(156), "must be 2-D"),
        ("poses", np.zeros((10, 156, 1)), "must be 2-D"),
        ("trans", np.zeros((10, 2)), "'trans' must have shape"),
        ("trans", np.zeros((9, 3)), "'trans' must have shape"),
        ("betas", np.zeros((3, 16)), "'betas' must have shape"),
        ("gender", np.array(["male", "female"]), "single value"),
    ],
)
def test_wrong_shape(tmp_path: Path, key: str, value: np.ndarray, match: str) -> None:
    arrays = smplh_arrays() | {key: value}
    expect(write_npz(tmp_path / "bad_poses.npz", **arrays), errors.ArrayShapeError, ValueError, match)


def test_wrong_dmpls_shape(tmp_path: Path) -> None:
    arrays = smplh_arrays() | {"dmpls": np.zeros((3, 8))}
    with pytest.raises(errors.ArrayShapeError, match="'dmpls' must have shape"):
        amasskit.read(write_npz(tmp_path / "bad_poses.npz", **arrays))


@pytest.mark.parametrize("dtype", [np.int64, np.bool_, "U4"])
def test_wrong_dtype(tmp_path: Path, dtype: object) -> None:
    arrays = smplh_arrays()
    arrays["poses"] = np.zeros((10, 156), dtype=dtype)  # type: ignore[call-overload]
    expect(
        write_npz(tmp_path / "int_poses.npz", **arrays), errors.ArrayShapeError, ValueError, "floating point"
    )


def test_zero_frames(tmp_path: Path) -> None:
    arrays = smplh_arrays() | {
        "poses": np.zeros((0, 156)),
        "trans": np.zeros((0, 3)),
        "dmpls": np.zeros((0, 8)),
    }
    expect(
        write_npz(tmp_path / "empty_poses.npz", **arrays),
        errors.EmptySequenceError,
        ValueError,
        "zero frames",
    )


@pytest.mark.parametrize(
    ("key", "bad"), [("poses", np.nan), ("poses", np.inf), ("trans", -np.inf), ("betas", np.nan)]
)
def test_non_finite(tmp_path: Path, key: str, bad: float) -> None:
    arrays = smplh_arrays()
    arrays[key] = arrays[key].copy()
    arrays[key].reshape(-1)[7] = bad
    path = write_npz(tmp_path / "nan_poses.npz", **arrays)
    amasskit.read_header(path)  # the header does not look at values
    with pytest.raises(errors.NonFiniteError, match=f"'{key}' holds 1 NaN or infinite") as info:
        amasskit.read(path)
    assert isinstance(info.value, ValueError)
    assert (
        amasskit.read(path, check_finite=False).num_frames == 10
    )  # on request, the caller takes them as they are


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [(0.0, errors.InvalidValueError, "positive"), (-30.0, errors.InvalidValueError, "positive"),
     (np.nan, errors.NonFiniteError, "nan"), ("fast", errors.InvalidValueError, "number")],
)  # fmt: skip
def test_bad_frame_rate(tmp_path: Path, value: object, error: type[Exception], match: str) -> None:
    arrays = smplh_arrays() | {"mocap_framerate": np.array(value)}
    expect(write_npz(tmp_path / "fps_poses.npz", **arrays), error, ValueError, match)


@pytest.mark.parametrize("value", ["robot", b"\xff\xfe", "", 3])
def test_bad_gender(tmp_path: Path, value: object) -> None:
    arrays = smplh_arrays() | {"gender": np.array(value)}
    expect(write_npz(tmp_path / "g_poses.npz", **arrays), errors.InvalidValueError, ValueError, "gender")


class _Boom:
    """Unpickling this would create a file: proof that amasskit never runs pickle on data."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (Path.touch, (str(self.marker),))  # type: ignore[return-value]


def test_pickled_object_array_is_refused_without_unpickling(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    arrays: dict[str, object] = dict(smplh_arrays())
    arrays["poses"] = np.array([_Boom(marker)], dtype=object)
    path = write_npz(tmp_path / "evil_poses.npz", **arrays)
    expect(path, errors.PickledDataError, ValueError, "Python objects")
    arrays2: dict[str, object] = dict(smplh_arrays())
    arrays2["gender"] = np.array(_Boom(marker), dtype=object)
    with pytest.raises(errors.PickledDataError):
        amasskit.read(write_npz(tmp_path / "evil2_poses.npz", **arrays2))
    assert not marker.exists()


def test_oversized_npy_header_is_refused(tmp_path: Path) -> None:
    """A .npy header longer than numpy's safety limit is treated as hostile, not parsed."""
    buf = io.BytesIO()
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (10, 156), " + " " * 20_000 + "}"
    header_bytes = header.encode("latin1") + b"\n"
    buf.write(b"\x93NUMPY\x02\x00" + len(header_bytes).to_bytes(4, "little") + header_bytes)
    buf.write(np.zeros((10, 156)).tobytes())
    path = tmp_path / "huge_poses.npz"
    arrays = smplh_arrays()
    del arrays["poses"]
    write_npz(path, **arrays)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("poses.npy", buf.getvalue())
    expect(path, errors.CorruptFileError, ValueError, "no valid .npy header")


def test_header_claims_more_data_than_stored(tmp_path: Path) -> None:
    """A member whose .npy header promises more bytes than it holds is caught before any data is read."""
    arrays = smplh_arrays()
    del arrays["poses"]
    path = write_npz(tmp_path / "short_poses.npz", **arrays)
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.zeros((10, 156)))
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("poses.npy", buf.getvalue()[:-800])
    expect(path, errors.CorruptFileError, ValueError, "truncated or damaged")


def test_model_type_disagrees_with_width(tmp_path: Path) -> None:
    arrays = smplh_arrays() | {"surface_model_type": np.array("smplx")}
    expect(write_npz(tmp_path / "x_stageii.npz", **arrays), errors.ArrayShapeError, ValueError, "says smplx")


@pytest.mark.parametrize("value", ["mano", "smpl"])  # smpl: a body model amasskit knows, but no motion layout
def test_unknown_model_type(tmp_path: Path, value: str) -> None:
    arrays = smplh_arrays() | {"surface_model_type": np.array(value)}
    expect(
        write_npz(tmp_path / "x_stageii.npz", **arrays),
        errors.InvalidValueError,
        ValueError,
        "surface_model_type",
    )


@pytest.mark.parametrize("name", ["shape.npz", "01_stagei.npz", "female_stagei.npz", "male_stagei.npz"])
def test_non_motion_files_by_name(tmp_path: Path, name: str) -> None:
    path = write_npz(tmp_path / "CMU" / "01" / name, betas=np.zeros(16), gender=np.array("male"))
    expect(path, errors.NotMotionFileError, ValueError, "not a motion")
    with pytest.raises(errors.NotMotionFileError) as info:
        amasskit.read(path)
    assert info.value.kind in ("shape", "stagei")


def test_shape_file_recognised_by_content(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "betas_of_subject.npz", betas=np.zeros(16), gender=np.array(b"female"))
    expect(path, errors.NotMotionFileError, ValueError, "not a motion")


def test_errors_survive_pickling() -> None:
    """Errors cross process pools (the catalog scans in workers) with their type, path and attributes."""
    for exc in [
        errors.CorruptFileError("/a/b.npz", "truncated"),
        errors.MissingKeyError("/a/b.npz", "no 'poses'", key="poses"),
        errors.NotMotionFileError("/a/shape.npz", "shape", kind="shape"),
    ]:
        back = pickle.loads(pickle.dumps(exc))
        assert type(back) is type(exc)
        assert str(back) == str(exc)
        assert back.__dict__ == exc.__dict__


def test_archive_reports_keys_and_is_lazy(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "ok_poses.npz", **smplh_arrays(20))
    with NpzArchive(path) as npz:
        assert set(npz.keys()) == set(smplh_arrays())
        info = npz.info("poses")
        assert info.shape == (20, 156) and info.dtype == np.float64 and not info.compressed
        with pytest.raises(errors.MissingKeyError, match="no array 'nope'"):
            npz.info("nope")


def test_library_never_enables_pickle() -> None:
    """No data path in the package may pass allow_pickle=True."""
    src = Path(amasskit.__file__).parent
    offenders = [p for p in src.rglob("*.py") if "allow_pickle=True" in p.read_text()]
    assert offenders == []


def test_smplx_split_keys_without_poses(tmp_path: Path) -> None:
    """SMPL-X files that hold only root_orient/pose_body/pose_jaw/pose_eye/pose_hand read the same as with poses."""
    rng = np.random.default_rng(4)
    T = 12
    parts = {"root_orient": rng.normal(size=(T, 3)), "pose_body": rng.normal(size=(T, 63)),
             "pose_jaw": rng.normal(size=(T, 3)), "pose_eye": rng.normal(size=(T, 6)),
             "pose_hand": rng.normal(size=(T, 90))}  # fmt: skip
    common = {"trans": rng.normal(size=(T, 3)), "betas": rng.normal(size=16), "gender": np.array("neutral"),
              "mocap_frame_rate": np.array(59.9999885), "surface_model_type": np.array("smplx")}  # fmt: skip
    poses = np.concatenate(
        [parts[k] for k in ("root_orient", "pose_body", "pose_jaw", "pose_eye", "pose_hand")], 1
    )
    split = amasskit.read(write_npz(tmp_path / "a_stageii.npz", **parts, **common), dtype=np.float64)
    flat = amasskit.read(write_npz(tmp_path / "b_stageii.npz", poses=poses, **common), dtype=np.float64)
    assert np.array_equal(split.to_flat(), poses)
    assert split.replace(provenance=flat.provenance) == flat
    assert amasskit.read_header(tmp_path / "a_stageii.npz").num_frames == T
    bad = dict(parts) | {"pose_jaw": np.zeros((T - 1, 3))}
    with pytest.raises(errors.ArrayShapeError, match="'pose_jaw' must have shape"):
        amasskit.read_header(write_npz(tmp_path / "c_stageii.npz", **bad, **common))


def test_compressed_npz_reads_the_same(tmp_path: Path) -> None:
    """np.savez_compressed files (deflated members) go through the zip stream path and read identically."""
    arrays = smplh_arrays(30)
    plain = amasskit.read(write_npz(tmp_path / "plain_poses.npz", **arrays), dtype=np.float64)
    with (tmp_path / "zipped_poses.npz").open("wb") as fp:
        np.savez_compressed(fp, **arrays)  # type: ignore[arg-type]
    zipped = amasskit.read(tmp_path / "zipped_poses.npz", dtype=np.float64)
    assert zipped.replace(provenance=plain.provenance) == plain
    assert amasskit.read_header(tmp_path / "zipped_poses.npz").num_frames == 30
