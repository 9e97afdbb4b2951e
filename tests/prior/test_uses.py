"""Generating and interpolating poses with a prior (the exact field of a known manifold stands in for a trained
model where the result must be checked against the truth), and the commands on a trained model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from amasskit.errors import CheckpointError, InvalidArgumentError, NotAmasskitModelError
from amasskit.io import read
from amasskit.prior import (
    ExactField,
    interpolate_poses,
    load_prior,
    read_pose,
    sample_poses,
)
from amasskit.rotations import quat_angle, quat_canonical, quat_to_rotvec, rotvec_to_quat
from amasskit.synth import PoseManifold
from tests.cli import run_cli


@pytest.fixture(scope="module")
def manifold() -> PoseManifold:
    return PoseManifold(dim=2, seed=0)


@pytest.fixture(scope="module")
def field(manifold: PoseManifold) -> ExactField:
    return ExactField(torch.from_numpy(manifold.poses(manifold.grid(48))))


def test_sampled_poses_lie_on_the_manifold(field: ExactField) -> None:
    """From Haar starts and from noisy identities, the poses that converge are within tol of the grid (a subset of
    the family) by the exact field; most converge; the same seed gives the same poses."""
    tol = 0.05
    for start in ("haar", "noisy-identity"):
        out = sample_poses(field, 24, start=start, seed=1, tol=tol, max_steps=80)
        assert out.converged.float().mean() >= 0.85
        assert (field(out.quat[out.converged]) < tol).all()
    again = sample_poses(field, 24, start="haar", seed=1, tol=tol, max_steps=80)
    torch.testing.assert_close(
        again.quat, sample_poses(field, 24, start="haar", seed=1, tol=tol, max_steps=80).quat
    )
    with pytest.raises(InvalidArgumentError, match="start must be"):
        sample_poses(field, 3, start="uniform")


def test_interpolation_stays_on_the_manifold_and_ends_at_b(manifold: PoseManifold) -> None:
    """Between two poses of the family: the path starts at A, ends at B, every pose on the way is within tol of the
    manifold by the exact field, and no step jumps (each joint moves less than a tenth of the A-B angle a step,
    plus what the projection moves it)."""
    grid = manifold.grid(128)
    fine = ExactField(torch.from_numpy(manifold.poses(grid)))  # spacing finer than a step
    a, b = manifold.poses(grid[[5 * 128 + 7, 40 * 128 + 60]])  # two poses of the field's own set: distance 0
    path, distance = interpolate_poses(fine, a, b, step_size=0.1, tol=0.03, project_steps=40)
    np.testing.assert_allclose(path[0], a, atol=1e-6)
    np.testing.assert_allclose(path[-1], b, atol=1e-6)
    assert 5 < len(path) < 100 and (distance < 0.03 + 1e-6).all()
    span = float(np.max(quat_angle(a, b)))
    steps = np.max(quat_angle(path[:-1].astype(np.float64), path[1:].astype(np.float64)), axis=-1)
    assert steps.max() < 0.5 * span


def test_interpolation_says_when_it_jumps_to_b(
    field: ExactField, manifold: PoseManifold, caplog: pytest.LogCaptureFixture
) -> None:
    """B far off the manifold: projected steps stop nearing it, and the jump straight to B is said, not silent."""
    a = manifold.poses(manifold.grid(48)[[100]])[0]
    b = np.asarray(quat_canonical(rotvec_to_quat(np.full((21, 3), 1.2))))
    with caplog.at_level("WARNING", logger="amasskit"):
        path, _ = interpolate_poses(field, a, b, step_size=0.2, tol=0.05)
    np.testing.assert_allclose(path[-1], b, atol=1e-6)
    assert "the path jumps straight to B from pose" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="amasskit"):
        interpolate_poses(field, a, a, step_size=0.2, tol=0.05)  # B = A: nothing to say
    assert "jumps" not in caplog.text


def test_a_model_near_chance_says_so_when_loaded(
    tiny_model: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    payload = torch.load(tiny_model, weights_only=True)
    payload["metrics"] = {"mae": 0.3, "auroc": 0.53}
    torch.save(payload, tmp_path / "poor.pt")
    with caplog.at_level("WARNING", logger="amasskit"):
        load_prior(tmp_path / "poor.pt")
    assert "validation AUROC is 0.53 (chance: 0.50)" in caplog.text
    caplog.clear()
    payload["metrics"] = {"mae": 0.01, "auroc": 0.97}
    torch.save(payload, tmp_path / "good.pt")
    with caplog.at_level("WARNING", logger="amasskit"):
        load_prior(tmp_path / "good.pt")
    assert "AUROC" not in caplog.text
    caplog.clear()  # tells noisy from clean, but does not reach 0 on clean poses: denoising would pull off them
    payload["metrics"] = {"mae": 0.06, "auroc": 0.79, "clean_mean": 0.106}
    torch.save(payload, tmp_path / "offset.pt")
    with caplog.at_level("WARNING", logger="amasskit"):
        load_prior(tmp_path / "offset.pt")
    assert "mean distance on clean held-out poses is 0.106" in caplog.text and "--prior-weight" in caplog.text


def test_read_pose_from_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rotvec = rng.normal(0, 0.3, (21, 3))
    np.save(tmp_path / "pose.npy", rotvec)
    q = read_pose(str(tmp_path / "pose.npy"))
    np.testing.assert_allclose(np.asarray(quat_to_rotvec(q)), rotvec, atol=1e-9)
    np.save(tmp_path / "bad.npy", np.zeros((20, 3)))
    with pytest.raises(InvalidArgumentError, match=r"\(21, 3\)"):
        read_pose(str(tmp_path / "bad.npy"))


def test_read_pose_takes_what_users_give(
    smplh_tree: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A motion file without ``#frame`` is its first frame; ``~`` is expanded; every bad input is a typed error that
    names the file (an ``.npz`` that is not a motion file once ended in ``AttributeError``)."""
    from amasskit.errors import AmassKitError

    motion = max(Path(smplh_tree.root).rglob("*_poses.npz"), key=lambda p: p.stat().st_size)  # type: ignore[attr-defined]
    seq = read(motion)
    want = quat_canonical(rotvec_to_quat(np.asarray(seq.pose_body[0], dtype=np.float64).reshape(21, 3)))
    np.testing.assert_allclose(read_pose(motion), want, atol=1e-12)
    np.testing.assert_allclose(read_pose(f"{motion}#0"), want, atol=1e-12)
    monkeypatch.setenv("HOME", str(motion.parent))
    np.testing.assert_allclose(read_pose(f"~/{motion.name}#3"), read_pose(f"{motion}#3"), atol=0)
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    np.save(tmp_path / "joints.npy", np.zeros((5, 21, 3)))
    np.save(tmp_path / "nan.npy", np.full((21, 3), np.nan))
    (tmp_path / "broken.npy").write_bytes(b"not an array")
    for spec, match in [(tmp_path / "other.npz", "other.npz"), (tmp_path / "joints.npy", r"joints.npy: a pose of \(5, 21, 3\)"),
                        (tmp_path / "nan.npy", "nan.npy: .*not finite"), (tmp_path / "broken.npy", "broken.npy: not a readable"),
                        (f"{motion}#x", "must be a number"), (f"{motion}#{seq.num_frames}", "outside"),
                        (tmp_path / "missing.npz", "missing.npz"), (f"{tmp_path / 'joints.npy'}#2", "one pose")]:  # fmt: skip
        with pytest.raises(AmassKitError, match=match):
            read_pose(spec)  # type: ignore[arg-type]


