"""The evaluation protocol: each metric on cases with known answers and against a plain reimplementation, the
protocol on the known pose family (its exact field against no prior; deterministic), and `prior evaluate`."""

from __future__ import annotations

import dataclasses
import json
import sys
from itertools import combinations
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from amasskit.errors import InvalidArgumentError
from amasskit.prior import (
    EvaluationConfig,
    Kinematics,
    ManifoldField,
    apd,
    evaluate_prior,
    frechet_distance,
    nearest_pose_distance,
    pose_features,
    precision_recall,
    report_table,
)
from amasskit.rotations import quat_product, quat_to_rotvec, rotvec_to_quat
from amasskit.synth import PoseManifold
from tests.cli import run_cli


def test_apd_known_answers() -> None:
    """Two poses, one shifted by 0.3 m: 30 cm. Random sets: a plain double loop over pairs."""
    p = np.random.default_rng(0).normal(size=(1, 22, 3))
    shift = np.array([0.0, 0.3, 0.0])
    assert apd(np.concatenate([p, p + shift])) == pytest.approx(30.0)
    x = np.random.default_rng(1).normal(size=(7, 5, 3))
    plain = np.mean([np.mean([np.linalg.norm(a[j] - b[j]) for j in range(5)]) for a, b in combinations(x, 2)])
    assert apd(x) == pytest.approx(100 * plain)
    with pytest.raises(InvalidArgumentError):
        apd(x[:1])


def test_dnn_known_answers() -> None:
    """Identical sets: 0. Each pose with one joint turned by a known angle (far less than the poses' spacing): that
    full angle."""
    rng = np.random.default_rng(2)
    poses = np.asarray(rotvec_to_quat(rng.normal(0, 1.0, (20, 21, 3))))
    assert np.abs(nearest_pose_distance(poses, poses)).max() < 1e-3  # float32 quaternions: acos near 1
    angle = 0.2
    turn = np.zeros((20, 21, 4))
    turn[..., 3] = 1
    turn[:, 5] = np.asarray(rotvec_to_quat(np.array([0.0, angle, 0.0])))
    moved = np.asarray(quat_product(poses, turn))
    np.testing.assert_allclose(nearest_pose_distance(moved, poses), angle, atol=2e-3)


def test_frechet_distance_known_answers() -> None:
    """Identical sets: 0. A shift by s: |s|^2. Scaled by 2 (covariance 4 S): tr(S) (tr S + 4 tr S - 2 * 2 tr S)."""
    a = np.random.default_rng(3).normal(size=(400, 6))
    assert abs(frechet_distance(a, a)) < 1e-9
    s = np.array([0.5, -1.0, 0.0, 2.0, 0.1, 0.0])
    assert frechet_distance(a, a + s) == pytest.approx((s**2).sum(), rel=1e-9)
    assert frechet_distance(a, 2 * a) == pytest.approx(
        np.trace(np.cov(a, rowvar=False)) + (a.mean(0) ** 2).sum(), rel=1e-9
    )


def test_precision_recall_against_a_plain_loop() -> None:
    rng = np.random.default_rng(4)
    real, fake = rng.normal(size=(60, 3)), rng.normal(0.5, 1.3, size=(50, 3))
    assert precision_recall(real, real, k=3) == (1.0, 1.0)
    assert precision_recall(real, real + 100.0, k=3) == (0.0, 0.0)

    def radius(x: np.ndarray, i: int, k: int) -> float:
        return sorted(np.linalg.norm(x[i] - x[j]) for j in range(len(x)) if j != i)[k - 1]

    k = 4
    rr = [radius(real, i, k) for i in range(len(real))]
    rf = [radius(fake, i, k) for i in range(len(fake))]
    precision = np.mean([any(np.linalg.norm(f - real[i]) <= rr[i] for i in range(len(real))) for f in fake])
    recall = np.mean([any(np.linalg.norm(r - fake[i]) <= rf[i] for i in range(len(fake))) for r in real])
    ours = precision_recall(real, fake, k=k)
    assert ours == pytest.approx((precision, recall))
    assert 0 < ours[0] < 1 and 0 < ours[1] < 1


def _clip(manifold: PoseManifold, frames: int) -> dict[str, np.ndarray]:
    tau = np.linspace(0, 1, frames)[:, None]
    quat = manifold.poses(np.array([0.5, 2.0]) + tau * np.array([1.5, -1.0])).astype(np.float64)
    return {"root_orient": np.tile([np.pi / 2, 0.0, 0.0], (frames, 1)), "pose_body": np.asarray(quat_to_rotvec(quat)),
            "trans": np.concatenate([tau, np.zeros((frames, 2))], axis=1)}  # fmt: skip


