"""Every option and input kind of the pose-prior and conversion commands, drawn by Hypothesis.

Each run must end in one of three ways, never a traceback:
- exit 0, every npz it wrote holding finite numbers;
- exit 1 with an ``ErrorType: message`` line (amasskit's typed error, naming the option or file);
- exit 2, click's usage error naming the option (a value of the wrong type or outside the option's range).
And nothing outside the run's output folder changes: the inputs (models, motions, keypoints, configs) keep their
bytes and times.

The values are the ones that found the crashes of issue 29 (wrong types, 0, negatives, NaN, 1e-300, 1e300, 1e9,
strings where numbers go, files of the wrong kind, a folder where a file goes) mixed with ordinary ones, so that
runs also get past the checks into the work. Examples are derandomised: the same draws every run (a failure is
reproducible); sizes are kept small, so a run that is accepted ends in seconds.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from amasskit.cli import app
from amasskit.prior import save_motion

FUZZ = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

INTS = st.sampled_from(["-3", "-1", "0", "1", "2", "x", "1.5", "99999999999999999999"])
SMALL = st.sampled_from(["1", "2", "3"])  # step counts accepted runs do in seconds
FLOATS = st.sampled_from(["nan", "inf", "-inf", "-1", "0", "1e-300", "1e300", "0.5", "0.01", "abc"])
DEVICES = st.sampled_from(["cpu", "cpu", "cuda", "cuda:7", "quantum", "", "meta"])
DASK = st.sampled_from(["nonsense", "tcp://", "tcp://host:notaport", ":", "tcp://[::1"])


@pytest.fixture(scope="module")
def inputs(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder of every input kind the commands take, good and bad (never written to by the runs)."""
    from tests.prior.test_model import OFFICIAL, official_state, write_official

    root = tmp_path_factory.mktemp("fuzz-inputs")
    shutil.copy(tiny_model, root / "model.pt")
    state = official_state(OFFICIAL, [16, 8], seed=3)
    write_official(
        root / "official", state, "model:\n  DFNet:\n    dims: 16, 8\n    act: lrelu\n    beta: 100\n"
    )
    for i, config in enumerate(["model:\n  DFNet: 5\n", "model:\n  DFNet:\n    dims: 16, 8\n    beta: abc\n",
                                "model: [1, 2]\n", "model:\n  DFNet:\n    dims: a, b\n", "[[[[\n",
                                "model:\n  DFNet:\n    dims: 16, 8\n  StrEnc: 3\n"]):  # fmt: skip
        write_official(root / f"official-bad{i}", state, config)
    rng = np.random.default_rng(0)
    save_motion(root / "motion.npz", pose_body=rng.normal(0, 0.2, (4, 21, 3)))
    np.savez(root / "humor.npz", root_orient=np.zeros((3, 3)), pose_body=rng.normal(0, 0.1, (3, 63)),
             trans=np.zeros((3, 3)), betas=np.zeros(16), fps=30.0)  # fmt: skip
    np.savez(root / "humor-empty.npz", root_orient=np.zeros((0, 3)), pose_body=np.zeros((0, 63)))
    np.savez(root / "humor-fps.npz", root_orient=np.zeros((3, 3)), pose_body=np.zeros((3, 63)), fps="abc")
    np.savez(root / "humor-nan.npz", root_orient=np.full((3, 3), np.nan), pose_body=np.zeros((3, 63)))
    np.save(root / "joints.npy", rng.normal(0, 0.3, (2, 22, 3)))
    np.save(root / "joints-nan.npy", np.full((1, 22, 3), np.nan))
    np.save(root / "strings.npy", np.array(["a", "b"]))
    np.save(root / "scalar.npy", np.array(3.0))
    np.save(root / "quat.npy", np.tile([0.0, 0.0, 0.0, 1.0], (2, 21, 1)))
    np.save(root / "pose-rotvec.npy", rng.normal(0, 0.2, (21, 3)))
    np.save(root / "quat-nan.npy", np.full((2, 21, 4), np.nan))
    (root / "kp.json").write_text(json.dumps({"people": [{"pose_keypoints_2d": [320.0, 240.0, 0.9] * 25}]}))
    (root / "kp-nobody.json").write_text(json.dumps({"people": []}))
    (root / "kp-short.json").write_text(json.dumps({"people": [{"pose_keypoints_2d": [1.0] * 74}]}))
    (root / "kp-deep.json").write_text("[" * 50_000 + "]" * 50_000)
    (root / "kp-text.json").write_text("not json")
    for name, shape in (("pl", (3, 22, 3)), ("pl-width", (3, 65)), ("pl-flat", (66,)), ("pl-empty", (0, 66)),
                        ("pl-scalar", ()), ("pl-hands", (2, 156))):  # fmt: skip
        np.savez(root / f"{name}.npz", poses=rng.normal(0, 0.1, shape) if shape else np.array(1.0))
    np.savez(root / "pl-nan.npz", poses=np.full((2, 66), np.nan))
    np.savez(root / "pl-ids.npz", poses=np.zeros((3, 66)), ids=np.arange(2))
    np.savez(root / "pl-strings.npz", poses=np.array([["a"] * 66]))
    (root / "empty.npz").write_bytes(b"")
    (root / "garbage.pt").write_bytes(b"PK\x03\x04 not a checkpoint")
    (root / "a-folder").mkdir()
    return root


