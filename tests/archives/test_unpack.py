"""Unpacking: byte-exact, hostile archives refused without damage, corrupt ones reported, atomic, resumable,
verified, parallel, with Python's bz2 and with a parallel decompressor."""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from amasskit.archives import (
    LOCK_NAME,
    RECORD_NAME,
    _unpack,
    load_checksum_table,
    md5_dir,
    unpack_archive,
    unpack_archives,
)
from amasskit.cli import app
from amasskit.synth import SynthSummary
from tests.archives.helpers import good_members, make_tar, member

TOOLS = ["python"] + [t for t in ("lbzip2", "pbzip2") if shutil.which(t)]


def outside_is_untouched(tmp_path: Path) -> list[str]:
    """Everything under tmp_path except the target and the archives (the test's own files)."""
    return sorted(
        str(p.relative_to(tmp_path))
        for p in tmp_path.rglob("*")
        if not str(p.relative_to(tmp_path)).startswith(("out", "arch"))
    )


@pytest.mark.parametrize("tool", TOOLS)
def test_real_sample_unpacks_byte_for_byte(samples: Path, tmp_path: Path, tool: str) -> None:
    result = unpack_archive(samples / "sample.tar.bz2", tmp_path / "out", decompressor=tool)  # type: ignore[arg-type]
    assert result.status == "unpacked" and result.folders == ("sample",) and result.files == 2
    for name in ("amass_sample.npz", "dmpl_sample.npz"):
        assert (tmp_path / "out/sample/subdir" / name).read_bytes() == (samples / name).read_bytes()
    assert (
        md5_dir(tmp_path / "out/sample") == "b5a86fe22ed2799d79101a532eb0ff27"
    )  # llamass's recorded md5_dir
    assert result.archive_md5 == "a289eea07e7c5fb96f7a011cecc802a4"  # SOURCES.md's md5 of the archive
    assert [p.name for p in (tmp_path / "out").iterdir()] == [
        "sample"
    ]  # no staging left; the record is unpack_archives'


def test_release_table_ships_with_the_package() -> None:
    table = load_checksum_table()
    assert len(table) == 19
    assert table["BMLrub.tar.bz2"].unpacks_to == "BioMotionLab_NTroje"
    assert table["CMU.tar.bz2"].md5_dir == "f04bc3f37f3eafebfb12ba0cf706ca72"


HOSTILE = {
    "absolute": lambda tmp: [(member(str(tmp / "evil.txt")), b"x")],
    "dotdot": lambda tmp: [(member("CMU/../../evil.txt"), b"x")],
    "symlink-out": lambda tmp: [(member("CMU/link", tarfile.SYMTYPE, "../../evil"), None)],
    "symlink-absolute": lambda tmp: [(member("CMU/link", tarfile.SYMTYPE, str(tmp / "evil")), None)],
    "symlink-chain": lambda tmp: [
        (member("CMU", tarfile.DIRTYPE), None),
        (member("CMU/up", tarfile.SYMTYPE, ".."), None),
        (member("CMU/esc", tarfile.SYMTYPE, "up/../.."), None),
    ],
    "hardlink-out": lambda tmp: [(member("CMU/hard", tarfile.LNKTYPE, "../evil.txt"), None)],
    "hardlink-missing": lambda tmp: [(member("CMU/hard", tarfile.LNKTYPE, "CMU/nothing"), None)],
    "device": lambda tmp: [(member("CMU/dev", tarfile.CHRTYPE), None)],
    "fifo": lambda tmp: [(member("CMU/fifo", tarfile.FIFOTYPE), None)],
}


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archive_refused_without_damage(tmp_path: Path, case: str, tool: str) -> None:
    before = outside_is_untouched(tmp_path)
    (tmp_path / "arch").mkdir()
    archive = make_tar(tmp_path / "arch" / "CMU.tar.bz2", good_members() + HOSTILE[case](tmp_path))
    result = unpack_archive(archive, tmp_path / "out", decompressor=tool)  # type: ignore[arg-type]
    assert result.status == "failed"
    assert result.error is not None and result.error.startswith("HostileArchiveError")
    assert str(archive) in result.error
    assert outside_is_untouched(tmp_path) == before  # nothing written outside the target
    assert (
        list((tmp_path / "out").iterdir()) == []
    )  # nor anything left inside it (no staging, no half folder)


