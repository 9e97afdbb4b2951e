"""The llamass-compatible loader: its keys and shapes, exactly len items, every file read once across workers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from amasskit.compat.llamass import AMASS, keep_slice
from amasskit.synth import SynthSummary


def count(ds: AMASS, workers: int) -> list[dict[str, object]]:
    if workers == 0:
        return list(ds)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=workers)
    return list(loader)


@pytest.mark.real_data
@pytest.mark.parametrize(("clip", "overlapping"), [(16, False), (100, True)])
def test_real_samples_yield_exactly_len_items(samples: Path, clip: int, overlapping: bool) -> None:
    ds = AMASS(samples, clip, overlapping, keep=0.8, seed=0)
    items = list(ds)
    assert len(items) == len(ds) > 0
    first = items[0]
    assert first["poses"].shape == (clip, 156) and first["dmpls"].shape == (clip, 8)
    assert first["trans"].shape == (clip, 3) and first["betas"].shape == (clip, 16)
    assert first["gender"].shape == (clip,) and first["poses"].dtype == np.float32


def test_off_by_one_fixed_and_files_split_across_workers(smplh_tree: SynthSummary) -> None:
    ds = AMASS(smplh_tree.root, 8, False, keep=1.0, transform=None)
    expected = sum(n // 8 for n in ds.lengths)  # every whole window, the last one of each file included
    assert len(ds) == expected
    keyed = {w: sorted(float(it["trans"][0, 0]) + 1e3 * float(it["poses"][0, 5]) for it in count(ds, w))  # type: ignore[index]
             for w in (0, 2)}  # fmt: skip
    assert len(ds.sources) % 2 == 1  # an odd number of files over 2 workers
    assert len(keyed[0]) == expected and keyed[2] == keyed[0]  # nothing dropped or repeated


def test_seed_zero_is_a_seed_and_transforms_apply(smplh_tree: SynthSummary) -> None:
    a = [it["trans"][0].tolist() for it in AMASS(smplh_tree.root, 4, True, shuffle=True, seed=0)][:20]
    b = [it["trans"][0].tolist() for it in AMASS(smplh_tree.root, 4, True, shuffle=True, seed=0)][:20]
    assert a == b
    item = next(iter(AMASS(smplh_tree.root, 4, True, transform=torch.from_numpy, data_keys=("poses",))))
    assert set(item) == {"poses"} and isinstance(item["poses"], torch.Tensor)
    assert keep_slice(100, 0.8) == slice(
        9, 90
    )  # llamass's formula, float rounding included: (1 - 0.8) / 2 < 0.1


def test_a_store_yields_the_same_items_as_the_tree(smplh_tree: SynthSummary, tmp_path: Path) -> None:
    """Over a store prepared without changing anything (native rate, every frame, rotation vectors) the compat
    loader must yield exactly the tree's items, with any number of workers."""
    from amasskit.catalog import scan
    from amasskit.prepare import PrepareConfig, prepare

    db = tmp_path / "catalog.sqlite"
    scan(smplh_tree.root, db, workers=1)
    report = prepare(PrepareConfig(catalog=str(db), out=str(tmp_path / "out"), workers=1))
    (store,) = report.stores.values()

    def fingerprints(items: list[dict[str, object]]) -> list[bytes]:
        return sorted(b"".join(np.ascontiguousarray(it[k]).tobytes() for k in sorted(it)) for it in items)  # type: ignore[call-overload]

    from_tree = AMASS(smplh_tree.root, 8, False, keep=0.8)
    expected = fingerprints(list(from_tree))
    assert len(expected) == len(from_tree) > 0
    for workers in (0, 2):
        from_store = AMASS(store, 8, False, keep=0.8)
        assert len(from_store) == len(from_tree)
        assert fingerprints(count(from_store, workers)) == expected


def test_a_file_that_fails_mid_epoch_is_skipped_and_listed(smplh_tree: SynthSummary, tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "tree"
    shutil.copytree(smplh_tree.root, root, ignore=shutil.ignore_patterns("archives"))
    ds = AMASS(root, 8, False, keep=1.0, seed=0)
    full = len(list(ds))
    damaged, shortened = (Path(str(s)) for s in ds.sources[:2])
    data = damaged.read_bytes()
    damaged.write_bytes(data[: len(data) // 2])  # damaged after the dataset was made
    from amasskit.testing import smplh_arrays, write_npz

    write_npz(shortened, **smplh_arrays(5))  # now 5 frames long
    items = list(ds)
    assert {p for p, _ in ds.skipped} == {str(damaged), str(shortened)}
    assert all(it["poses"].shape == (8, 156) for it in items)
    lost = sum(n // 8 for n in ds.lengths[:2])
    assert len(items) == full - lost
    assert any(e.startswith("CorruptFileError") for _, e in ds.skipped)