def test_protocol_on_the_known_family() -> None:
    """The exact field of the family against no prior: generated poses lie on the family (converged, precise), the
    prior denoises better and completes the hidden leg better (best of the hypotheses), the baseline has no
    generation row, and the same seed gives the same report."""
    manifold = PoseManifold(dim=2, seed=0)
    field = ManifoldField(manifold, refine=4)  # coarser than the default: 40% less time, the same margins
    reference = manifold.sample(80, seed=1)
    config = EvaluationConfig(samples=30, noise_mm=(40.0,), pose_noise_rad=(0.3,), clip_frames=30, completion=4,
                              hypotheses=4, fit_steps=200)  # fmt: skip
    clips = [_clip(manifold, 30)]
    ours = evaluate_prior(field, reference=reference, clips=clips, config=config)
    none = evaluate_prior(None, reference=reference, clips=clips, config=config)
    gen = ours["generation"]
    # FID against an independent real sample of the same size (0.06-0.11 for three seeds; Haar poses: 7.6)
    kin = Kinematics()
    real_fid = frechet_distance(
        pose_features(reference, kin), pose_features(manifold.sample(30, seed=3), kin)
    )
    assert gen["converged"] == 1.0 and gen["precision"] > 0.9 and gen["fid"] < 2 * real_fid
    assert none["generation"] is None and none["field"] is None
    assert ours["denoising"]["40mm"]["mpjpe_mm"] < 0.9 * none["denoising"]["40mm"]["mpjpe_mm"]
    assert ours["denoising"]["0.3rad"]["mpjpe_mm"] < 0.9 * none["denoising"]["0.3rad"]["mpjpe_mm"]
    assert ours["completion"]["min_mm"] < 0.5 * none["completion"]["min_mm"]
    assert ours["completion"]["visible_mm"] < 10
    # the same seed, the same report (on a short schedule: determinism, not quality, is what is checked)
    short = dataclasses.replace(config, samples=8, completion=2, hypotheses=2, fit_steps=10, denoise_rounds=1,
                                denoise_steps=5, warmup=5)  # fmt: skip
    first = evaluate_prior(field, reference=reference, clips=clips, config=short)
    assert evaluate_prior(field, reference=reference, clips=clips, config=short) == first
    header, rows = report_table({"exact": ours, "none": none})
    assert header[0] == "prior" and "MPJPE@40mm" in header and rows[1][1] == "-" and header[1] == "dNN rad"
    # the noisy input's own error, what denoising starts from: the same noise for every prior
    noisy = ours["denoising"]["40mm"]["noisy_mpjpe_mm"]
    assert noisy == none["denoising"]["40mm"]["noisy_mpjpe_mm"] > ours["denoising"]["40mm"]["mpjpe_mm"]
    assert rows[2][0] == "noisy input" and rows[2][header.index("MPJPE@40mm")] == f"{noisy:.4g}"
    assert rows[2][header.index("dNN rad")] == "-"


def test_a_task_without_input_says_it_was_not_run(caplog: pytest.LogCaptureFixture) -> None:
    """Held-out files all shorter than a clip: the denoising task is reported as not run, with the reason (it
    used to vanish: "0 clips" and no rows)."""
    config = EvaluationConfig(samples=6, noise_mm=(40.0,), pose_noise_rad=(), clip_frames=30, completion=0)
    with caplog.at_level("WARNING", logger="amasskit"):
        report = evaluate_prior(
            None, reference=PoseManifold(dim=2, seed=0).sample(20, seed=1), clips=[], config=config
        )
    assert report["denoising"] is None and "not run" in report["skipped"]["denoising"]
    assert "denoising task was not run" in caplog.text
    header, rows = report_table({"none": report})
    assert not any(h.startswith("MPJPE") for h in header) and [r[0] for r in rows] == ["none"]


#: a short schedule (the commands' wiring is tested here, not the protocol's numbers)
QUICK = ("--hypotheses", "2", "--fit-steps", "30", "--denoise-rounds", "1", "--denoise-steps", "10", "--warmup", "10",
         "--max-steps", "20")  # fmt: skip


def test_the_evaluate_commands_defaults_are_the_protocols() -> None:
    """`prior evaluate`'s schedule options default to :class:`EvaluationConfig`'s (the published protocol)."""
    import inspect

    from amasskit.cli.prior import evaluate

    defaults = {name: p.default for name, p in inspect.signature(evaluate).parameters.items()}
    protocol = EvaluationConfig()
    for name in ("samples", "completion", "hypotheses", "fit_steps", "denoise_rounds", "denoise_steps", "warmup",
                 "max_steps", "seed"):  # fmt: skip
        assert defaults[name] == getattr(protocol, name), name


def _run(args: list[str]) -> SimpleNamespace:
    assert args[:3] == [
        sys.executable,
        "-m",
        "amasskit",
    ]  # the command as a user would start it, run in process
    return run_cli(*args[3:])