def test_the_sample_and_interpolate_commands(tiny_model: Path, smplh_tree: object, tmp_path: Path) -> None:
    """`prior sample` and `prior interpolate` on a model trained by amasskit, between frames of a motion file."""
    motion = max(Path(smplh_tree.root).rglob("*_poses.npz"), key=lambda p: p.stat().st_size)  # type: ignore[attr-defined]
    run = run_cli("prior", "sample", str(tiny_model), "-n", "16", "-o", str(tmp_path / "s.npz"), "--max-steps", "20",
                  "--keep-steps")  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    with np.load(tmp_path / "s.npz") as s:
        assert s["quat"].shape == (16, 21, 4) and s["prior_distance"].shape == (16,)
        assert s["history_quat"].shape[1:] == (16, 21, 4) and (s["evaluations"] <= 20).all()
        written = set(s.files)
    from typer.testing import CliRunner

    from amasskit.cli import app

    helped = " ".join(CliRunner().invoke(app, ["prior", "sample", "--help"]).output.split())
    named = {"poses", "quat", "prior_distance", "converged", "steps", "evaluations", "history_quat"}
    assert all(name in helped for name in named) and named <= written  # --help says what is written
    run = run_cli("prior", "interpolate", str(tiny_model), f"{motion}#0", f"{motion}#40", "-o", str(tmp_path / "p.npz"),
                  "--steps", "30")  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert read(tmp_path / "s.npz").num_frames == 16  # a motion file: one frame a pose
    with np.load(tmp_path / "p.npz") as p:
        np.testing.assert_allclose(p["quat"][-1], read_pose(f"{motion}#40"), atol=1e-6)
        np.testing.assert_allclose(p["quat"][0], read_pose(f"{motion}#0"), atol=1e-6)
    bad = run_cli("prior", "sample", str(tmp_path / "s.npz"))
    assert bad.returncode != 0 and "CheckpointError" in bad.stderr
    with pytest.raises(CheckpointError):
        load_prior(tmp_path / "s.npz")
    with pytest.raises(InvalidArgumentError, match="outside"):
        read_pose(f"{motion}#100000")


