"""The store format: exact round trip, memory-mapped fields, atomic creation, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from amasskit import Gender
from amasskit.store import Store, StoreError, StoreWriter


def sequences(seed: int = 0) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [
        {
            "pose_body": rng.normal(size=(T, 21, 3)).astype(np.float32),
            "trans": rng.normal(size=(T, 3)).astype(np.float32),
        }
        for T in (5, 1, 12)
    ]


def write(path: Path, seed: int = 0, **kwargs: object) -> Path:
    with StoreWriter(path, **kwargs) as writer:  # type: ignore[arg-type]
        for k, fields in enumerate(sequences(seed)):
            writer.add(fields, fps=30.0 + k, betas=np.arange(16 - k), gender=["male", b"female", "neutral"][k],
                       meta={"name": f"seq{k}", "augmentation": "none"})  # fmt: skip
    return path


def test_round_trip_is_exact_and_memory_mapped(tmp_path: Path) -> None:
    store = Store(write(tmp_path / "train"))
    assert len(store) == 3 and store.num_frames == 18
    for k, expected in enumerate(sequences()):
        got = store[k]
        for name, value in expected.items():
            assert np.array_equal(got[name], value)
        assert store.fps[k] == 30.0 + k and store.sequences[k]["name"] == f"seq{k}"
    assert isinstance(store.fields["pose_body"], np.memmap) and store.fields["pose_body"].shape == (18, 21, 3)
    assert list(store.offset) == [0, 5, 6] and list(store.length) == [5, 1, 12]
    assert store.gender_of(1) is Gender.FEMALE and store.betas.shape == (3, 16) and store.betas[2, 14] == 0
    assert np.array_equal(
        np.load(tmp_path / "train" / "fields" / "trans.npy"),
        np.concatenate([s["trans"] for s in sequences()]),
    )
    assert store.manifest["fields"]["pose_body"] == {"dtype": "float32", "shape": [18, 21, 3]}
    assert store[-1]["trans"].shape == (12, 3)
    with pytest.raises(IndexError):
        store[3]


def test_creation_is_atomic(tmp_path: Path) -> None:
    def killed() -> None:
        with StoreWriter(tmp_path / "s") as writer:
            writer.add(sequences()[0], fps=30, betas=np.zeros(16), gender="male")
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        killed()
    assert list(tmp_path.iterdir()) == []  # no store, no staging
    write(tmp_path / "s")
    with pytest.raises(FileExistsError):
        StoreWriter(tmp_path / "s")
    write(tmp_path / "s", seed=1, overwrite=True)
    assert np.array_equal(Store(tmp_path / "s")[0]["trans"], sequences(1)[0]["trans"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]


def test_inconsistent_fields_are_refused(tmp_path: Path) -> None:
    writer = StoreWriter(tmp_path / "s")
    writer.add(sequences()[0], fps=30, betas=np.zeros(16), gender="male")
    with pytest.raises(ValueError, match="differ"):
        writer.add({"trans": np.zeros((3, 3), np.float32)}, fps=30, betas=np.zeros(16), gender="male")
    with pytest.raises(ValueError, match="differs"):
        writer.add({"pose_body": np.zeros((3, 21, 3), np.float64), "trans": np.zeros((3, 3), np.float32)},
                   fps=30, betas=np.zeros(16), gender="male")  # fmt: skip
    with pytest.raises(ValueError, match="same number of frames"):
        writer.add({"pose_body": np.zeros((3, 21, 3), np.float32), "trans": np.zeros((4, 3), np.float32)},
                   fps=30, betas=np.zeros(16), gender="male")  # fmt: skip
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_broken_stores_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no manifest"):
        Store(tmp_path)
    path = write(tmp_path / "s")
    field = path / "fields" / "pose_body.npy"
    field.write_bytes(field.read_bytes()[:-100])  # truncated
    with pytest.raises(StoreError, match="damaged"):
        Store(path)
    (path / "manifest.json").write_text("{not json")
    with pytest.raises(StoreError, match="not valid JSON"):
        Store(path)
