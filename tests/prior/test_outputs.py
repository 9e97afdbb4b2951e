"""`amasskit info` on everything amasskit writes: one way to ask what is in a folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from amasskit.cli import app
from amasskit.prior import TrainingData, load_model

runner = CliRunner()


def test_info_says_what_every_output_is(tiny_model: Path, catalogued: Path, tmp_path: Path) -> None:
    root = tiny_model.parent.parent  # clean/ (a pose set), data/ (a training set), run/ (a prior run)
    np.savez(
        tmp_path / "list_smplx.npz",
        poses=np.zeros((3, 55, 3)),
        ids=np.arange(3),
        vertex_error_mean=np.ones(3),
    )
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["info", "--json", str(root / "clean"), str(root / "data"), str(root / "run"),
                                 str(tiny_model), str(catalogued / "amasskit-catalog.sqlite"),
                                 str(tmp_path / "list_smplx.npz")])  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = {Path(r["path"]).name: r for r in json.loads(result.stdout)}
    data = TrainingData(root / "data")
    assert rows["clean"]["kind"] == "pose set" and rows["clean"]["frames"] == 24 * 24
    assert rows["data"]["kind"] == "training set" and rows["data"]["samples"] == len(data)
    assert f"{len(data):,} noisy samples" in rows["data"]["summary"]
    assert rows["run"]["kind"] == "prior run" and "finished" in rows["run"]["summary"]
    assert rows["model.pt"]["step"] == load_model(tiny_model).info["step"] == 30  # type: ignore[attr-defined]
    assert (
        rows["amasskit-catalog.sqlite"]["kind"] == "catalog" and rows["amasskit-catalog.sqlite"]["files"] > 0
    )
    assert rows["list_smplx.npz"]["kind"] == "pose list" and rows["list_smplx.npz"]["poses"] == 3
    table = runner.invoke(app, ["info", str(root / "data")])
    assert table.exit_code == 0 and "training set" in table.output
    nothing = runner.invoke(app, ["info", str(tmp_path / "empty")])
    assert nothing.exit_code == 1 and "nothing amasskit wrote" in " ".join(nothing.output.split())
    stats = runner.invoke(app, ["store", "stats", str(root / "data")])
    text = " ".join(stats.output.split())
    assert stats.exit_code == 1 and "not a store but training set" in text and "amasskit info" in text
