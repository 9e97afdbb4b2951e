"""Golden files for the formats amasskit writes: a release npz of each model (the npz writer) and a store of format
version 1. A change that alters a byte of either (a key, an order, a dtype, a header, an encoding) fails here; one
made on purpose regenerates them with ``AMASSKIT_REGENERATE_GOLDEN=1`` and says so in the changelog.

npz files are compared member by member (names, order, compression, every byte of each ``.npy``), since the zip's
own timestamps differ per write; stores byte for byte, file by file.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from amasskit import Sequence
from amasskit.io import write
from amasskit.sequence import Provenance
from amasskit.store import Store, StoreWriter

GOLDEN = Path(__file__).parent / "golden"
REGENERATE = os.environ.get("AMASSKIT_REGENERATE_GOLDEN") == "1"


def _values(shape: tuple[int, ...], start: float) -> np.ndarray:
    """Exactly representable values, the same on every machine."""
    return (start + np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape) / 64.0).astype(np.float32)


def _sequence(model: str) -> Sequence:
    T = 3
    smplx = model == "smplx"
    return Sequence(
        root_orient=_values((T, 3), 0.0), pose_body=_values((T, 21, 3), 0.5), pose_hand=_values((T, 30, 3), 1.0),
        trans=_values((T, 3), 2.0), betas=_values((16,), 3.0), gender="female", fps=120.0, model=model,
        pose_jaw=_values((T, 3), 4.0) if smplx else None, pose_eye=_values((T, 2, 3), 5.0) if smplx else None,
        dmpls=None if smplx else _values((T, 8), 6.0),
        provenance=Provenance(dataset="CMU", subject="01", name="golden"),
    )  # fmt: skip


def _members(path: Path) -> list[tuple[str, int, bytes]]:
    with zipfile.ZipFile(path) as zf:
        return [(info.filename, info.compress_type, zf.read(info)) for info in zf.infolist()]


@pytest.mark.parametrize(("model", "name"), [("smplh", "golden_poses.npz"), ("smplx", "golden_stageii.npz")])
def test_npz_writer_matches_its_golden_file(model: str, name: str, tmp_path: Path) -> None:
    written = write(_sequence(model), tmp_path / name)
    golden = GOLDEN / name
    if REGENERATE:
        shutil.copyfile(written, golden)
    assert _members(written) == _members(golden)


def _store(target: Path) -> Path:
    writer = StoreWriter(target)
    for i, model in enumerate(("smplh", "smplh")):
        seq = _sequence(model)
        fields = {"root_orient": seq.root_orient[: 2 + i], "pose_body": seq.pose_body[: 2 + i],
                  "trans": seq.trans[: 2 + i]}  # fmt: skip
        writer.add(
            fields, fps=30.0 + i, betas=seq.betas, gender=("female", "male")[i], meta={"name": f"s{i}"}
        )
    return writer.close({"experiment_id": "golden", "rotation": "rotvec"})


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_store_format_v1_matches_its_golden_store(tmp_path: Path) -> None:
    written = _store(tmp_path / "store")
    golden = GOLDEN / "store_v1"
    if REGENERATE:
        shutil.rmtree(golden, ignore_errors=True)
        shutil.copytree(written, golden)
    assert _files(written) == _files(golden)
    opened = Store(golden)  # and the golden store still opens, with what was written
    assert len(opened) == 2 and opened.num_frames == 5
    assert np.array_equal(opened[1]["pose_body"], _sequence("smplh").pose_body)
