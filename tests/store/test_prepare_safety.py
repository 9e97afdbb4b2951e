"""prepare never writes a wrong store, never deletes what amasskit did not write, and names every bad input.

Resume after a changed selection equals a clean run; one writer per out; stores swapped in whole; bad files skipped
and listed before assembly; every config value checked.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from amasskit.errors import (
    AmassKitError,
    BusyError,
    ConfigError,
    EmptySelectionError,
    OutputExistsError,
)
from amasskit.prepare import PrepareConfig, _run, _work, plan_prepare, prepare
from amasskit.store import Store, StoreWriter
from amasskit.synth import SynthSummary
from amasskit.testing import smplh_arrays, write_npz
from tests.locks import hold_lock
from tests.store.helpers import config, digest, rescan

LOCK = ".amasskit-prepare.lock"


def interrupted(monkeypatch: pytest.MonkeyPatch, cfg: PrepareConfig, after: int) -> None:
    """Run ``prepare`` and kill it (KeyboardInterrupt) once ``after`` files are done."""
    original = _run.work_one
    calls = {"n": 0}

    def dies(*args: object) -> object:
        calls["n"] += 1
        if calls["n"] > after:
            raise KeyboardInterrupt
        return original(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(_run, "work_one", dies)
    with pytest.raises(KeyboardInterrupt):
        prepare(cfg)
    monkeypatch.setattr(_run, "work_one", original)


def same_stores(a: dict[str, Path], b: dict[str, Path]) -> None:
    assert set(a) == set(b)
    for split in a:
        assert digest(a[split]) == digest(b[split]), split


# ---------------------------------------------------------------------------------------------- resume


def test_resume_after_the_selection_changed_equals_a_clean_run(
    catalogued: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Results are keyed by file and settings, not by position: a rerun over other sub-datasets (same count, so the
    positions line up with other files) builds exactly the store a clean run of the new selection builds."""
    before = (
        "ACCAD",
        "BMLhandball",
        "CMU",
        "DFaust_67",
        "HumanEva",
        "SFU",
        "SSM_synced",
        "Transitions_mocap",
    )
    after = (
        "BMLmovi",
        "BMLhandball",
        "EKUT",
        "DanceDB",
        "HumanEva",
        "MPI_mosh",
        "SSM_synced",
        "Transitions_mocap",
    )
    interrupted(monkeypatch, config(catalogued, tmp_path / "run", datasets=before), after=6)
    with caplog.at_level(logging.INFO, logger="amasskit"):
        resumed = prepare(config(catalogued, tmp_path / "run", datasets=after))
    clean = prepare(config(catalogued, tmp_path / "clean", datasets=after))
    same_stores(clean.stores, resumed.stores)
    assert resumed.discarded > 0 and "discarded" in caplog.text
    assert not (
        tmp_path / "run" / ".amasskit-prepare"
    ).exists()  # the run's work is gone once the stores are in


