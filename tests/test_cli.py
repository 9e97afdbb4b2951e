"""The command line: info, synth and demo, through Typer's runner (the same entry point as the console script)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from amasskit.cli import app
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


def test_demo_summarises_a_synthetic_tree(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--out", str(tmp_path / "demo"), "--files", "19", "-j", "1"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # rich wraps long lines
    assert "total" in text and "19 motion files read back" in text
    assert "0 problems" in text and "(19 verified" in text and "split amass-paper" in text
    assert (tmp_path / "demo" / "amass" / "amasskit-catalog.sqlite").is_file()
    assert "prepared stores" in text and (tmp_path / "demo" / "stores" / "train" / "manifest.json").is_file()
    loaded = re.search(
        r"loaded (\d+) batches of 256 x 32-frame clips .*pose_body \(\d+, 32, 21, 3\).*: ([\d,]+) frames/s",
        text,
    )
    assert loaded is not None, text
    assert int(loaded.group(1)) == 100 and int(loaded.group(2).replace(",", "")) > 0
    preview = re.search(
        r"preview video \(built-in skeleton\): (\S+\.(mp4|gif))", result.output.replace("\n", "")
    )
    assert preview is not None and Path(preview.group(1)).stat().st_size > 10_000


def test_quiet_and_verbose_set_the_log_level(tmp_path: Path) -> None:
    quiet = runner.invoke(app, ["-q", "synth", str(tmp_path / "q"), "--files", "1", "--lengths", "short"])
    assert quiet.exit_code == 0 and "wrote 1 synthetic files" not in quiet.output
    loud = runner.invoke(app, ["-v", "synth", str(tmp_path / "v"), "--files", "1", "--lengths", "short"])
    assert loud.exit_code == 0 and "wrote 1 synthetic files" in loud.output


def test_synth_models_command(tmp_path: Path) -> None:
    result = runner.invoke(app, ["-q", "synth-models", str(tmp_path / "models")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "models" / "smplh" / "female" / "model.npz").is_file()
    assert (tmp_path / "models" / "dmpls" / "neutral" / "model.npz").is_file()
    assert (tmp_path / "models" / "smplx" / "SMPLX_MALE.npz").is_file()
