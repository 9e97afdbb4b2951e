"""Golden outputs of the prior commands: every file that `amasskit prior poses | data | train | sample | interpolate |
denoise | fit | evaluate` writes, on small fixed inputs, reduced to a digest of its content (each npz member's name,
dtype, shape and bytes; a checkpoint's tensors and config; JSON, CSV and text with what differs per run (paths, times,
timings) taken out). They pin the behaviour while the code behind the commands is reorganised (issue 32).

The bytes depend on the machine (the float kernels numpy and torch pick for the CPU): on the machine that recorded
them (``machine`` in the golden file) every digest must be equal; elsewhere the files, members, dtypes, shapes, keys
and texts are compared, and no number (the test then skips, saying so: even integer results, such as the steps a projection took,
follow the float roundings of the machine). Regenerate on purpose with
``AMASSKIT_REGENERATE_GOLDEN=1`` and say so in the changelog.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import platform
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from amasskit.cli import app
from amasskit.synth import SynthSummary

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "prior_commands.json"
REGENERATE = os.environ.get("AMASSKIT_REGENERATE_GOLDEN") == "1"
#: JSON keys whose values differ per run or per folder (never part of what a command computes)
VOLATILE = re.compile(
    r"(^|_)(path|paths|root|out|dir|file|files_at|created|created_at|started|finished|time|seconds|elapsed|wall|"
    r"host|hostname|pid|python|platform|version|versions|at|when|catalog|poses|data|clean|val_data|model|models|"
    r"source|sources_path|motion|resumed_from|device_name)$"
)
#: CSV columns that are timings
TIMING_COLUMNS = frozenset({"seconds", "elapsed", "time", "wall", "samples_per_s", "steps_per_s", "it_s"})


def machine() -> str:
    """What the float bytes depend on: the CPU, and the numpy and torch builds."""
    import torch

    cpu, flags = platform.processor() or platform.machine(), ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu == (platform.processor() or platform.machine()):
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:  # the instruction sets the kernels choose from
                flags = _sha(" ".join(sorted(line.split(":", 1)[1].split())).encode())[:8]
    except OSError:
        pass
    return f"{cpu} ({platform.machine()}, flags {flags}) | numpy {np.__version__} | torch {torch.__version__}"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _array_entry(array: np.ndarray) -> dict[str, Any]:
    if array.dtype.kind in "US" and array.ndim == 0:  # a JSON document (amasskit_meta) or a name
        text = array.item().decode() if isinstance(array.item(), bytes) else str(array.item())
        try:
            return {"dtype": str(array.dtype)[:2], "text": _scrub(json.loads(text))}
        except ValueError:
            return {"dtype": str(array.dtype), "text": text}
    return {"dtype": str(array.dtype), "shape": list(array.shape), "sha": _sha(np.ascontiguousarray(array).tobytes()),
            "float": bool(array.dtype.kind in "fc")}  # fmt: skip


def _scrub(value: Any) -> Any:
    """JSON content without what differs per run: volatile keys dropped, absolute paths and numbers of seconds
    kept out."""
    if isinstance(value, dict):
        return {_scrub(k): _scrub(v) for k, v in sorted(value.items()) if not VOLATILE.search(str(k))}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, str) and (value.startswith("/") or "/tmp" in value or "pytest-" in value):
        return "<path>"
    return value


def _digest_file(path: Path) -> dict[str, Any]:
    name = path.name
    if name.endswith(".npz") or name.endswith(".npy"):
        if name.endswith(".npy"):
            return {"npy": _array_entry(np.load(path, allow_pickle=False))}
        with np.load(path, allow_pickle=False) as npz:
            return {key: _array_entry(npz[key]) for key in npz.files}
    if name.endswith(".pt") or name.endswith(".tar"):
        import torch

        state = torch.load(path, map_location="cpu", weights_only=True)
        out: dict[str, Any] = {}

        def walk(prefix: str, value: Any) -> None:
            if isinstance(value, torch.Tensor):
                out[prefix] = _array_entry(value.detach().float().numpy() if value.dtype == torch.bfloat16
                                           else value.detach().numpy())  # fmt: skip
            elif isinstance(value, dict):
                for k in sorted(value):
                    walk(f"{prefix}/{k}", value[k])
            elif (
                isinstance(value, (list, tuple)) and value and all(isinstance(v, torch.Tensor) for v in value)
            ):
                for k, v in enumerate(value):
                    walk(f"{prefix}/{k}", v)
            else:
                out[prefix] = {"value": _scrub(json.loads(json.dumps(value, default=str)))}

        walk("", state)
        return out
    if name.endswith(".json"):
        return {"json": _scrub(json.loads(path.read_text()))}
    if name.endswith(".csv"):
        rows = list(csv.DictReader(io.StringIO(path.read_text())))
        return {"csv": [{k: v for k, v in row.items() if k not in TIMING_COLUMNS and not k.endswith("_per_s")}
                        for row in rows]}  # fmt: skip
    if name.startswith("events.out.tfevents."):  # TensorBoard's: wall times inside, host and time in the name
        return {"tensorboard": "present"}
    if name.endswith(".png"):
        return {"png": {"bytes": "present"}}
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            return {"zip": sorted(zf.namelist())}
    return {"bytes": {"sha": _sha(path.read_bytes()), "float": False}}


def digest_outputs(base: Path, names: dict[str, Path]) -> dict[str, Any]:
    """Every file under each named output (a file or a folder), by name and relative path."""
    out: dict[str, Any] = {}
    for label, target in names.items():
        files = [target] if target.is_file() else sorted(p for p in target.rglob("*") if p.is_file())
        for path in files:
            rel = label if path == target else f"{label}/{path.relative_to(target).as_posix()}"
            rel = re.sub(r"events\.out\.tfevents\..*$", "events.out.tfevents", rel)
            if any(part.endswith(".lock") or part.startswith(".") for part in Path(rel).parts):
                continue  # locks and staging: not outputs
            out[rel] = _digest_file(path)
    return out


def _invoke(*args: str) -> None:
    result = CliRunner().invoke(app, ["-q", *args])
    assert result.exit_code == 0, f"amasskit {' '.join(args)}\n{result.output}"


def run_prior_commands(work: Path, tree: Path, model_dir: Path) -> dict[str, Path]:
    """Each prior command once, on small fixed inputs; the outputs by name."""
    import torch

    from amasskit import read
    from amasskit.catalog import Catalog, scan
    from amasskit.prior import keypoints_from_joints, write_openpose
    from amasskit.viz._skeleton import skeleton_joints

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same reduction order in every run (the bytes depend on it)
    try:
        scan(tree, workers=1)
        with Catalog.open(tree) as cat:
            cat.assign_split("amass-paper-all")
        motion = sorted(tree.rglob("*_poses.npz"))[0]
        seq = read(motion)
        _invoke("prior", "poses", "--catalog", str(tree), "-o", str(work / "poses"), "--scheme", "amass-paper-all",
                "--split", "train", "--split", "test", "--seed", "3", "-j", "1")  # fmt: skip
        _invoke("prior", "data", str(work / "poses" / "train"), "-o", str(work / "data"), "--samples-per-pose", "2",
                "--k", "2", "--max-poses", "200", "--chunk", "64", "--seed", "1")  # fmt: skip
        _invoke("prior", "train", "--data", str(work / "data"), "-o", str(work / "run"), "--dims", "32,16",
                "--steps", "12", "--batch-size", "32", "--log-every", "4", "--checkpoint-every", "6",
                "--val-every", "6", "--val-samples", "64", "--precision", "fp32", "--workers", "0")  # fmt: skip
        model = str(work / "run" / "model.pt")
        _invoke("prior", "sample", model, "-n", "6", "-o", str(work / "sample.npz"), "--max-steps", "8",
                "--keep-steps", "--seed", "2")  # fmt: skip
        _invoke("prior", "interpolate", model, f"{motion}#0", f"{motion}#9", "-o", str(work / "interp.npz"),
                "--steps", "6")  # fmt: skip
        _invoke("prior", "denoise", model, str(motion), "-o", str(work / "denoised.npz"), "--model-dir",
                str(model_dir), "--rounds", "1", "--steps", "4", "--frames", "0:6")  # fmt: skip
        joints = skeleton_joints(seq.root_orient[:6], seq.pose_body[:6], seq.trans[:6])[:, :22].astype(
            np.float64
        )
        joints[:, 20] = np.nan  # a missing wrist
        np.save(work / "joints.npy", joints)
        camera = (1000.0, 1000.0, 500.0, 500.0)
        seen = skeleton_joints(np.array([[np.pi, 0, 0]]), seq.pose_body[:1], np.array([[0, 0, 3.0]]))[:, :22]
        write_openpose(work / "kp.json", keypoints_from_joints(seen, camera))
        _invoke("prior", "fit", model, str(work / "joints.npy"), "-o", str(work / "fit.npz"), "--model-dir",
                str(model_dir), "--steps", "6", "--hypotheses", "2", "--seed", "4")  # fmt: skip
        _invoke("prior", "fit", model, str(work / "kp.json"), "-o", str(work / "keypoints.npz"), "--intrinsics",
                ",".join(map(str, camera)), "--steps", "6", "--seed", "5")  # fmt: skip
        _invoke("prior", "evaluate", model, "none", "--motion", str(motion), "--samples", "6", "--completion", "2",
                "--noise", "10", "--pose-noise", "0.1", "--model-dir", str(model_dir), "--hypotheses", "1",
                "--fit-steps", "3", "--denoise-rounds", "1", "--denoise-steps", "2", "--max-steps", "4", "-o",
                str(work / "report.json"))  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    return {"poses": work / "poses", "data": work / "data", "run": work / "run", "sample": work / "sample.npz",
            "interpolate": work / "interp.npz", "denoise": work / "denoised.npz", "fit": work / "fit.npz",
            "keypoints": work / "keypoints.npz", "evaluate": work / "report.json"}  # fmt: skip


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _compare(got: Any, want: Any, *, exact: bool, where: str = "") -> None:
    if isinstance(want, dict) and "sha" in want and "float" in want:
        assert got.get("dtype") == want.get("dtype") and got.get("shape") == want.get("shape"), where
        if exact:  # elsewhere even integer results (steps taken, neighbours) may follow other float roundings
            assert got["sha"] == want["sha"], f"{where}: the content changed"
        return
    if isinstance(want, dict):
        assert isinstance(got, dict) and sorted(got) == sorted(want), (
            f"{where}: {sorted(got)} != {sorted(want)}"
        )
        for key in want:
            _compare(got[key], want[key], exact=exact, where=f"{where}/{key}")
        return
    if isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for k, (g, w) in enumerate(zip(got, want, strict=True)):
            _compare(g, w, exact=exact, where=f"{where}[{k}]")
        return
    if not exact and isinstance(want, float):
        assert isinstance(got, (int, float)), where
        return
    if not exact and isinstance(want, str) and _numeric(want):
        assert isinstance(got, str) and _numeric(got), where
        return
    assert got == want, f"{where}: {got!r} != {want!r}"


def test_the_prior_commands_write_their_golden_outputs(
    tmp_path: Path, smplh_tree: SynthSummary, model_dir: Path
) -> None:
    import shutil

    tree = tmp_path / "tree"
    shutil.copytree(smplh_tree.root, tree, ignore=shutil.ignore_patterns("archives"))
    outputs = run_prior_commands(tmp_path, tree, model_dir)
    got = digest_outputs(tmp_path, outputs)
    if REGENERATE:
        GOLDEN.write_text(json.dumps({"machine": machine(), "outputs": got}, indent=1, sort_keys=True) + "\n")
    want = json.loads(GOLDEN.read_text())
    exact = want["machine"] == machine()
    assert sorted(got) == sorted(want["outputs"]), "the commands write other files than before"
    for name in want["outputs"]:
        _compare(got[name], want["outputs"][name], exact=exact, where=name)
    if not exact:  # what was compared passed; say what was not
        pytest.skip(
            f"golden numbers were recorded on {want['machine']!r}, not this {machine()!r}: files, members, dtypes, "
            "shapes, keys and texts are equal; the numbers are pinned on that machine only"
        )
