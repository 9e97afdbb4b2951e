"""Plots of a catalog and a store: the numbers behind them, and images that are written, whole and not blank."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from amasskit.catalog import scan
from amasskit.cli import app
from amasskit.store import Store, StoreWriter, store_stats
from amasskit.synth import SynthSummary


@pytest.fixture
def store(tmp_path: Path) -> Path:
    rng = np.random.default_rng(3)
    writer = StoreWriter(tmp_path / "train")
    for i, (T, fps, aug) in enumerate([(30, 30.0, "none"), (45, 30.0, "mirror"), (10, 60.0, "rotate:0.25"),
                                       (20, 60.0, "rotate:1.5+mirror")]):  # fmt: skip
        fields = {
            "root_orient": rng.normal(size=(T, 3)),
            "pose_body": rng.normal(size=(T, 21, 3)),
            "trans": rng.normal(size=(T, 3)) * (i + 1),
        }
        writer.add({k: v.astype(np.float32) for k, v in fields.items()}, fps=fps, betas=np.zeros(16), gender="female",
                   meta={"name": f"s{i}", "augmentation": aug})  # fmt: skip
    writer.close({"rotation": "rotvec"})
    return tmp_path / "train"


def _looks_like_a_plot(path: Path) -> None:
    with Image.open(path) as im:
        pixels = np.asarray(im.convert("L"), dtype=np.float64)
    assert min(pixels.shape) > 300 and pixels.std() > 10  # a real figure, not an empty canvas
    assert not list(path.parent.glob(".*partial*"))


def test_store_stats_are_the_stores_numbers(store: Path) -> None:
    opened = Store(store)
    s = store_stats(opened)
    assert (s.sequences, s.frames) == (4, 105)
    assert np.allclose(s.durations, [1.0, 1.5, 10 / 60, 20 / 60]) and s.seconds == pytest.approx(3.0)
    assert s.fps == {30.0: 2, 60.0: 2}
    assert s.augmentation == {"mirror": 1, "none": 1, "rotate": 1, "rotate+mirror": 1}
    assert s.fields["pose_body"] == ((21, 3), "float32")
    trans = np.asarray(opened.fields["trans"], dtype=np.float64)
    assert np.allclose(s.ranges["trans"][:, 0], trans.min(axis=0)) and np.allclose(s.ranges["trans"][:, 4],
                                                                                   trans.max(axis=0))  # fmt: skip
    assert np.allclose(s.ranges["trans"][:, 2], np.median(trans, axis=0))
    sampled = store_stats(opened, max_frames=10)
    assert sampled.sampled == 10 and sampled.frames == 105  # ranges from an even sample; counts stay exact


def test_store_stats_cli_prints_and_plots(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    result = CliRunner().invoke(app, ["store", "stats", str(store), "--plot", str(tmp_path / "store.png")])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "4 sequences, 105 frames" in text and "rotate+mirror 1" in text and "30 fps (2)" in text
    _looks_like_a_plot(tmp_path / "store.png")


def test_catalog_stats_plot(
    smplh_tree: SynthSummary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    db = tmp_path / "catalog.sqlite"
    scan(smplh_tree.root, db, workers=1)
    result = CliRunner().invoke(app, ["catalog", "stats", str(db), "--plot", str(tmp_path / "catalog.png")])
    assert result.exit_code == 0, result.output
    _looks_like_a_plot(tmp_path / "catalog.png")
    # the rows name their sub-datasets (not "13 files"), and a short catalog's total is not "0.0 hours"
    import amasskit.viz._plots as plots
    from amasskit.catalog import Catalog

    figures: list[object] = []
    monkeypatch.setattr(plots, "_save", lambda plt, fig, path: figures.append(fig) or Path(path))
    with Catalog.open(db) as cat:
        records = cat.records()
        plots.plot_catalog(records, tmp_path / "again.png")
    (fig,) = figures
    spread = fig.axes[1]  # type: ignore[attr-defined]
    names = {t.get_text().rsplit(" (", 1)[0] for t in spread.get_yticklabels()}
    assert names == {r.dataset for r in records}
    title = fig._suptitle.get_text()  # type: ignore[attr-defined]
    assert "0.0 hours" not in title and "minutes" in title
    empty = CliRunner().invoke(app, ["store", "stats", str(tmp_path)])  # not a store: a typed error, exit 1
    assert empty.exit_code == 1 and "StoreError" in empty.output


def test_prior_report_plot_gives_each_prior_one_colour(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each prior's bars share one colour in every panel, and no two priors share one (the plot once gave both
    models one colour); a denoising task that was not run says so in its panel."""
    pytest.importorskip("matplotlib", reason="plots need matplotlib (amasskit[plot])")
    import amasskit.viz._plots as plots

    report = {"generation": {"dnn": 0.2, "fid": 1.0}, "denoising": {"40mm": {"mpjpe_mm": 30.0}},
              "completion": {"min_mm": 50.0, "mean_mm": 80.0}}  # fmt: skip
    figures: list[object] = []
    monkeypatch.setattr(plots, "_save", lambda plt, fig, path: figures.append(fig) or Path(path))
    plots.plot_prior_report({"a/model.pt": report, "b/model.pt": report, "none": report}, tmp_path / "r.png")
    (fig,) = figures
    per_prior: list[set[tuple[float, ...]]] = [set(), set(), set()]
    for ax in fig.axes:  # type: ignore[attr-defined]
        for k, container in enumerate(ax.containers):
            per_prior[k] |= {tuple(bar.get_facecolor()) for bar in container}
    assert all(len(colours) == 1 for colours in per_prior)
    assert len({next(iter(c)) for c in per_prior}) == 3
    figures.clear()
    plots.plot_prior_report({"none": report | {"denoising": None}}, tmp_path / "r.png")
    texts = [t.get_text() for t in figures[0].axes[0].texts]  # type: ignore[attr-defined]
    assert any("not run" in t for t in texts)
