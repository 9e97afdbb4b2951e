"""Every ``amasskit`` command the README shows runs as shown, on synthetic data.

Lines of the README's bash blocks are taken in order. A line with placeholders (``PATH``, ``OUT``, ``[--opt]``,
``a|b``, ``...``) is a synopsis: its command must exist and take every option it names. Any other line runs, with the
README's example paths mapped to synthetic ones (below), and must exit 0. ``view`` serves until stopped, so only its
options are checked. The prepare config is the README's YAML block with its paths mapped the same way.
"""

from __future__ import annotations

import glob
import re
import shlex
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from amasskit.cli import app
from amasskit.synth import SynthSummary

README = Path(__file__).resolve().parents[1] / "README.md"
PLACEHOLDER = re.compile(r"\[|\.\.\.|\||\b(PATH|OUT|STORE|DIR|FILE|N|S|SECONDS|URL)\b")

runner = CliRunner()


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.S)


def _lines() -> list[tuple[str, bool]]:
    """``(line, runnable)``: the lines of bash blocks, then the commands named in the prose (never run)."""
    out = []
    for block in _blocks("bash"):
        recipe = "amasskit-demo/" in block  # the measured recipe on the demo's data: minutes of training
        for raw in block.splitlines():
            line = re.sub(r"\s+#\s.*$", "", raw).strip()  # a comment, not the '#' of STORE#N
            if line.startswith("amasskit "):
                out.append((line, not PLACEHOLDER.search(line) and not recipe))  # a recipe's options: checked
    # commands named in the prose, such as `amasskit store export STORE --format hdf5|pt|npz -o OUT`
    out += [(span, False) for span in re.findall(r"`(amasskit [^`]+)`", README.read_text())]
    return out


def _options(command: list[str]) -> set[str]:
    # wide enough that no option name is cut short (rich reads the width from COLUMNS)
    result = runner.invoke(app, [*command, "--help"], terminal_width=200, env={"COLUMNS": "200"})
    assert result.exit_code == 0, f"`amasskit {' '.join(command)}` does not exist: {result.output}"
    return set(re.findall(r"(--[a-z][a-z-]*|-[a-zA-Z])\b", result.output))


def _command_of(words: list[str]) -> list[str]:
    """The command words (``catalog scan``, ``store stats``, ``render``) after global options."""
    words = [w for w in words if w not in ("-v", "-q")]
    if not words or not re.fullmatch(r"[a-z][a-z-]*", words[0]):  # `amasskit -v ...`: the global options
        return []
    groups = {"catalog", "store", "prior"}
    return words[:2] if words and words[0] in groups and len(words) > 1 else words[:1]


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, smplh_tree: SynthSummary, model_dir: Path
) -> dict[str, str]:
    """The synthetic stand-ins for the README's paths (the session's synthetic tree and models, read only)."""
    root = tmp_path_factory.mktemp("readme")
    summary, models = smplh_tree, model_dir
    motion = max(summary.root.rglob("*_poses.npz"), key=lambda p: p.stat().st_size)  # frame 100 exists
    return {
        "~/Downloads/amass/*.tar.bz2": " ".join(
            sorted(glob.glob(str(summary.root / "archives" / "*.tar.bz2")))
        ),
        "--verify": f"--verify --checksums {summary.root / 'archives' / 'checksums.json'}",  # synthetic archives
        "~/data/amass-splits": str(root / "splits"),
        "~/data/HumanML3D": str(root / "HumanML3D"),
        "~/data/amass": str(root / "amass"),
        "~/amass": str(root / "amass"),
        "~/models": str(models),
        "~/stores": str(root / "stores"),
        "CMU/01/01_01_poses.npz": str(motion),
        "prepare.yaml": str(root / "prepare.yaml"),
    }


def _mapped(line: str, world: dict[str, str]) -> list[str]:
    for example, real in world.items():  # longer keys first where one contains another (amass-splits, amass)
        line = line.replace(example, real)
    return shlex.split(line)[1:]