def _state(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))
    }


@contextlib.contextmanager
def _run_in(tmp: Path) -> Iterator[Path]:
    """A fresh output folder, also the working directory (a default output lands there, not in the repository)."""
    out = tmp / uuid.uuid4().hex[:8]
    out.mkdir()
    with contextlib.chdir(out):
        yield out


_ERROR_LINE = re.compile(r"^\w*(Error|Exists|Exception)\w*: \S", re.MULTILINE)


def _check(args: list[str], inputs: Path, out: Path) -> int:
    """Run ``amasskit ARGS`` and assert the three allowed endings (see the module docstring); returns the exit."""
    before = _state(inputs)
    result = CliRunner().invoke(app, args)
    shown = " ".join(args)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"amasskit {shown}: {type(result.exception).__name__}: {result.exception}"
    )
    assert "Traceback" not in result.output + result.stderr, f"amasskit {shown}: a traceback\n{result.stderr}"
    if result.exit_code == 0:
        for path in out.rglob("*.npz"):
            with np.load(path, allow_pickle=False) as npz:
                for key in npz.files:
                    if np.issubdtype(npz[key].dtype, np.inexact):
                        assert np.isfinite(npz[key]).all(), (
                            f"amasskit {shown}: {path.name}:{key} is not finite"
                        )
    elif result.exit_code == 1:
        assert _ERROR_LINE.search(result.stderr), (
            f"amasskit {shown}: exit 1 without an error line\n{result.stderr}"
        )
    else:
        assert result.exit_code == 2 and "Usage:" in result.stderr, (
            f"amasskit {shown}: exit {result.exit_code}"
        )
    assert _state(inputs) == before, f"amasskit {shown} changed its inputs"
    return result.exit_code


def _maybe(option: str, values: st.SearchStrategy[str]) -> st.SearchStrategy[list[str]]:
    """``[option, value]`` or nothing (the option's default)."""
    return st.one_of(st.just([]), values.map(lambda v: [option, v]))


def _flags(*options: st.SearchStrategy[list[str]]) -> st.SearchStrategy[list[str]]:
    return st.tuples(*options).map(lambda parts: [a for part in parts for a in part])


MODELS = st.sampled_from(["model.pt", "model.pt", "official/checkpoints/checkpoint_epoch_best.tar",
                          *(f"official-bad{i}/checkpoints/checkpoint_epoch_best.tar" for i in range(6)),
                          "garbage.pt", "missing.pt", "a-folder", "motion.npz"])  # fmt: skip


@FUZZ
@given(
    model=MODELS,
    flags=_flags(
        _maybe("-n", st.sampled_from(["1", "3", "0", "-2", "1000000000", "x"])),
        _maybe(
            "--start",
            st.sampled_from(
                [
                    "haar",
                    "noisy-identity",
                    "quantum",
                    "quat.npy",
                    "quat-nan.npy",
                    "strings.npy",
                    "scalar.npy",
                    "joints.npy",
                    "missing.npy",
                ]
            ),
        ),
        _maybe("--tol", FLOATS),
        _maybe("--max-steps", SMALL),
        _maybe("--seed", INTS),
        _maybe("--device", DEVICES),
        _maybe("--keep-steps", st.just("")).map(lambda f: f[:1]),
    ),
)
def test_sample(inputs: Path, tmp_path: Path, model: str, flags: list[str]) -> None:
    with _run_in(tmp_path) as out:
        _check(["prior", "sample", str(inputs / model), "-o", str(out / "s.npz"),
                *[str(inputs / f) if f.endswith(".npy") else f for f in flags]], inputs, out)  # fmt: skip


POSES = st.sampled_from(["motion.npz", "motion.npz#2", "motion.npz#99", "motion.npz#x", "humor.npz", "quat.npy",
                         "pose-rotvec.npy", "quat-nan.npy", "strings.npy", "scalar.npy", "empty.npz", "a-folder",
                         "missing.npz"])  # fmt: skip


