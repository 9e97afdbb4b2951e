"""The catalog scan: one row per motion file from headers, problems recorded, incremental, transactional, parallel."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

import amasskit
from amasskit.catalog import Catalog, CatalogRecord, canonical_dataset, scan
from amasskit.catalog import _scan as scan_module
from amasskit.errors import CatalogError
from amasskit.synth import SynthSummary, synth_tree


@pytest.fixture
def tree(smplh_tree: SynthSummary, tmp_path: Path) -> Path:
    """A private copy of the small SMPL+H tree (without its archives), to modify."""
    root = tmp_path / "tree"
    shutil.copytree(smplh_tree.root, root, ignore=shutil.ignore_patterns("archives"))
    return root


def rows(db: Path) -> dict[str, CatalogRecord]:
    with Catalog.open(db) as cat:
        return {r.path: r for r in cat.records()}


def test_one_row_per_motion_file_matching_its_header(tree: Path) -> None:
    report = scan(tree, workers=1)
    assert report.seen == report.read and report.unchanged == 0
    motion = sorted(p for p in tree.rglob("*_poses.npz"))
    assert report.added == len(motion) == 19 and report.problems == 0
    assert report.skipped == len(list(tree.rglob("shape.npz")))
    records = rows(tree / "amasskit-catalog.sqlite")
    for path in motion:
        rel = path.relative_to(tree).as_posix()
        rec = records[rel]
        header = amasskit.read_header(path)
        st = path.stat()
        assert (rec.frames, rec.fps, rec.gender, rec.model) == (
            header.num_frames, header.fps, header.gender.value, header.model.value
        )  # fmt: skip
        assert rec.duration == pytest.approx(header.duration)
        assert (rec.size, rec.mtime_ns) == (st.st_size, st.st_mtime_ns)
        assert rec.dataset == canonical_dataset(path.parts[-3]) and rec.dataset_dir == path.parts[-3]
        assert rec.subject == path.parts[-2] and rec.sequence == path.name[: -len("_poses.npz")]
        assert rec.num_betas == 16 and rec.has_dmpls and rec.synthetic
        assert rec.hash_kind == "crc" and len(rec.content_hash) == 40
    with Catalog.open(tree) as cat:
        assert set(cat.skipped().values()) == {"shape"}
        assert len(cat) == 19


def test_problem_files_are_recorded_not_fatal(tree: Path) -> None:
    (tree / "CMU" / "01" / "broken_poses.npz").write_bytes(b"not a zip")
    good = next(tree.rglob("*_poses.npz"))
    cut = tree / "KIT" / "cut_poses.npz"
    cut.parent.mkdir(exist_ok=True)
    cut.write_bytes(good.read_bytes()[:1000])
    report = scan(tree, workers=1)
    assert report.problems == 2 and report.added == 19
    with Catalog.open(tree) as cat:
        problems = {p.path: p for p in cat.problems()}
    assert problems["CMU/01/broken_poses.npz"].error == "CorruptFileError"
    assert (
        "truncated" in problems["KIT/cut_poses.npz"].message
        or problems["KIT/cut_poses.npz"].error == "CorruptFileError"
    )
    # fixed on disk: the next scan moves it from problems to files
    shutil.copyfile(good, tree / "CMU" / "01" / "broken_poses.npz")
    again = scan(tree, workers=1)
    assert again.read == 1 and again.added == 1
    with Catalog.open(tree) as cat:
        assert [p.path for p in cat.problems()] == ["KIT/cut_poses.npz"]
        assert len(cat) == 20


def test_incremental_rescan(tree: Path) -> None:
    scan(tree, workers=1)
    before = rows(tree / "amasskit-catalog.sqlite")
    nothing = scan(tree, workers=1)
    assert (nothing.read, nothing.added, nothing.updated, nothing.removed) == (0, 0, 0, 0)
    assert nothing.unchanged == nothing.seen

    files = sorted(tree.rglob("*_poses.npz"))
    changed, deleted = files[0], files[1]
    seq = amasskit.read(changed, dtype=np.float64)
    amasskit.write(seq[: seq.num_frames // 2], changed)  # new content, new size
    deleted.unlink()
    added = tree / "SFU" / "new_subject" / "hop_01_poses.npz"
    amasskit.write(seq, added)
    report = scan(tree, workers=1)
    assert (report.read, report.added, report.updated, report.removed) == (2, 1, 1, 1)
    after = rows(tree / "amasskit-catalog.sqlite")
    rel = changed.relative_to(tree).as_posix()
    assert after[rel].frames == seq.num_frames // 2 and after[rel].content_hash != before[rel].content_hash
    assert deleted.relative_to(tree).as_posix() not in after
    assert after["SFU/new_subject/hop_01_poses.npz"].frames == seq.num_frames


def test_content_hashes(tree: Path) -> None:
    scan(tree, tree / "md5.sqlite", workers=1, hash_kind="md5")
    for rel, rec in rows(tree / "md5.sqlite").items():
        assert rec.content_hash == hashlib.md5((tree / rel).read_bytes()).hexdigest()
    scan(tree, tree / "crc.sqlite", workers=1)
    crc = rows(tree / "crc.sqlite")
    assert len({r.content_hash for r in crc.values()}) == len(crc)  # distinct files, distinct hashes


def test_parallel_scan_equals_serial(tree: Path) -> None:
    for k in range(80):  # enough files for the worker pool to be used
        shutil.copyfile(next(tree.rglob("*_poses.npz")), tree / "CMU" / "01" / f"copy{k:02d}_poses.npz")
    scan(tree, tree / "one.sqlite", workers=1)
    report = scan(tree, tree / "two.sqlite", workers=2)
    assert report.read == report.seen
    strip = lambda recs: {k: {**v.__dict__, "scanned_at": 0} for k, v in recs.items()}  # noqa: E731
    assert strip(rows(tree / "one.sqlite")) == strip(rows(tree / "two.sqlite"))


def test_killed_scan_keeps_what_it_recorded(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scan_module, "_COMMIT_EVERY", 4)
    original = scan_module._scan_one
    calls = {"n": 0}

    def dies(*args: object) -> object:
        calls["n"] += 1
        if calls["n"] > 10:
            raise KeyboardInterrupt  # the process is killed mid-scan
        return original(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(scan_module, "_scan_one", dies)
    with pytest.raises(KeyboardInterrupt):
        scan(tree, workers=1)
    con = sqlite3.connect(tree / "amasskit-catalog.sqlite")
    kept = sum(
        con.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("files", "skipped", "problems")
    )
    con.close()
    assert 8 <= kept <= 10  # every committed batch survived
    monkeypatch.setattr(scan_module, "_scan_one", original)
    report = scan(tree, workers=1)
    assert report.read == report.seen - kept  # the rescan reads only what was not recorded
    assert len(rows(tree / "amasskit-catalog.sqlite")) == 19


def test_symlinks_followed_and_loops_guarded(tree: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere" / "GRAB"
    shutil.copytree(tree / "CMU", outside)
    os.symlink(outside, tree / "GRAB")
    os.symlink(tree, tree / "CMU" / "loop")  # a loop back to the root
    os.symlink(tree / "nowhere", tree / "dangling")
    (tree / ".CMU.tar.bz2.partial").mkdir()  # unpack staging: hidden, skipped
    shutil.copyfile(next(tree.rglob("*_poses.npz")), tree / ".CMU.tar.bz2.partial" / "x_poses.npz")
    report = scan(tree, workers=1)
    cmu = len(list((tree / "CMU").glob("*/*_poses.npz")))
    assert report.added == 19 + cmu
    records = rows(tree / "amasskit-catalog.sqlite")
    assert sum(r.dataset == "GRAB" for r in records.values()) == cmu
    assert not any("loop" in p or p.startswith(".") for p in records)


def test_aliases_give_canonical_names(tree: Path) -> None:
    (tree / "BioMotionLab_NTroje").rename(tree / "BMLrub")
    (tree / "MPI_HDM05").rename(tree / "HDM05")
    scan(tree, workers=1)
    with Catalog.open(tree) as cat:
        rub = cat.records(dataset="BMLrub")  # queries accept aliases too
        assert rub and all(r.dataset == "BioMotionLab_NTroje" and r.dataset_dir == "BMLrub" for r in rub)
        assert {r.dataset for r in cat.records(dataset="MPI_HDM05")} == {"MPI_HDM05"}
    assert (
        canonical_dataset("DFaust67") == "DFaust_67"
        and canonical_dataset("eyes-japan-dataset") == "Eyes_Japan_Dataset"
    )
    assert canonical_dataset("NewThing") == "NewThing"


def test_deeper_trees_take_the_named_sub_dataset_and_the_files_folder(tree: Path) -> None:
    """A folder between a sub-dataset and its subjects (``SSM_synced/resynced/<subject>/``) and a tree scanned from
    above the release (``smplh/CMU/<subject>/``) give the sub-dataset by name and the file's folder as subject; a
    catalog whose rows an earlier rule placed (the last three levels) is corrected by the next scan, unread."""
    ssm = next(tree.glob("SSM_synced/*/*_poses.npz"))
    deep = tree / "SSM_synced" / "resynced" / ssm.parent.name / ssm.name
    deep.parent.mkdir(parents=True)
    ssm.rename(deep)
    above = tree / "smplh" / "CMU" / "77" / "77_01_poses.npz"
    above.parent.mkdir(parents=True)
    shutil.copy2(next(tree.glob("CMU/*/*_poses.npz")), above)
    scan(tree, workers=1)
    records = rows(tree / "amasskit-catalog.sqlite")
    rel = deep.relative_to(tree).as_posix()
    assert (records[rel].dataset, records[rel].subject) == ("SSM_synced", ssm.parent.name)
    top = above.relative_to(tree).as_posix()
    assert (records[top].dataset, records[top].subject, records[top].sequence) == ("CMU", "77", "77_01")
    con = sqlite3.connect(tree / "amasskit-catalog.sqlite")  # as the earlier rule left it
    with con:
        con.execute("UPDATE files SET dataset='resynced', dataset_dir='resynced', subject=? WHERE path=?",
                    (ssm.parent.name, rel))  # fmt: skip
    con.close()
    again = scan(tree, workers=1)
    assert again.read == 0 and rows(tree / "amasskit-catalog.sqlite")[rel].dataset == "SSM_synced"


def test_queries(tree: Path) -> None:
    scan(tree, workers=1)
    with Catalog.open(tree) as cat:
        everything = cat.records()
        assert len(everything) == 19
        female = cat.records(gender="female")
        assert female and all(r.gender == "female" for r in female)
        at_120 = cat.records(fps=120)
        assert at_120 and all(abs(r.fps - 120) < 0.01 for r in at_120)
        assert {round(r.fps) for r in cat.records(min_fps=200)} <= {240, 250}
        long = cat.records(min_duration=1.0)
        assert all(r.duration >= 1.0 for r in long)
        two = cat.records(dataset=["CMU", "KIT"])
        assert {r.dataset for r in two} == {"CMU", "KIT"}
        assert cat.records(model="smplx") == []
        assert [p.is_file() for p in cat.paths(dataset="CMU")] == [True] * len(cat.records(dataset="CMU"))
        df = cat.dataframe(gender="male")
        assert len(df) == len(cat.records(gender="male")) and "duration" in df.columns
        stats = cat.stats()
        assert sum(s.files for s in stats) == 19 and sum(s.frames for s in stats) == sum(
            r.frames for r in everything
        )
        with pytest.raises(ValueError, match="needs the scheme"):
            cat.records(split="train")


def test_smplx_tree(smplx_tree: SynthSummary, tmp_path: Path) -> None:
    scan(smplx_tree.root, tmp_path / "x.sqlite", workers=1)
    with Catalog.open(tmp_path / "x.sqlite") as cat:
        assert len(cat) == 12 and {r.model for r in cat.records()} == {"smplx"}
        assert not any(r.has_dmpls for r in cat.records())
        assert set(cat.skipped().values()) == {"stagei"}
        assignment = cat.assign_split("amass-paper-all")
        assert assignment.unallocated == {} and sum(cat.split_counts("amass-paper-all").values()) == 12


def test_catalog_errors(tree: Path, tmp_path: Path) -> None:
    scan(tree, tmp_path / "c.sqlite", workers=1)
    other = synth_tree(tmp_path / "other", files=1, lengths="short")
    with pytest.raises(CatalogError, match="this catalog is of"):
        scan(other.root, tmp_path / "c.sqlite", workers=1)
    (tmp_path / "junk.sqlite").write_bytes(b"definitely not sqlite" * 100)
    with pytest.raises(CatalogError, match="not an amasskit catalog"):
        scan(tree, tmp_path / "junk.sqlite")
    with pytest.raises(CatalogError, match="no catalog here"):
        Catalog.open(tmp_path / "missing.sqlite")
    with pytest.raises(NotADirectoryError):
        scan(tmp_path / "nope")
