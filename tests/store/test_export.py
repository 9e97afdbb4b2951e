"""Exports read back equal to the store: HDF5 (with pose_matrot), pt, npz."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import roma
import torch
from typer.testing import CliRunner

from amasskit.cli import app
from amasskit.store import Store, StoreWriter, export_store

h5py = pytest.importorskip("h5py", reason="HDF5 export needs h5py (pip install 'amasskit[export]')")


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("s") / "train"
    with StoreWriter(path) as writer:
        for T in (7, 3, 11):
            writer.add({"root_orient": rng.normal(size=(T, 3)).astype(np.float32),
                        "pose_body": rng.normal(size=(T, 21, 3)).astype(np.float32),
                        "pose_hand": rng.normal(size=(T, 30, 3)).astype(np.float32),
                        "trans": rng.normal(size=(T, 3)).astype(np.float32)},
                       fps=30.0, betas=rng.normal(size=16), gender="female", meta={"source": f"x{T}"})  # fmt: skip
    return path


def test_hdf5_reads_back_equal_with_pose_matrot(store_path: Path, tmp_path: Path) -> None:
    out = export_store(store_path, tmp_path / "train.h5", format="hdf5")
    store = Store(store_path)
    with h5py.File(out, "r") as h5:
        for name, array in store.fields.items():
            assert np.array_equal(h5[name][:], np.asarray(array))
            assert h5[name].compression == "gzip" and h5[name].chunks is not None
        assert np.array_equal(h5["index/offset"][:], store.offset)
        matrot = h5["pose_matrot"][:]
        assert matrot.shape == (21, 52, 3, 3)
        expected = roma.rotvec_to_rotmat(
            torch.from_numpy(np.asarray(store.fields["pose_body"], dtype=np.float64))
        )
        assert np.allclose(matrot[:, 1:22], expected.numpy(), atol=1e-6)
        assert json.loads(h5.attrs["manifest"])["sequences"] == 3
    assert not (tmp_path / ".train.h5.partial").exists()


def test_pt_reads_back_equal(store_path: Path, tmp_path: Path) -> None:
    out = export_store(store_path, tmp_path / "pt", format="pt")
    store = Store(store_path)
    for name, array in store.fields.items():
        assert torch.equal(torch.load(out / f"{name}.pt"), torch.from_numpy(np.array(array)))
    index = torch.load(out / "index.pt")
    assert torch.equal(index["length"], torch.tensor([7, 3, 11]))


def test_npz_per_sequence(store_path: Path, tmp_path: Path) -> None:
    out = export_store(store_path, tmp_path / "npz", format="npz")
    store = Store(store_path)
    files = sorted(out.glob("*.npz"))
    assert len(files) == 3
    with np.load(files[2], allow_pickle=False) as data:
        assert np.array_equal(data["pose_body"], store[2]["pose_body"]) and str(data["gender"]) == "female"
        assert json.loads(str(data["provenance"]))["source"] == "x11"


def test_cli_export(store_path: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["-q", "store", "export", str(store_path), "--format", "hdf5", "-o", str(tmp_path / "a.h5")]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a.h5").is_file()
    with pytest.raises(ValueError, match="format must be"):
        export_store(store_path, tmp_path / "x", format="parquet")


@pytest.mark.parametrize(("fmt", "name"), [("hdf5", "out.h5"), ("pt", "pt"), ("npz", "npz")])
def test_an_existing_output_is_replaced_only_with_overwrite_and_whole(
    store_path: Path, tmp_path: Path, fmt: str, name: str
) -> None:
    from amasskit.errors import OutputExistsError

    target = tmp_path / name
    if fmt == "hdf5":
        target.write_bytes(b"an older file")
    else:
        target.mkdir()
        (target / "0009999.npz").write_bytes(b"an older export's file")
    with pytest.raises(OutputExistsError, match="already exists"):
        export_store(store_path, target, format=fmt)
    assert (target.read_bytes() if fmt == "hdf5" else (target / "0009999.npz").read_bytes()).startswith(
        b"an older"
    )
    export_store(store_path, target, format=fmt, overwrite=True)
    if fmt != "hdf5":  # the new export, and nothing of the old one
        assert (
            not (target / "0009999.npz").exists()
            and (target / "manifest.json" if fmt == "pt" else target / "0000000.npz").is_file()
        )
    else:
        with h5py.File(target, "r") as h5:
            assert "pose_matrot" in h5
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no staging left


@pytest.mark.parametrize("fmt", ["hdf5", "npz"])
def test_a_failed_export_leaves_nothing(
    store_path: Path, tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from amasskit.store import _export

    def fails(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(_export, "rotation_matrices" if fmt == "hdf5" else "atomic_open", fails)
    with pytest.raises(OSError, match="disk full"):
        export_store(store_path, tmp_path / "out", format=fmt)
    assert list(tmp_path.iterdir()) == []  # no output that looks finished, no .partial


def test_export_kind_clash_and_unknown_format(store_path: Path, tmp_path: Path) -> None:
    from amasskit.errors import ConfigError, OutputExistsError

    (tmp_path / "x.h5").mkdir()
    with pytest.raises(OutputExistsError, match="not a file"):
        export_store(store_path, tmp_path / "x.h5", format="hdf5", overwrite=True)
    with pytest.raises(ConfigError, match="format must be one of"):
        export_store(store_path, tmp_path / "y", format="parquet")
    result = CliRunner().invoke(app, ["export", str(store_path), "-f", "npz", "-o", str(tmp_path / "x.h5")])
    assert result.exit_code == 1 and "OutputExistsError" in result.output