def test_evaluate_reads_a_catalogs_split(catalogued: Path, tmp_path: Path) -> None:
    """`prior evaluate none --catalog C --scheme S --split test`: the held-out files come from the catalog's split; a
    split without files is a clear error."""
    args = [sys.executable, "-m", "amasskit", "prior", "evaluate", "none", "--catalog", str(catalogued), "--scheme",
            "amass-paper-all", "--split", "test", "--completion", "1", "--noise", "40", "--pose-noise", "",
            *QUICK, "-o", str(tmp_path / "r.json")]  # fmt: skip
    run = _run(args)
    assert run.returncode == 0, run.stderr[-3000:]
    files = json.loads((tmp_path / "r.json").read_text())["inputs"]["files"]
    assert files and all(("Transitions" in f or "SSM" in f) for f in files)
    # interrupted after the first model (the second is missing): its report is kept and reused by the next run
    out = tmp_path / "two.json"
    broken = _run([*args[:-2], "-o", str(out), str(tmp_path / "missing.pt")])
    assert broken.returncode != 0 and "missing.pt" in broken.stderr and not out.exists()
    (part,) = (tmp_path / ".two.json.parts").glob("*.json")
    kept = json.loads(part.read_text())
    part.write_text(json.dumps({**kept, "reused": True}))
    again = _run([*args[:-2], "-o", str(out)])
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads(out.read_text())["reports"]["none"]["reused"] is True
    assert not (tmp_path / ".two.json.parts").exists()
    # a folder of the parts' name that amasskit did not make: refused, its files untouched
    (tmp_path / ".mine.json.parts").mkdir()
    (tmp_path / ".mine.json.parts" / "notes.txt").write_text("mine")
    refused = _run([*args[:-2], "-o", str(tmp_path / "mine.json")])
    assert refused.returncode == 1 and "amasskit did not make it" in " ".join(refused.stderr.split())
    assert (tmp_path / ".mine.json.parts" / "notes.txt").read_text() == "mine"
    bad = _run([*args[:-2], "-o", str(tmp_path / "x.json"), "--split", "nothing"])
    assert bad.returncode != 0 and "nothing" in bad.stderr


def test_the_evaluate_command(tiny_model: Path, smplh_tree: object, tmp_path: Path) -> None:
    """`prior evaluate` on an amasskit model and the baseline over held-out motion files: one table, a JSON report
    with a row per prior, a plot; a missing model fails with its typed error."""
    files = sorted(Path(smplh_tree.root).rglob("*_poses.npz"), key=lambda p: -p.stat().st_size)[:3]  # type: ignore[attr-defined]
    args = [sys.executable, "-m", "amasskit", "prior", "evaluate", str(tiny_model), "none",
            *(a for f in files for a in ("--motion", str(f))), "--samples", "12", "--completion", "2",
            "--noise", "40", "--pose-noise", "0.1", *QUICK, "-o", str(tmp_path / "r.json"), "--plot",
            str(tmp_path / "r.png")]  # fmt: skip
    run = _run(args)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads((tmp_path / "r.json").read_text())
    assert set(report["reports"]) == {str(tiny_model), "none"}
    schedule = {
        "hypotheses": 2,
        "fit_steps": 30,
        "denoise_rounds": 1,
        "denoise_steps": 10,
        "warmup": 10,
        "max_steps": 20,
    }
    assert {k: report["config"][k] for k in schedule} == schedule  # the schedule asked for, recorded
    assert report["reports"]["none"]["completion"]["poses"] == 2
    assert report["reports"][str(tiny_model)]["generation"]["apd_cm"] > 0
    assert (tmp_path / "r.png").stat().st_size > 1000 and "MPJPE" in run.stdout
    bad = _run([sys.executable, "-m", "amasskit", "prior", "evaluate", str(tmp_path / "no.pt"), "--motion",
                str(files[0])])  # fmt: skip
    assert bad.returncode != 0 and "no.pt" in bad.stderr


def test_the_table_tells_priors_of_one_file_name_apart() -> None:
    """Two runs' model.pt side by side: each column named by the shortest tail of its path that tells it apart."""
    from amasskit.cli.prior import _short_names

    names = _short_names(["/w/run-a/model.pt", "/w/run-b/model.pt", "/w/x/run-a/best.pt", "/c/official.tar"])
    assert names == {"/w/run-a/model.pt": "run-a/model.pt", "/w/run-b/model.pt": "run-b/model.pt",
                     "/w/x/run-a/best.pt": "best.pt", "/c/official.tar": "official.tar"}  # fmt: skip
    assert _short_names(["/a/b/run/model.pt", "/c/b/run/model.pt"]) == {
        "/a/b/run/model.pt": "a/b/run/model.pt",
        "/c/b/run/model.pt": "c/b/run/model.pt",
    }