def test_every_readme_command_runs_as_shown(
    world: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (config,) = [b for b in _blocks("yaml") if b.startswith("catalog:")]
    mapped = yaml.safe_load(config)
    mapped.update(catalog=world["~/data/amass"], out=world["~/stores"], body_models=world["~/models"])
    Path(world["prepare.yaml"]).write_text(yaml.safe_dump(mapped))
    lines = _lines()
    assert len(lines) >= 20, "the README's commands were not found"
    ran, checked = [], []
    # the README renders joints.npy before it shows how to make it; make it first
    first = [item for item in lines if " joints " in item[0] and "-o joints.npy" in item[0]]
    for line, runnable in first + [item for item in lines if item not in first]:
        words = shlex.split(line)[1:]
        command = _command_of(words)
        if not runnable or command == ["view"]:
            options = _options(command)
            named = {w.split("=")[0] for w in re.findall(r"(?<![\w-])--?[a-zA-Z][\w-]*", line)}
            missing = sorted(n for n in named if n not in options and n not in ("-v", "-q", "--version"))
            assert not missing, f"{line}: `amasskit {' '.join(command)}` has no option {missing}"
            checked.append(line)
            continue
        args = _mapped(line, world)
        result = runner.invoke(app, args)
        assert result.exit_code == 0, f"{line}\n-> amasskit {' '.join(args)}\n{result.output}"
        ran.append(line)
    assert len(ran) >= 12 and len(checked) >= 5, (ran, checked)
    from amasskit.store import Store  # the README's labels are right for its own config

    sequences = Store(Path(world["~/stores"]) / "train").sequences
    assert [s["augmentation"].split(":")[0] for s in sequences[:4]] == ["none", "rotate", "rotate", "mirror"]
    assert len({s["source"] for s in sequences[:4]}) == 1
    assert (tmp_path / "walk.mp4").stat().st_size > 0 and (tmp_path / "frame.ply").stat().st_size > 0


@pytest.mark.parametrize(
    ("command", "config"),
    [
        (["prepare"], "PrepareConfig"),
        (["prior", "poses"], "PoseSetConfig"),
        (["prior", "train"], "TrainConfig"),
    ],
)
def test_every_config_key_is_a_flag_of_its_name(command: list[str], config: str) -> None:
    """The commands that read a config file take each of its keys as a flag of the same name (`splits: [..]` and
    `--splits`, `workers:` and `--workers`), so what the README's YAML says can be said on the command line."""
    import dataclasses

    import typer

    import amasskit.prepare
    import amasskit.prior

    cls = getattr(amasskit.prepare, config, None) or getattr(amasskit.prior, config)
    click_command = typer.main.get_command(app)
    for word in command:
        click_command = click_command.commands[word]  # type: ignore[attr-defined]
    flags = {name for param in click_command.params for name in param.opts + param.secondary_opts}
    missing = [f.name for f in dataclasses.fields(cls) if f"--{f.name.replace('_', '-')}" not in flags]
    assert not missing, f"`amasskit {' '.join(command)}` has no flag for the config keys {missing}"


def test_the_defaults_train_states_are_the_configs() -> None:
    """`prior train --help` states each default (its options default to the config file's value): each one stated
    is the config's own."""
    import dataclasses

    import typer

    from amasskit.prior import TrainConfig

    train = typer.main.get_command(app).commands["prior"].commands["train"]  # type: ignore[attr-defined]
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    stated = 0
    for param in train.params:
        found = re.search(r"\(default ([^)]+)\)$", getattr(param, "help", None) or "")
        if found is None:
            continue
        value = defaults[param.name]
        text = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
        assert found.group(1).replace("_", "") == text, (param.name, found.group(1), value)
        stated += 1
    assert stated >= 15


def test_every_command_that_can_be_busy_takes_the_wait_it_suggests() -> None:
    """A BusyError says "pass a wait time (--wait SECONDS)": each command that takes a lock has that option (prior
    data and prior train had none)."""
    import typer

    from amasskit._util import locking

    assert "--wait SECONDS" in Path(locking.__file__).read_text()
    root = typer.main.get_command(app)
    for path in (["prepare"], ["unpack"], ["prior", "data"], ["prior", "train"]):
        command = root
        for word in path:
            command = command.commands[word]  # type: ignore[attr-defined]
        assert "--wait" in {o for p in command.params for o in p.opts}, path
