"""The command line: info, synth and demo, through Typer's runner (the same entry point as the console script)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import amasskit.demo as demo_module
from amasskit import read
from amasskit.cli import app
from amasskit.demo import DemoReport, run_demo
from amasskit.synth import SynthSummary
from amasskit.testing import smplh_arrays, write_npz

runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and "amasskit" in result.output


def test_info_json_on_real_samples(samples: Path) -> None:
    result = runner.invoke(app, ["info", "--json", str(samples / "dmpl_sample.npz")])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["num_frames"] == 235 and data["gender"] == "female" and data["model"] == "smplh"
    assert abs(data["fps"] - 120.00004578) < 1e-6


def test_info_table_and_full(samples: Path) -> None:
    result = runner.invoke(app, ["info", "--full", str(samples / "amass_sample.npz")])
    assert result.exit_code == 0, result.output
    assert "601" in result.output and "male" in result.output


def test_info_reports_bad_and_non_motion_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad_poses.npz"
    bad.write_bytes(b"garbage")
    write_npz(tmp_path / "shape.npz", betas=np.zeros(16), gender=np.array("male"))
    write_npz(tmp_path / "good_poses.npz", **smplh_arrays())
    result = runner.invoke(app, ["info", "--json", str(tmp_path)])
    assert result.exit_code == 1
    rows = {Path(r["path"]).name: r for r in json.loads(result.stdout)}
    assert rows["bad_poses.npz"]["error"] == "CorruptFileError"
    assert rows["shape.npz"] == {"path": str(tmp_path / "shape.npz"), "kind": "shape", "motion": False}
    assert rows["good_poses.npz"]["num_frames"] == 10
    table = runner.invoke(app, ["info", str(tmp_path)])
    assert table.exit_code == 1 and "CorruptFileError" in table.output


def test_synth_then_info(tmp_path: Path) -> None:
    out = tmp_path / "tree"
    result = runner.invoke(
        app, ["-q", "synth", str(out), "--files", "4", "--lengths", "short", "--release", "smplx"]
    )
    assert result.exit_code == 0, result.output
    assert len(list(out.rglob("*_stageii.npz"))) == 4
    again = runner.invoke(app, ["synth", str(out), "--files", "4"])
    assert again.exit_code == 1 and "FileExistsError" in again.output
    info = runner.invoke(app, ["info", "--json", str(out)])
    assert info.exit_code == 0
    rows = json.loads(info.stdout)
    assert sum(1 for r in rows if r.get("model") == "smplx") == 4


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> DemoReport:
    """The main job, run once through the library: 19 files, one per sub-dataset, the release's lengths; its folder
    given as users give one: relative, from another working directory, through ``..`` and a symlink, with a space
    and a non-ASCII letter in its name (the default relative ``--out`` once crashed the demo's last step). Its body
    models are the session's synthetic ones, already written (the demo writes its own where the folder has none, as
    `.ci/run`'s `./scripts/demo` does: 10 s saved here)."""
    base = tmp_path_factory.mktemp("demo")
    (base / "real" / "démo run").mkdir(parents=True)
    (base / "real" / "démo run" / "models").symlink_to(model_dir, target_is_directory=True)
    (base / "link").symlink_to(base / "real", target_is_directory=True)
    (base / "cwd").mkdir()
    before = Path.cwd()
    os.chdir(base / "cwd")
    try:
        report = run_demo("../link/démo run", files=19, workers=1)
    finally:
        os.chdir(before)
    assert report.synth.root == base / "real" / "démo run" / "synthetic"  # resolved once, at the boundary
    return report


def test_demo_runs_the_whole_path(demo_report: DemoReport) -> None:
    report = demo_report
    assert report.ok and report.files == 19 and not report.problems
    assert all(r.verified for r in report.unpack.results) and len(report.unpack.results) > 0
    assert report.scan.db.is_file() and report.scan.added == 19 and report.scan.skipped == 19  # + shape files
    assert set(report.split_counts) == {"train", "vald", "test"} and sum(report.split_counts.values()) <= 19
    train = report.prepared.stores["train"]
    assert (train / "manifest.json").is_file() and report.prepared.sequences["train"] > 0
    # mirrored copies: twice the sequences of the training files that are long enough
    assert report.prepared.sequences["train"] % 2 == 0
    assert report.loading is not None and report.loading.batches == 100 and report.loading.batch_size == 256
    assert report.loading.shapes["pose_body"][1:] == (32, 21, 3) and report.loading.frames_per_second > 0
    assert report.preview is not None and report.preview.stat().st_size > 10_000
    # the two shortest files converted to SMPL-X, each holding its per-frame errors, read back as SMPL-X
    assert report.converted is not None and len(report.converted) == 2 and report.converted_to == "smplx"
    for path, summary in report.converted.items():
        seq = read(path)
        assert seq.model.value == "smplx" and seq.num_frames == summary["frames"]
        assert 0 < summary["vertex_error_mean_mm"] < 30


def test_demo_command_prints_the_report(
    demo_report: DemoReport, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The command formats what run_demo returns (run once above, not again here)."""
    calls: list[dict[str, object]] = []

    def fake(out: Path, **options: object) -> DemoReport:
        calls.append({"out": out, **options})
        return demo_report

    monkeypatch.setattr(demo_module, "run_demo", fake)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["demo", "--out", "somewhere", "--files", "19", "-j", "1"])
    assert result.exit_code == 0, result.output
    assert calls == [{"out": tmp_path / "somewhere", "files": 19, "seed": 0, "release": "smplh", "workers": 1,
                      "progress": calls[0]["progress"]}]  # fmt: skip
    text = " ".join(result.output.split())  # rich wraps long lines
    assert "19 motion files read back, 0 problems" in text and "(19 verified" in text
    counts = ", ".join(f"{k} {v}" for k, v in demo_report.split_counts.items())
    assert f"split amass-paper: {counts}; unallocated:" in text
    assert f"loaded 100 batches of 256 x 32-frame clips from {demo_report.loading.store}" in text  # type: ignore[union-attr]
    assert f"preview video (built-in skeleton): {demo_report.preview}" in result.output.replace("\n", "")
    assert "converted the 2 shortest files" in text and "to smplx with synthetic body models" in text


def test_quiet_and_verbose_set_the_log_level(tmp_path: Path) -> None:
    quiet = runner.invoke(app, ["-q", "synth", str(tmp_path / "q"), "--files", "1", "--lengths", "short"])
    assert quiet.exit_code == 0 and "wrote 1 synthetic files" not in quiet.output
    loud = runner.invoke(app, ["-v", "synth", str(tmp_path / "v"), "--files", "1", "--lengths", "short"])
    assert loud.exit_code == 0 and "wrote 1 synthetic files" in loud.output


def test_synth_models_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command passes its options to write_body_models (tested on its own, and written whole for the session's
    model_dir fixture) and lists what it wrote."""
    import amasskit.synth

    calls: list[tuple[Path, dict[str, object]]] = []

    def fake(out: Path, **options: object) -> list[Path]:
        calls.append((out, options))
        return [out / "smplh" / "female" / "model.npz", out / "smplx" / "SMPLX_MALE.npz"]

    monkeypatch.setattr(amasskit.synth, "write_body_models", fake)
    result = runner.invoke(app, ["synth-models", str(tmp_path / "models"), "--seed", "3", "--hand-pca"])
    assert result.exit_code == 0, result.output
    assert calls == [(tmp_path / "models", {"seed": 3, "hand_pca": True})]
    assert str(tmp_path / "models" / "smplx" / "SMPLX_MALE.npz") in result.output.replace("\n", "")


def test_library_errors_print_type_and_message_and_a_traceback_only_with_verbose(tmp_path: Path) -> None:
    plain = runner.invoke(app, ["store", "stats", str(tmp_path)])
    assert plain.exit_code == 1
    assert "StoreError: " in plain.output and str(tmp_path) in plain.output.replace("\n", "")
    assert "Traceback" not in plain.output
    verbose = runner.invoke(app, ["-v", "store", "stats", str(tmp_path)])
    assert verbose.exit_code == 1 and "Traceback" in verbose.output and "StoreError" in verbose.output


def test_catalog_sub_commands_and_the_old_form(smplh_tree: SynthSummary, tmp_path: Path) -> None:
    """`catalog scan DIR` scans even a folder named `stats`; `catalog DIR` (the form before sub-commands) still scans,
    with a note; `catalog stats` summarises."""
    named_stats = tmp_path / "stats"
    shutil.copytree(smplh_tree.root / "CMU", named_stats / "CMU")
    scanned = runner.invoke(app, ["-q", "catalog", "scan", str(named_stats)])
    assert scanned.exit_code == 0, scanned.output
    assert (named_stats / "amasskit-catalog.sqlite").is_file()
    old = runner.invoke(app, ["-q", "catalog", str(named_stats)])
    assert old.exit_code == 0 and "is now `amasskit catalog scan" in " ".join(old.output.split())
    stats = runner.invoke(app, ["catalog", "stats", str(named_stats)])
    assert stats.exit_code == 0 and "CMU" in stats.output


def test_the_librarys_tables_name_exactly_the_choices() -> None:
    """The tables keyed by a choice (presets, joint sets, schedules) hold exactly the names of its ``Literal`` type,
    which both the library's checks and the command line's choice lists are read from."""
    from amasskit import choices
    from amasskit.convert import SCHEDULES
    from amasskit.humanml3d import MODES as HUMANML3D_MODES
    from amasskit.prior import (
        JOINT_SETS,
        METRICS,
        NOISE_SCHEMES,
        POSE_SET_PRESETS,
        PROJECTION_METHODS,
        TRAIN_PRESETS,
    )
    from amasskit.prior.field._train import PRECISIONS
    from amasskit.store import EXPORT_FORMATS

    pairs = [(choices.NoiseScheme, NOISE_SCHEMES), (choices.Metric, METRICS), (choices.JointSet, JOINT_SETS),
             (choices.PoseSetPreset, POSE_SET_PRESETS), (choices.TrainPreset, TRAIN_PRESETS),
             (choices.Precision, PRECISIONS), (choices.ProjectionMethod, PROJECTION_METHODS),
             (choices.FitSchedule, SCHEDULES), (choices.ExportFormat, EXPORT_FORMATS),
             (choices.HumanML3DMode, HUMANML3D_MODES)]  # fmt: skip
    for choice, library in pairs:
        assert set(choices.values(choice)) == set(library), choice
    with pytest.raises(TypeError, match="not a choice type"):
        choices.values(int)


def test_a_choice_outside_the_list_is_refused_by_the_command(tmp_path: Path) -> None:
    """The command line offers a choice type's names and refuses others, naming them."""
    result = runner.invoke(
        app, ["prior", "data", str(tmp_path / "p.npz"), "-o", str(tmp_path / "o"), "--distance", "cosine"]
    )
    assert result.exit_code == 2
    assert "'posendf'" in result.output and "'geodesic'" in result.output and "cosine" in result.output


def test_the_command_line_starts_without_torch() -> None:
    """Building every command (their choice lists included) imports neither torch nor the prior: `amasskit --help`
    and a typo answer at once."""
    code = "import sys, amasskit.cli; print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('amasskit.prior')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