def test_a_damaged_checkpoint_is_refused(tiny_model: Path, tmp_path: Path) -> None:
    """A byte flipped in the middle of a model's weights (it loaded without complaint, every result changed): the
    member's checksum fails and nothing is loaded; the intact file loads."""
    data = bytearray(tiny_model.read_bytes())
    import zipfile

    with zipfile.ZipFile(tiny_model) as archive:  # a byte inside the largest member's data (a weight tensor)
        info = max(archive.infolist(), key=lambda i: i.file_size)
        name_len, extra_len = (int.from_bytes(data[info.header_offset + k : info.header_offset + k + 2], "little")
                               for k in (26, 28))  # the local header's own lengths  # fmt: skip
        start = info.header_offset + 30 + name_len + extra_len
    data[start + info.file_size // 2] ^= 0x40
    (tmp_path / "damaged.pt").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="fails its checksum") as refused:
        load_prior(tmp_path / "damaged.pt")
    assert not isinstance(refused.value, NotAmasskitModelError)  # ours, damaged: no other reader is tried
    assert load_prior(tiny_model) is not None
    # a readable torch file of another kind is told apart by its type, and the released reader is tried after it
    import torch

    from amasskit.prior import load_model

    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(NotAmasskitModelError):
        load_model(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="neither an amasskit model nor a released checkpoint"):
        load_prior(tmp_path / "other.pt")


def test_non_finite_results_are_refused_never_written(tiny_model: Path, tmp_path: Path) -> None:
    """NaN in, NaN out was written with exit 0: now a NaN start, a result that is not finite, a checkpoint of NaN
    weights and an output that is a folder are typed errors, and no file is written."""
    from amasskit.prior import save_motion

    with pytest.raises(InvalidArgumentError, match="not finite"):
        sample_poses(load_prior(tiny_model), 2, start=np.full((2, 21, 4), np.nan))
    body = np.zeros((3, 21, 3))
    body[1, 4, 0] = np.inf
    with pytest.raises(
        InvalidArgumentError, match=r"poses holds values that are not finite.*made from walk\.npz"
    ):
        save_motion(tmp_path / "bad.npz", pose_body=body, made_from="walk.npz")
    assert not (tmp_path / "bad.npz").exists()
    with pytest.raises(InvalidArgumentError, match="a folder"):
        save_motion(tmp_path, pose_body=np.zeros((3, 21, 3)))
    payload = torch.load(tiny_model, weights_only=True)
    key = next(k for k, v in payload["model_state"].items() if v.is_floating_point())
    payload["model_state"][key] = torch.full_like(payload["model_state"][key], float("nan"))
    torch.save(payload, tmp_path / "nan.pt")
    with pytest.raises(CheckpointError, match="not finite"):
        load_prior(tmp_path / "nan.pt")
    motion = tmp_path / "in.npz"
    save_motion(motion, pose_body=np.random.default_rng(0).normal(0, 0.2, (4, 21, 3)))
    run = run_cli("prior", "denoise", str(tiny_model), str(motion), "-o", str(tmp_path / "d.npz"), "--rounds", "1",
                  "--steps", "3", "--lr", "1e30")  # fmt: skip
    assert (
        run.returncode == 1
        and "not finite" in " ".join(run.stderr.split())
        and f"made from {motion}" in "".join(run.stderr.split("\n"))
        and not (tmp_path / "d.npz").exists()
    )


def test_a_config_that_does_not_fit_its_weights_is_refused_before_allocating(
    tiny_model: Path, tmp_path: Path
) -> None:
    """Widths of 200,000 in a checkpoint's config once allocated 160 GB before any shape check: refused first."""
    import resource

    payload = torch.load(tiny_model, weights_only=True)
    payload["model_config"]["dims"] = [200_000, 200_000]
    torch.save(payload, tmp_path / "huge.pt")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(CheckpointError, match="they do not fit"):
        load_prior(tmp_path / "huge.pt")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 1_000_000  # KiB: under 1 GB more


def test_the_package_docstring_shows_the_way_in(tiny_model: Path) -> None:
    """The three lines ``amasskit.prior`` opens with run as written, and every public name of the package is named in
    its docstring or in the docstring of the part it lives in (poses, field, tasks; io for the files)."""
    import re

    import amasskit.io
    import amasskit.prior as prior
    from amasskit.prior import PoseIndex, load_prior, sample_poses

    lines = [line.strip() for line in (prior.__doc__ or "").split("::", 1)[1].splitlines() if line.strip()]
    assert lines[0].startswith("field = load_prior(") and lines[1].startswith("result = sample_poses(")
    field = load_prior(tiny_model)
    result = sample_poses(field, 16, max_steps=5)
    assert result.quat.shape == (16, 21, 4)
    clean, queries = result.quat[:10], result.quat[10:]
    distances, ids = PoseIndex(clean, metric="geodesic").search(queries, 5)
    assert distances.shape == ids.shape == (6, 5) and (ids >= 0).all()
    docs = " ".join(m.__doc__ or "" for m in (prior, prior.poses, prior.field, prior.tasks, amasskit.io))
    named = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", docs))
    missing = [name for name in prior.__all__ if name not in named]
    assert not missing, f"public names no docstring leads to: {missing}"


def test_the_old_names_of_the_projection_still_answer() -> None:
    """``project`` and ``Projection`` (before 0.2) are the manifold projection's new names' objects."""
    import amasskit.prior as prior

    assert prior.project is prior.project_to_manifold and prior.Projection is prior.ManifoldProjection