def test_internal_links_are_kept(tmp_path: Path) -> None:
    archive = make_tar(
        tmp_path / "CMU.tar.bz2",
        [*good_members(), (member("CMU/01/copy.npz", tarfile.LNKTYPE, "CMU/01/a_poses.npz"), None),
         (member("CMU/01/alias.npz", tarfile.SYMTYPE, "a_poses.npz"), None)],
    )  # fmt: skip
    result = unpack_archive(archive, tmp_path / "out")
    assert result.status == "unpacked", result.error
    folder = tmp_path / "out/CMU/01"
    assert (folder / "copy.npz").read_bytes() == (folder / "a_poses.npz").read_bytes()
    assert os.readlink(folder / "alias.npz") == "a_poses.npz"


@pytest.mark.parametrize("tool", TOOLS)
@pytest.mark.parametrize("cut", [0.3, 0.7, 0.97])
def test_truncated_archive_is_reported_and_others_carry_on(
    smplh_tree: SynthSummary, tmp_path: Path, tool: str, cut: float
) -> None:
    source = smplh_tree.root / "archives" / "BMLrub.tar.bz2"
    data = source.read_bytes()
    bad = tmp_path / "BMLrub.tar.bz2"
    bad.write_bytes(data[: int(len(data) * cut)])
    good = smplh_tree.root / "archives" / "ACCAD.tar.bz2"
    report = unpack_archives([bad, good], tmp_path / "out", workers=1, decompressor=tool)  # type: ignore[arg-type]
    assert not report.ok
    failed, ok = report.results
    assert failed.status == "failed" and failed.error is not None and "CorruptArchiveError" in failed.error
    assert str(bad) in failed.error
    assert ok.status == "unpacked"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(["ACCAD", RECORD_NAME, LOCK_NAME])