@FUZZ
@given(
    model=MODELS,
    a=POSES,
    b=POSES,
    flags=_flags(_maybe("--steps", SMALL), _maybe("--step-size", FLOATS), _maybe("--device", DEVICES)),
)
def test_interpolate(inputs: Path, tmp_path: Path, model: str, a: str, b: str, flags: list[str]) -> None:
    with _run_in(tmp_path) as out:
        _check(["prior", "interpolate", str(inputs / model), str(inputs / a), str(inputs / b), "-o",
                str(out / "p.npz"), *flags], inputs, out)  # fmt: skip


@FUZZ
@given(
    model=st.sampled_from(
        ["model.pt", "none", "garbage.pt", "official/checkpoints/checkpoint_epoch_best.tar"]
    ),
    motion=st.sampled_from(
        [
            "motion.npz",
            "humor.npz",
            "humor-empty.npz",
            "humor-fps.npz",
            "humor-nan.npz",
            "empty.npz",
            "joints.npy",
            "a-folder",
            "missing.npz",
        ]
    ),
    flags=_flags(
        _maybe("--rounds", SMALL),
        _maybe("--lr", FLOATS),
        _maybe("--prior-weight", FLOATS),
        _maybe("--warmup", INTS),
        _maybe("--device", DEVICES),
        _maybe("--frames", st.sampled_from(["0:2", "1:", "5:2", "9:", "a:b", ":", "-1:2"])),
    ),
)
def test_denoise(inputs: Path, tmp_path: Path, model: str, motion: str, flags: list[str]) -> None:
    with _run_in(tmp_path) as out:
        _check(["prior", "denoise", model if model == "none" else str(inputs / model), str(inputs / motion),
                "-o", str(out / "d.npz"), "--steps", "2", *flags], inputs, out)  # fmt: skip


@FUZZ
@given(
    model=st.sampled_from(
        ["model.pt", "none", "official/checkpoints/checkpoint_epoch_best.tar", "missing.pt"]
    ),
    observations=st.lists(
        st.sampled_from(
            [
                "joints.npy",
                "joints-nan.npy",
                "strings.npy",
                "scalar.npy",
                "kp.json",
                "kp-nobody.json",
                "kp-short.json",
                "kp-deep.json",
                "kp-text.json",
                "motion.npz",
                "missing.json",
            ]
        ),
        min_size=1,
        max_size=3,
    ),
    flags=_flags(
        _maybe(
            "--intrinsics",
            st.sampled_from(
                ["500,320,240", "1e-300,320,240", "1e300,1,1", "a,b", "0,0,0", "500,500,320,240", "1,2"]
            ),
        ),
        _maybe("--hide", st.sampled_from(["1,2", "99", "x", "-1", ""])),
        _maybe("--hypotheses", SMALL),
        _maybe(
            "--steps", st.sampled_from(["1", "4", "6", "0", "x"])
        ),  # under 4: fewer than the keypoint stages
        _maybe("--prior-weight", FLOATS),
        _maybe("--person", INTS),
        _maybe("--seed", INTS),
        _maybe("--gender", st.sampled_from(["male", "quantum", ""])),
        _maybe("--device", DEVICES),
        _maybe("--strict", st.just("")).map(lambda f: f[:1]),
    ),
)
def test_fit(inputs: Path, tmp_path: Path, model: str, observations: list[str], flags: list[str]) -> None:
    with _run_in(tmp_path) as out:
        _check(["prior", "fit", model if model == "none" else str(inputs / model),
                *(str(inputs / o) for o in observations), "-o", str(out / "f.npz"), "--steps", "2", *flags],
               inputs, out)  # fmt: skip


@pytest.fixture(scope="module")
def training_set(tiny_model: Path) -> Path:
    """The training set the tiny model was trained on (``tiny/data`` beside its run folder)."""
    return tiny_model.parent.parent / "data"