def test_resume_after_files_were_added_removed_and_changed(
    catalogued: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    interrupted(monkeypatch, config(catalogued, tmp_path / "run"), after=10)
    files = sorted(catalogued.rglob("*_poses.npz"))
    files[0].unlink()  # removed
    shutil.copy(files[1], files[1].with_name("walk_02_poses.npz"))  # added: now two files of that subject
    changed = smplh_arrays(40, seed=5)  # changed content at the same path (a new capture, say)
    write_npz(files[2], **changed)
    rescan(catalogued)
    resumed = prepare(config(catalogued, tmp_path / "run"))
    clean = prepare(config(catalogued, tmp_path / "clean"))
    same_stores(clean.stores, resumed.stores)
    sources = {m["source"] for p in resumed.stores.values() for m in Store(p).sequences}
    assert files[0].relative_to(catalogued).as_posix() not in sources


def test_a_file_changed_after_the_scan_is_not_taken_from_an_earlier_run(
    catalogued: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The catalog still has the old content hash; the file's size and time give the change away."""
    victim = sorted(catalogued.glob("CMU/*/*_poses.npz"))[0]
    interrupted(monkeypatch, config(catalogued, tmp_path / "run", datasets=("CMU", "KIT")), after=1)
    write_npz(victim, **smplh_arrays(33, seed=9))
    os.utime(victim, ns=(time.time_ns(), time.time_ns() + 10**9))
    resumed = prepare(config(catalogued, tmp_path / "run", datasets=("CMU", "KIT")))
    clean = prepare(config(catalogued, tmp_path / "clean", datasets=("CMU", "KIT")))
    same_stores(clean.stores, resumed.stores)


def test_leftovers_of_a_killed_run_are_cleaned(catalogued: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    for leftover in (out / ".train.partial" / "fields", out / ".vald.prepare" / "work", out / ".test.old"):
        leftover.mkdir(parents=True)
    work = out / ".amasskit-prepare" / "work"
    work.mkdir(parents=True)
    (work / ".0123.npz.abc.tmp").write_bytes(b"half")
    (work / ("f" * 32 + ".npz")).write_bytes(b"a result of nothing selected now")
    prepare(config(catalogued, out))
    assert sorted(p.name for p in out.iterdir()) == sorted([LOCK, "test", "train", "vald"])


# ---------------------------------------------------------------------------------------------- one writer


def test_a_second_prepare_into_the_same_out_is_refused_and_a_killed_one_frees_it(
    catalogued: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    with hold_lock(out / LOCK, 60) as holder:  # another process, mid-run
        with pytest.raises(BusyError, match=f"pid {holder.pid}"):
            prepare(config(catalogued, out, splits=("test",)))
        assert not (out / "test").exists()
        holder.send_signal(signal.SIGKILL)  # killed: the operating system releases its lock
        holder.wait()
    report = prepare(config(catalogued, out, splits=("test",)))
    assert len(Store(report.stores["test"])) > 0


def test_a_waiting_prepare_runs_once_the_other_ends(catalogued: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with hold_lock(out / LOCK, 1.0):
        report = prepare(config(catalogued, out, splits=("test",)), wait=30)
    assert report.stores["test"].is_dir()


def test_two_real_prepares_at_once_give_one_whole_store(catalogued: Path, tmp_path: Path) -> None:
    """Two `amasskit prepare` processes into one out: one makes the stores, the other refuses (or, started after
    the first finished, finds them done); never a finished-looking store with sequences missing."""
    out = tmp_path / "out"
    cli = [sys.executable, "-m", "amasskit", "-q", "prepare", "--catalog", str(catalogued), "--out", str(out),
           "--scheme", "amass-paper-all", "--fps", "30", "--mirror", "-j", "1"]  # fmt: skip
    procs = [
        subprocess.Popen(cli, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    results = []
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        results.append((proc.returncode, err))
    assert any(code == 0 for code, _ in results), results
    for code, err in results:
        assert code == 0 or "BusyError" in err, err
    clean = prepare(config(catalogued, tmp_path / "clean", rotations=0, noise=0.0, trim_keep=None, seed=0))
    for split, path in clean.stores.items():
        assert digest(out / split) == digest(path)


# ---------------------------------------------------------------------------------------------- what is there


def test_a_user_folder_at_a_split_path_is_never_replaced(catalogued: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    mine = out / "train" / "notes.txt"
    mine.parent.mkdir(parents=True)
    mine.write_text("my work")
    for overwrite in (False, True):
        with pytest.raises(OutputExistsError, match="not an amasskit store"):
            prepare(config(catalogued, out), overwrite=overwrite)
    assert mine.read_text() == "my work" and sorted(p.name for p in out.iterdir()) == sorted([LOCK, "train"])
    (out / "vald").write_text("a file where a store would go")
    with pytest.raises(OutputExistsError):
        prepare(config(catalogued, out, splits=("vald",)), overwrite=True)
    assert (out / "vald").read_text() == "a file where a store would go"
    with pytest.raises(OutputExistsError):
        StoreWriter(out / "train", overwrite=True)  # the writer itself refuses too


def test_a_store_of_another_experiment_is_replaced_only_with_overwrite(
    catalogued: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    first = prepare(config(catalogued, out, splits=("test",)))
    again = prepare(config(catalogued, out, splits=("test",)))  # the same experiment: kept, nothing redone
    assert again.experiment_id == first.experiment_id
    with pytest.raises(OutputExistsError, match="another experiment"):
        prepare(config(catalogued, out, splits=("test",), fps=60.0))
    assert Store(out / "test").manifest["experiment_id"] == first.experiment_id  # untouched
    other = prepare(config(catalogued, out, splits=("test",), fps=60.0), overwrite=True)
    clean = prepare(config(catalogued, tmp_path / "clean", splits=("test",), fps=60.0))
    assert other.experiment_id != first.experiment_id
    same_stores(clean.stores, other.stores)


def test_readers_during_a_swap_see_whole_stores(tmp_path: Path) -> None:
    """A store replaced again and again while another thread opens it: every open is one store, whole."""
    target = tmp_path / "store"

    def write(marker: int) -> None:
        frames = 5 + marker % 2 * 7  # the two versions differ in size too
        with StoreWriter(target, overwrite=True) as writer:
            for _ in range(3):
                writer.add({"trans": np.full((frames, 3), marker, np.float32)}, fps=30.0,
                           betas=np.zeros(16, np.float32), gender="male", meta={"marker": marker})  # fmt: skip

    write(0)
    seen: list[int] = []
    failures: list[str] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                store = Store(target)
                markers = {m["marker"] for m in store.sequences}
                values = set(np.unique(np.asarray(store.fields["trans"])).tolist())
                frames = 5 + next(iter(markers)) % 2 * 7
                if len(markers) != 1 or values != markers or store.num_frames != 3 * frames:
                    failures.append(f"mixed store: {markers} {values} {store.num_frames}")
                seen.append(next(iter(markers)))
            except Exception as exc:  # any failure to open is a failure of the swap
                failures.append(f"{type(exc).__name__}: {exc}")

    readers = [threading.Thread(target=read) for _ in range(2)]
    for t in readers:
        t.start()
    for marker in range(1, 120):
        write(marker)
    stop.set()
    for t in readers:
        t.join()
    assert failures == []
    assert len(seen) > 50 and len(set(seen)) > 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]  # no old or partial store left


# ---------------------------------------------------------------------------------------------- bad inputs


def add_file(root: Path, rel: str, **changes: object) -> str:
    arrays = smplh_arrays(60, seed=11) | changes
    write_npz(root / rel, **arrays)
    return rel


def test_files_that_cannot_be_prepared_are_skipped_and_listed(catalogued: Path, tmp_path: Path) -> None:
    bad = {
        add_file(
            catalogued, "CMU/90/tiny_fps_poses.npz", mocap_framerate=np.array(1e-6)
        ): "InvalidValueError",
        add_file(catalogued, "CMU/90/huge_fps_poses.npz", mocap_framerate=np.array(1e9)): "InvalidValueError",
        add_file(catalogued, "CMU/90/empty_dmpls_poses.npz", dmpls=np.zeros((60, 0))): "ArrayShapeError",
        add_file(catalogued, "CMU/90/narrow_dmpls_poses.npz", dmpls=np.zeros((60, 7))): "ArrayShapeError",
        add_file(catalogued, "CMU/90/overflow_poses.npz", trans=np.full((60, 3), 1e39)): "NonFiniteError",
    }
    good = add_file(catalogued, "CMU/90/fine_poses.npz")
    rescan(catalogued)
    report = prepare(config(catalogued, tmp_path / "out", splits=("train",), workers=2))
    found = dict(report.problems)
    assert set(found) == set(bad)
    for rel, kind in bad.items():
        assert found[rel].startswith(kind) and rel in found[rel], found[rel]
    store = Store(report.stores["train"])
    sources = {m["source"] for m in store.sequences}
    assert good in sources and not sources & set(bad)
    assert {p["path"] for p in store.manifest["problems"]} == set(bad)
    with pytest.raises(AmassKitError, match="strict"):
        prepare(config(catalogued, tmp_path / "strict", splits=("train",), strict=True))
    assert not (tmp_path / "strict" / "train").exists()


def test_an_unexpected_error_in_one_file_does_not_end_the_run(
    catalogued: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = _work.process_sequence

    def flaky(root: str, rel: str, cfg: PrepareConfig) -> object:
        if rel.startswith("KIT/"):
            raise RuntimeError("something no file should do")
        return original(root, rel, cfg)

    monkeypatch.setattr(_work, "process_sequence", flaky)
    report = prepare(config(catalogued, tmp_path / "out", splits=("train",)))
    ((path, error),) = report.problems
    assert path.startswith("KIT/") and error.startswith("RuntimeError") and path in error


def test_a_split_with_no_sequence_gets_no_store(catalogued: Path, tmp_path: Path) -> None:
    for victim in [
        *catalogued.glob("SSM_synced/*/*_poses.npz"),
        *catalogued.glob("Transitions_mocap/*/*_poses.npz"),
    ]:
        victim.write_bytes(b"not a zip")  # every test file damaged after cataloguing
    report = prepare(config(catalogued, tmp_path / "out"))
    assert report.empty == ["test"] and set(report.stores) == {"train", "vald"}
    assert not (tmp_path / "out" / "test").exists()


def test_a_selection_mixing_smplh_and_smplx_is_refused_up_front(
    catalogued: Path, smplx_tree: SynthSummary, tmp_path: Path
) -> None:
    source = sorted(smplx_tree.root.rglob("*_stageii.npz"))[0]
    shutil.copy(source, catalogued / "CMU" / "01" / "x_stageii.npz")
    rescan(catalogued)
    with pytest.raises(ConfigError, match="mixes SMPL\\+H and SMPL-X") as info:
        prepare(config(catalogued, tmp_path / "out"))
    assert info.value.key == "model"
    assert not (tmp_path / "out" / "train").exists()
    report = prepare(config(catalogued, tmp_path / "out", model="smplh"))
    assert all(m["model"] == "smplh" for m in Store(report.stores["train"]).sequences)


# ---------------------------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("trim_keep", 0.0, r"trim_keep must be in \(0, 1\]"),
        ("trim_keep", 1.5, r"trim_keep must be in \(0, 1\]"),
        ("fps", 0.0, "fps must be in"),
        ("fps", -30.0, "fps must be in"),
        ("fps", float("nan"), "fps must be finite"),
        ("fps", "30", "fps must be a number"),
        ("frame_fraction", 0.0, "frame_fraction must be in"),
        ("frame_fraction", 2.0, "frame_fraction must be in"),
        ("gender", "woman", "gender must be male, female or neutral"),
        ("model", "smpl", "model must be smplh or smplx"),
        ("splits", "train", "splits must be a list of names, got the string 'train'"),
        ("datasets", "CMU", "datasets must be a list"),
        ("splits", (), "splits is empty"),
        ("rotations", -1, "rotations must be in"),
        ("rotations", 1.5, "rotations must be an integer"),
        ("rotations", True, "rotations must be an integer"),
        ("noise", -0.1, "noise must be in"),
        ("min_frames", 0, "min_frames must be in"),
        ("min_duration", -1.0, "min_duration must be in"),
        ("seed", -3, "seed must be in"),
        ("workers", 0, "workers must be in"),
        ("mirror", "yes", "mirror must be true or false"),
        ("trim_seconds", (1.0,), "trim_seconds must be"),
        ("trim_seconds", (-1.0, 0.0), "trim_seconds must be >= 0"),
        ("rotation", "euler", "rotation must be rotvec, quat, rotmat or 6d"),
        ("dtype", "float16", "dtype must be float32 or float64"),
        ("scheme", 3, "scheme must be a non-empty string"),
        ("out", "", "out must be a non-empty string"),
    ],
)
def test_every_config_value_is_checked(key: str, value: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        PrepareConfig.from_mapping({"catalog": "c", "out": "o", key: value})
    assert info.value.key == key and isinstance(info.value, ValueError)


def test_numbers_are_normalised_so_the_same_config_is_the_same_experiment(
    catalogued: Path, tmp_path: Path
) -> None:
    as_int = plan_prepare(config(catalogued, tmp_path / "a", fps=30, splits=("test",)))
    as_float = plan_prepare(config(catalogued, tmp_path / "a", fps=30.0, splits=("test",)))
    assert as_int.experiment_id == as_float.experiment_id


def test_unknown_scheme_split_and_dataset_and_empty_selections(catalogued: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match="scheme 'amass-papr' is not recorded") as info:
        prepare(config(catalogued, out, scheme="amass-papr"))
    assert info.value.key == "scheme"
    with pytest.raises(ConfigError, match=r"splits \['training'\] are not in scheme"):
        prepare(config(catalogued, out, splits=("training",)))
    with pytest.raises(ConfigError, match="no sub-dataset 'CMUU'"):
        prepare(config(catalogued, out, datasets=("CMUU",)))
    with pytest.raises(EmptySelectionError, match="holds no sequence"):
        prepare(config(catalogued, out, min_duration=1e6))
    with pytest.raises(EmptySelectionError, match="split 'vald' holds no file"):
        prepare(config(catalogued, out, datasets=("CMU",), splits=("train", "vald")))
    only_cmu = prepare(
        config(catalogued, out, datasets=("CMU",))
    )  # splits not named: the empty ones are left out
    assert set(only_cmu.stores) == {"train"} and set(only_cmu.empty) == {"vald", "test"}
    assert sorted(p.name for p in out.iterdir()) == sorted([LOCK, "train"])


def test_config_files_missing_or_malformed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        PrepareConfig.from_file(tmp_path / "nope.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("catalog: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        PrepareConfig.from_file(broken)
    (tmp_path / "broken.json").write_text("{catalog: 1")
    with pytest.raises(ConfigError, match="not valid JSON"):
        PrepareConfig.from_file(tmp_path / "broken.json")
    (tmp_path / "list.yaml").write_text("- catalog\n- out\n")
    with pytest.raises(ConfigError, match="mapping"):
        PrepareConfig.from_file(tmp_path / "list.yaml")
    (tmp_path / "partial.yaml").write_text("catalog: c\n")
    with pytest.raises(ConfigError, match="needs out"):
        PrepareConfig.from_file(tmp_path / "partial.yaml")
    made = PrepareConfig.from_file(tmp_path / "partial.yaml", out="o")
    # the file's relative path from the file's folder, an override (a flag) from the working directory
    assert made.catalog == str(tmp_path / "c") and made.out == str(Path.cwd().resolve() / "o")


def said(result: object) -> str:
    """What a command printed, with rich's line wrapping undone."""
    return " ".join(str(getattr(result, "output", "")).split())


def test_cli_names_config_errors_without_a_traceback_and_dry_runs(catalogued: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from amasskit.cli import app

    runner = CliRunner()
    out = tmp_path / "out"
    base = ["prepare", "--catalog", str(catalogued), "--out", str(out), "--scheme", "amass-paper-all"]
    bad = runner.invoke(app, [*base, "--trim-keep", "1.5"])
    assert bad.exit_code == 1 and "ConfigError" in said(bad) and "trim_keep" in said(bad)
    assert "Traceback" not in said(bad)
    missing = runner.invoke(app, ["prepare", str(tmp_path / "missing.yaml")])
    assert missing.exit_code == 1 and "no such config file" in said(missing)
    dry = runner.invoke(app, [*base, "--fps", "30", "--dry-run"])
    assert dry.exit_code == 0, said(dry)
    assert "dry run: nothing written" in said(dry) and "create" in said(dry) and "train" in said(dry)
    assert not out.exists() or not any(out.iterdir())
    run = runner.invoke(app, ["-q", *base, "--fps", "30", "-j", "1"])
    assert run.exit_code == 0, said(run)
    again = runner.invoke(app, [*base, "--fps", "30", "--dry-run"])
    assert "keep" in said(again)
    other = runner.invoke(app, [*base, "--fps", "60"])
    assert other.exit_code == 1 and "OutputExistsError" in said(other) and "--overwrite" in said(other)
    manifest = json.loads((out / "train" / "manifest.json").read_text())
    assert manifest["config"]["fps"] == 30.0