@pytest.mark.parametrize("content", [b"", b"this is not an archive" * 100, b"BZh91AY&SY" + b"\x00" * 100])
def test_not_an_archive(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "junk.tar.bz2"
    path.write_bytes(content)
    result = unpack_archive(path, tmp_path / "out")
    assert result.status == "failed" and result.error is not None and "CorruptArchiveError" in result.error


def test_missing_archive(tmp_path: Path) -> None:
    result = unpack_archive(tmp_path / "nope.tar.bz2", tmp_path / "out")
    assert result.status == "failed" and result.error is not None and "no such archive" in result.error


def test_interrupted_run_leaves_no_half_folder_and_resumes(
    smplh_tree: SynthSummary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = smplh_tree.root / "archives" / "KIT.tar.bz2"
    original = _unpack._extract

    def interrupted(*args: object) -> object:
        original(*args)  # type: ignore[arg-type]
        raise KeyboardInterrupt  # killed after writing every member, before the rename

    monkeypatch.setattr(_unpack, "_extract", interrupted)
    with pytest.raises(KeyboardInterrupt):
        unpack_archives([archive], tmp_path / "out", workers=1)
    assert not (tmp_path / "out" / "KIT").exists()  # only the hidden staging folder holds the partial work
    monkeypatch.setattr(_unpack, "_extract", original)
    report = unpack_archives([archive], tmp_path / "out", workers=1)
    assert report.ok and report.results[0].status == "unpacked"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(["KIT", RECORD_NAME, LOCK_NAME])
    assert md5_dir(tmp_path / "out" / "KIT") == md5_dir(smplh_tree.root / "KIT")


def test_second_run_skips_unchanged_archives(smplh_tree: SynthSummary, tmp_path: Path) -> None:
    archives = [smplh_tree.root / "archives" / n for n in ("CMU.tar.bz2", "SFU.tar.bz2")]
    first = unpack_archives(archives, tmp_path / "out", workers=1)
    assert [r.status for r in first.results] == ["unpacked", "unpacked"]
    second = unpack_archives(archives, tmp_path / "out", workers=1)
    assert [r.status for r in second.results] == ["skipped", "skipped"]
    shutil.rmtree(tmp_path / "out" / "SFU")  # a folder removed since: unpacked again
    third = unpack_archives(archives, tmp_path / "out", workers=1)
    assert [r.status for r in third.results] == ["skipped", "unpacked"]
    forced = unpack_archives(archives, tmp_path / "out", workers=1, force=True)
    assert [r.status for r in forced.results] == ["unpacked", "unpacked"]
    record = json.loads((tmp_path / "out" / RECORD_NAME).read_text())
    assert record["archives"]["CMU.tar.bz2"]["folders"] == ["CMU"]
    assert len(record["archives"]["CMU.tar.bz2"]["archive_md5"]) == 32


def test_verify_against_a_checksum_table(smplh_tree: SynthSummary, tmp_path: Path) -> None:
    table_path = smplh_tree.root / "archives" / "checksums.json"
    archives = [smplh_tree.root / "archives" / n for n in ("HumanEva.tar.bz2", "EKUT.tar.bz2")]
    report = unpack_archives(archives, tmp_path / "a", workers=1, verify=True, checksums=table_path)
    assert report.ok and [r.verified for r in report.results] == [True, True]
    table = json.loads(table_path.read_text())
    table["archives"]["EKUT.tar.bz2"]["md5_dir"] = "0" * 32
    bad = unpack_archives(archives, tmp_path / "b", workers=1, verify=True, checksums=table)
    assert not bad.ok and [r.verified for r in bad.results] == [True, False]
    assert bad.results[1].error is not None and "ChecksumMismatchError" in bad.results[1].error
    del table["archives"]["EKUT.tar.bz2"]
    unknown = unpack_archives(archives, tmp_path / "c", workers=1, verify=True, checksums=table)
    assert unknown.ok and unknown.results[1].verified is None and unknown.results[1].status == "unpacked"


def test_synthetic_archives_do_not_match_the_real_table(smplh_tree: SynthSummary, tmp_path: Path) -> None:
    """The release table is the default: synthetic data named like a real archive is reported as a mismatch."""
    report = unpack_archives([smplh_tree.root / "archives" / "SFU.tar.bz2"], tmp_path / "out", verify=True)
    assert not report.ok and report.results[0].verified is False


def test_parallel_unpack_equals_the_tree(smplh_tree: SynthSummary, tmp_path: Path) -> None:
    archives = sorted((smplh_tree.root / "archives").glob("*.tar.bz2"))
    seen: dict[int, int] = {}
    report = unpack_archives(
        archives, tmp_path / "out", workers=2, verify=True, checksums=smplh_tree.root / "archives" / "checksums.json",
        progress=lambda i, n: seen.__setitem__(i, n),
    )  # fmt: skip
    assert report.ok, report.failed
    assert all(r.status == "unpacked" and r.verified for r in report.results)
    for dataset in smplh_tree.datasets:
        assert md5_dir(tmp_path / "out" / dataset) == md5_dir(smplh_tree.root / dataset)


def test_cli_unpack_exit_code(smplh_tree: SynthSummary, tmp_path: Path) -> None:
    bad = tmp_path / "Broken.tar.bz2"
    bad.write_bytes(b"BZh9 broken")
    good = smplh_tree.root / "archives" / "SFU.tar.bz2"
    result = CliRunner().invoke(
        app, ["-q", "unpack", str(bad), str(good), "--to", str(tmp_path / "out"), "-j", "1"]
    )
    assert result.exit_code == 1
    assert "CorruptArchiveError" in result.output and (tmp_path / "out" / "SFU").is_dir()
    ok = CliRunner().invoke(app, ["-q", "unpack", str(good), "--to", str(tmp_path / "out"), "--verify",
                                  "--checksums", str(smplh_tree.root / "archives" / "checksums.json")])  # fmt: skip
    assert ok.exit_code == 0, ok.output
    assert "skipped" in ok.output


def test_cli_verify_mismatch_is_said_once_with_what_to_do(smplh_tree: SynthSummary, tmp_path: Path) -> None:
    """Synthetic archives checked against the release table: each mismatch printed once (it was twice), the hint
    names the table `synth` wrote beside them; the rerun with that table verifies the recorded mismatch again
    (it stayed a mismatch until --force)."""
    archives = [str(smplh_tree.root / "archives" / n) for n in ("SFU.tar.bz2", "EKUT.tar.bz2")]
    table = smplh_tree.root / "archives" / "checksums.json"
    runner = CliRunner()
    first = runner.invoke(app, ["unpack", *archives, "--to", str(tmp_path / "out"), "--verify", "-j", "1"])
    text = " ".join(first.output.split())
    assert first.exit_code == 1 and text.count("ChecksumMismatchError") == 2, first.output
    assert f"--checksums {table}" in text
    again = runner.invoke(app, ["unpack", *archives, "--to", str(tmp_path / "out"), "--verify", "--checksums",
                                str(table), "-j", "1"])  # fmt: skip
    assert again.exit_code == 0, again.output
    assert "Mismatch" not in again.output and again.output.count("skipped") == 2