@FUZZ
@given(
    flags=_flags(
        _maybe("--dims", st.sampled_from(["16,8", "a,b", "0", "200000,200000", "8", ""])),
        _maybe("--seed", INTS),
        _maybe("--device", DEVICES),
        _maybe("--workers", INTS),
        _maybe("--activation", st.sampled_from(["softplus", "quantum"])),
        _maybe("--beta", FLOATS),
        _maybe("--lr", FLOATS),
        _maybe("--batch-size", st.sampled_from(["1", "16", "0", "x"])),
        _maybe("--lr-schedule", st.sampled_from(["cosine", "x"])),
        _maybe("--w-eikonal", FLOATS),
        _maybe("--parents", st.sampled_from(["official", "x"])),
        _maybe("--precision", st.sampled_from(["fp32", "fp64"])),
    ),
    config=st.one_of(
        st.none(),
        st.fixed_dictionaries(
            {},
            optional={
                "dims": st.sampled_from(["16,8", [16, 8], "a,b", [1.5], 5, None]),
                "seed": st.sampled_from([-1, 0, "x", 1.5, True]),
                "workers": st.sampled_from([-3, 0, "two"]),
                "device": st.sampled_from(["cpu", "quantum", 3]),
                "steps": st.sampled_from([1, 0, "x", [1]]),
                "unknown_key": st.just(1),
            },
        ),
    ),
)
def test_train(
    training_set: Path, inputs: Path, tmp_path: Path, flags: list[str], config: dict | None
) -> None:
    with _run_in(tmp_path) as out:
        args = ["prior", "train", "--data", str(training_set), "-o", str(out / "run"), "--steps", "2",
                "--val-every", "1000", "--log-every", "1", "--checkpoint-every", "2", *flags]  # fmt: skip
        if config is not None:
            (out / "config.json").write_text(json.dumps(config))
            args.insert(2, str(out / "config.json"))
        before = _state(training_set)
        _check(args, inputs, out)
        assert _state(training_set) == before


@FUZZ
@given(
    flags=_flags(
        _maybe("--samples-per-pose", st.sampled_from(["1", "2", "0", "1000000000", "x"])),
        _maybe("--noise", st.sampled_from(["nrdf", "posendf", "haar", "mixture", "quantum"])),
        _maybe("--sigma", FLOATS),
        _maybe("--k", st.sampled_from(["1", "3", "0", "100000"])),
        _maybe("--chunk", st.sampled_from(["1", "64", "0"])),
        _maybe("--max-poses", INTS),
        _maybe("--distance", st.sampled_from(["geodesic", "posendf", "x"])),
        _maybe("--device", DEVICES),
        _maybe("--dask", DASK),
    ),
)
def test_data(training_set: Path, inputs: Path, tmp_path: Path, flags: list[str]) -> None:
    clean = training_set.parent / "clean"
    with _run_in(tmp_path) as out:
        before = _state(clean)
        _check(
            ["prior", "data", str(clean), "-o", str(out / "data"), "--max-poses", "8", *flags], inputs, out
        )
        assert _state(clean) == before


@FUZZ
@given(
    source=st.sampled_from(
        [
            "pl",
            "pl-width",
            "pl-flat",
            "pl-empty",
            "pl-scalar",
            "pl-hands",
            "pl-nan",
            "pl-ids",
            "pl-strings",
            "empty",
            "motion",
        ]
    ),
    output=st.sampled_from(["out.npz", "a-folder", "", "deeper/out.npz"]),
    flags=_flags(
        _maybe("--to", st.sampled_from(["smplx", "smplh", "quantum"])),
        _maybe("--device", DEVICES),
        _maybe("--dask", DASK),
        _maybe("--jobs", INTS),
        _maybe("--wait", FLOATS),
    ),
)
def test_convert_pose_lists(
    inputs: Path, model_dir: Path, tmp_path: Path, source: str, output: str, flags: list[str]
) -> None:
    with _run_in(tmp_path) as out:
        (out / "a-folder").mkdir()
        target = ["-o", str(out / output)] if output else []
        _check(["convert", str(inputs / f"{source}.npz"), "--pose-list", "--model-dir", str(model_dir), *target,
                *flags], inputs, out)  # fmt: skip


def test_the_fuzzed_values_reach_the_work(inputs: Path, tmp_path: Path) -> None:
    """The ordinary values among the drawn ones run to the end (exit 0), so the fuzzing above also covers the
    commands' work, not only their checks."""
    with _run_in(tmp_path) as out:
        assert _check(["prior", "sample", str(inputs / "model.pt"), "-n", "3", "--max-steps", "2", "-o",
                       str(out / "s.npz")], inputs, out) == 0  # fmt: skip
        assert _check(["prior", "sample", str(inputs / "official/checkpoints/checkpoint_epoch_best.tar"), "-n", "2",
                       "--max-steps", "2", "-o", str(out / "o.npz")], inputs, out) == 0  # fmt: skip
        assert _check(["prior", "fit", "none", str(inputs / "kp.json"), "--intrinsics", "500,320,240", "-o",
                       str(out / "f.npz"), "--steps", "8"], inputs, out) == 0  # fmt: skip
