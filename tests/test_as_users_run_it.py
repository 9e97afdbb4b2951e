"""The README's workflows as a user runs them: the installed ``amasskit`` console script in a subprocess, from a
working directory of its own, with relative and ``~`` paths, each command run twice where a rerun must resume or keep.

These are the suite's only tests that start the console script (the rest call the library or Typer's runner): they
catch what only a real run shows, such as a relative default path that the library's tests, given absolute temporary
paths, never meet. ``HOME`` points at a scratch folder, so the README's ``~/...`` paths are used as written.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from amasskit import read

CONSOLE_SCRIPT = Path(sys.executable).parent / "amasskit"

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A user's home folder; the commands run in ``~/work`` unless a test says otherwise."""
    if not CONSOLE_SCRIPT.is_file():
        pytest.fail(
            f"the console script is not installed at {CONSOLE_SCRIPT}: install amasskit (./scripts/test)"
        )
    home = tmp_path_factory.mktemp("user") / "home of a user"
    (home / "work").mkdir(parents=True)
    return home


@pytest.fixture(scope="module")
def amasskit(home: Path) -> Run:
    """``amasskit(*args, cwd=..., ok=True)``: the console script as a user types it; by default it must succeed
    with no traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMASSKIT_BODY_MODELS")}
    env.update(HOME=str(home), COLUMNS="200", OMP_NUM_THREADS="1")

    def run(*args: str, cwd: Path | None = None, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([str(CONSOLE_SCRIPT), *args], cwd=cwd or home / "work", env=env, text=True,
                              capture_output=True, timeout=600)  # fmt: skip
        assert "Traceback" not in done.stderr, done.stderr[-4000:]
        if ok:
            assert done.returncode == 0, (
                f"amasskit {' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
        return done

    return run


@pytest.fixture(scope="module")
def ingested(home: Path, amasskit: Run) -> Path:
    """From archives to a catalog, split and prepared stores, as the README writes it (on synthetic archives)."""
    work = home / "work"
    amasskit("synth", "synthetic", "--files", "8", "--lengths", "short", "--archives", "--seed", "4")
    archives = sorted(str(p.relative_to(work)) for p in (work / "synthetic" / "archives").glob("*.tar.bz2"))
    checksums = "synthetic/archives/checksums.json"
    amasskit("unpack", *archives, "--to", "~/data/amass", "--verify", "--checksums", checksums)
    again = amasskit("unpack", *archives, "--to", "~/data/amass", "--verify", "--checksums", checksums)
    assert again.stdout.count("skipped") == len(archives)  # a rerun skips what is done
    amasskit("catalog", "scan", "~/data/amass")
    amasskit("catalog", "scan", "../data/amass")  # the same catalog, named relatively: nothing to read again
    stats = amasskit("catalog", "stats", "~/data/amass")
    assert "CMU" in stats.stdout or "KIT" in stats.stdout
    amasskit("split", "amass-paper-all", "--db", "~/data/amass")
    amasskit(
        "split", "amass-paper-all", "--db", "~/data/amass", "--link", "~/data/amass-splits", "--overwrite"
    )
    (work / "configs").mkdir()
    (work / "configs" / "prepare.yaml").write_text(
        "catalog: ~/data/amass\nout: ../stores     # relative to this file\nscheme: amass-paper-all\nfps: 30\n"
        "trim_keep: 0.8\nmirror: true\nseed: 0\n"
    )
    amasskit("prepare", "configs/prepare.yaml", "-j", "1")
    return home


def test_ingest_unpack_catalog_split_prepare_load(ingested: Path, amasskit: Run) -> None:
    """The stores land where the config file says (beside it, not in the working directory); the same config run
    from another directory keeps them; a batch loads from ``~/...`` through the README's Python lines."""
    home = ingested
    stores = home / "work" / "stores"
    manifest = (stores / "train" / "manifest.json").read_bytes()
    assert not (home / "work" / "configs" / "stores").exists() and not (home / "work" / "~").exists()
    assert any((home / "data" / "amass-splits" / "train").rglob("*.npz"))
    rerun = amasskit("prepare", "work/configs/prepare.yaml", "-j", "1", cwd=home)
    assert (stores / "train" / "manifest.json").read_bytes() == manifest, rerun.stdout
    amasskit("prepare", "--catalog", "data/amass", "--out", str(stores), "--scheme", "amass-paper-all", "--fps", "30",
             "--trim-keep", "0.8", "--mirror", "--seed", "0", "-j", "1", cwd=home)  # fmt: skip
    assert (
        stores / "train" / "manifest.json"
    ).read_bytes() == manifest  # flags, absolute out: the same experiment
    amasskit("store", "stats", "stores/train")
    loaded = subprocess.run(
        [sys.executable, "-c", "from amasskit.data import ClipDataset, Loader\n"
         "batch = next(iter(Loader(ClipDataset('~/work/stores/train', 8, stride=4), batch_size=4)))\n"
         "print(tuple(batch['pose_body'].shape))"],
        cwd=home, env=dict(os.environ, HOME=str(home)), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert loaded.stdout.strip() == "(4, 8, 21, 3)"


def test_conversion(ingested: Path, amasskit: Run, model_dir: Path) -> None:
    """`convert` with a model folder named by ``~`` (a symlink to the session's synthetic models, which `synth-models`
    writes: the command itself is tested in tests/test_cli.py) and a relative output, twice (the rerun keeps the file
    and the report); `--pose-list` without `-o`."""
    home = ingested
    (home / "models").symlink_to(model_dir, target_is_directory=True)
    source = min((home / "data" / "amass").rglob("*_poses.npz"), key=lambda p: p.stat().st_size)
    short = home / "work" / "short" / "walk_poses.npz"
    short.parent.mkdir()
    read(source)[:6].save(short)
    first = amasskit("convert", "short", "--to", "smplx", "--model-dir", "~/models", "-o", "converted",
                     "--schedule", "fast", "-j", "1")  # fmt: skip
    assert "1 written" in " ".join(first.stdout.split())
    out = home / "work" / "converted" / "walk_stageii.npz"
    converted = read(out)
    assert converted.model.value == "smplx" and converted.num_frames == 6
    again = amasskit("convert", "./short", "--to", "smplx", "--model-dir", "~/models", "-o", "../work/converted",
                     "--schedule", "fast", "-j", "1")  # fmt: skip  # the same settings: kept
    assert "0 written, 1 already done" in " ".join(again.stdout.split())
    report = json.loads((home / "work" / "converted" / "convert_report.json").read_text())
    assert list(report["files"]) == [str(out)]
    np.savez(home / "work" / "poses.npz", poses=np.zeros((2, 22, 3)))
    amasskit("convert", "poses.npz", "--pose-list", "--model-dir", "~/models")
    with np.load(home / "work" / "poses_smplx.npz") as npz:
        assert npz["poses"].shape == (2, 55, 3)


def test_pose_prior(ingested: Path, amasskit: Run) -> None:
    """Pose sets, training data and a tiny model, then every use of it, as the README's pose-prior sections run
    them: relative and ``~`` paths, the training config's paths relative to the file, reruns from elsewhere."""
    home = ingested
    work = home / "work"
    amasskit("prior", "poses", "--catalog", "~/data/amass", "-o", "poses", "-j", "1")
    again = ["prior", "poses", "--catalog", "../../data/amass", "-o", str(work / "poses"), "-j", "1"]
    amasskit(*again, cwd=work / "stores")  # the same experiment: kept
    amasskit(
        "prior", "data", "poses", "-o", "train-data", "--samples-per-pose", "4", "--k", "1"
    )  # the folder
    (work / "configs" / "train.yaml").write_text(
        "data: ../train-data\nout: ../run\ndims: [32, 16]\nsteps: 40\nbatch_size: 32\nlog_every: 20\n"
        "checkpoint_every: 20\n"
    )
    amasskit("prior", "train", "configs/train.yaml")
    model = (work / "run" / "model.pt").read_bytes()
    amasskit("prior", "train", "work/configs/train.yaml", "-o", "work/run", cwd=home)  # kept, not refused
    assert (work / "run" / "model.pt").read_bytes() == model
    files = sorted((home / "data" / "amass").rglob("*_poses.npz"))
    a, b = (str(p.relative_to(home)) for p in files[:2])
    amasskit("prior", "sample", "run/model.pt", "-n", "4", "-o", "samples.npz", "--max-steps", "5")
    assert read(work / "samples.npz").num_frames == 4
    amasskit(
        "prior", "interpolate", "~/work/run/model.pt", f"~/{a}", f"~/{b}#3", "-o", "path.npz", "--steps", "5"
    )
    with np.load(work / "path.npz") as path:
        assert path["quat"].shape[1:] == (21, 4) and len(path["quat"]) >= 2
    amasskit("prior", "denoise", "run/model.pt", f"../{a}", "-o", "clean.npz", "--rounds", "1", "--steps", "3",
             "--frames", "0:20")  # fmt: skip
    assert read(work / "clean.npz").num_frames == 20
    from amasskit.prior import keypoints_from_joints, write_openpose
    from amasskit.viz import skeleton_joints

    seq = read(home / a)[:3]
    np.save(work / "joints.npy", skeleton_joints(seq.root_orient, seq.pose_body, seq.trans)[:, :22])
    amasskit(
        "prior", "fit", "run/model.pt", "joints.npy", "-o", "fit3d.npz", "--hypotheses", "2", "--steps", "60"
    )
    assert read(work / "fit3d.npz").num_frames == 3 * 2
    facing = np.array([[np.pi, 0.0, 0.0]])  # the body turned to face a camera 3 m away along +Z
    in_camera = skeleton_joints(facing, seq.pose_body[:1], np.array([[0.0, 0.0, 3.0]]))[:, :22]
    write_openpose(
        work / "frame_000_keypoints.json", keypoints_from_joints(in_camera, (1000.0, 1000.0, 512.0, 384.0))
    )
    amasskit("prior", "fit", "run/model.pt", "frame_000_keypoints.json", "-o", "fit2d.npz", "--intrinsics",
             "1000,1000,512,384", "--hypotheses", "1", "--steps", "40")  # fmt: skip
    assert (work / "fit2d.npz").is_file()
    evaluated = amasskit("prior", "evaluate", "run/model.pt", "none", "--motion", f"~/{a}", "--motion", f"../{b}",
             "--samples", "8", "--completion", "1", "--noise", "40", "--pose-noise", "", "--hypotheses", "2",
             "--fit-steps", "20", "--denoise-rounds", "1", "--denoise-steps", "5", "--warmup", "5", "--max-steps", "10",
             "-o", "report.json")  # fmt: skip
    report = json.loads((work / "report.json").read_text())
    assert set(report["reports"]) == {str(work / "run" / "model.pt"), "none"}
    if (
        report["inputs"]["clips"] == 0
    ):  # short synthetic files: the task left out is said, not silently dropped
        assert "not run" in evaluated.stdout and report["reports"]["none"]["skipped"]["denoising"]
    assert shutil.which("amasskit", path=str(CONSOLE_SCRIPT.parent))  # the script these tests ran
