"""Paths as users type them: ``~``, relative, ``./x``, ``../x``, another working directory, symlinks, spaces and
non-ASCII names, resolved once where they enter (the CLI and every public entry point), and compared resolved."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from amasskit import read
from amasskit._util.paths import config_path, user_path
from amasskit.catalog import Catalog, scan
from amasskit.cli import app
from amasskit.cli._app import PathCommand
from amasskit.data import ClipDataset
from amasskit.errors import InvalidArgumentError
from amasskit.prepare import PrepareConfig, load_config_file, prepare
from amasskit.prior import PoseSetConfig, TrainConfig, TrainingDataConfig
from amasskit.store import Store
from amasskit.synth import SynthSummary

runner = CliRunner()


def _reference(text: str) -> str:
    """What a path means, by the operating system's own functions (not amasskit's)."""
    return os.path.realpath(os.path.join(os.getcwd(), os.path.expanduser(text)))


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch home folder (``~``), with a symlinked folder, and the working directory in another folder."""
    home = tmp_path / "hôme dir"
    (home / "real" / "sub").mkdir(parents=True)
    (home / "link").symlink_to(home / "real", target_is_directory=True)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path / "elsewhere")
    return home


@pytest.mark.parametrize(
    "text",
    ["~/real/sub", "~/link/sub", "~/link/../real", "./x y", "../elsewhere/ñ", "relative/file.npz", "~"],
)
def test_user_path_means_what_the_operating_system_means(home: Path, text: str) -> None:
    got = user_path(text)
    assert got.is_absolute() and str(got) == _reference(text)
    assert user_path(Path(text)) == got == user_path(got)  # a str, a Path, an already resolved path: the same


def test_an_empty_path_is_an_error_not_the_working_directory() -> None:
    with pytest.raises(InvalidArgumentError, match="empty path"):
        user_path("")


def test_config_paths_are_relative_to_the_config_file(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMASSKIT_TEST_ROOT", str(home / "real"))
    assert config_path("sub", home / "link") == home / "real" / "sub"
    assert config_path("../real/sub", home / "real") == home / "real" / "sub"
    assert config_path("~/real", Path("/nowhere")) == home / "real"
    assert config_path("$AMASSKIT_TEST_ROOT/sub", Path("/nowhere")) == home / "real" / "sub"
    assert config_path("/abs/olute", home) == Path("/abs/olute").resolve()


def _commands(group: object, prefix: str = "") -> list[tuple[str, object]]:
    found = []
    for name, command in getattr(group, "commands", {}).items():
        if getattr(command, "commands", None):
            found += _commands(command, f"{prefix}{name} ")
        else:
            found.append((prefix + name, command))
    return found


def test_every_command_resolves_its_paths() -> None:
    """Every command of the CLI, sub-commands included, is a PathCommand: none can take a path as typed."""
    commands = _commands(typer.main.get_command(app))
    assert len(commands) > 20
    wrong = [name for name, command in commands if not isinstance(command, PathCommand)]
    assert not wrong, f"commands that do not resolve their paths: {wrong}"


def test_a_command_gets_tilde_and_relative_paths_resolved(home: Path, smplh_tree: SynthSummary) -> None:
    """`info` of a file named with ``~`` through a symlink, and relative from another directory: the same file."""
    motion = next(smplh_tree.root.rglob("*_poses.npz"))
    shutil.copy(motion, home / "real" / "sub" / "a walk_poses.npz")
    by_tilde = runner.invoke(app, ["info", "--json", "~/link/sub/a walk_poses.npz"])
    by_relative = runner.invoke(app, ["info", "--json", f"../{home.name}/real/sub/./a walk_poses.npz"])
    assert by_tilde.exit_code == 0, by_tilde.output
    assert by_tilde.stdout == by_relative.stdout
    assert json.loads(by_tilde.stdout)["path"] == str(home / "real" / "sub" / "a walk_poses.npz")  # resolved


@pytest.fixture(scope="module")
def prepared(smplh_tree: SynthSummary, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home folder with a catalogued tree (``amass``) and prepared stores (``stores``)."""
    home = tmp_path_factory.mktemp("home")
    shutil.copytree(smplh_tree.root, home / "amass", ignore=shutil.ignore_patterns("archives"))
    scan(home / "amass", workers=1)
    with Catalog.open(home / "amass") as cat:
        cat.assign_split("amass-paper-all")
    prepare(PrepareConfig(catalog=str(home / "amass"), out=str(home / "stores"), scheme="amass-paper-all",
                          splits=("vald",), fps=30.0, workers=1))  # fmt: skip
    return home


def test_library_entry_points_take_tilde_paths(prepared: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's Python examples use ``~/...``: each public entry point expands it."""
    monkeypatch.setenv("HOME", str(prepared))
    motion = next((prepared / "amass").rglob("*_poses.npz"))
    rel = motion.relative_to(prepared)
    assert np.array_equal(read(f"~/{rel}").pose_body, read(motion).pose_body)
    with Catalog.open("~/amass") as cat:
        assert cat.path == prepared / "amass" / "amasskit-catalog.sqlite"
    store = Store("~/stores/vald")
    assert store.path == prepared / "stores" / "vald" and len(store) > 0
    dataset = ClipDataset("~/stores/vald", 8)
    assert dataset.path == store.path and len(dataset) > 0


def test_configs_compare_by_resolved_paths(prepared: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same files named another way (relative, ``./``, ``~``, through ``..``) are the same config: a rerun from
    another directory is the same experiment."""
    monkeypatch.setenv("HOME", str(prepared))
    monkeypatch.chdir(prepared / "amass")
    absolute = PrepareConfig(catalog=str(prepared / "amass"), out=str(prepared / "stores"))
    assert PrepareConfig(catalog=".", out="../stores") == absolute
    assert PrepareConfig(catalog="~/amass", out="~/./stores") == absolute
    assert absolute.catalog == str(prepared / "amass")  # recorded resolved
    assert PoseSetConfig(catalog=".", out="./poses") == PoseSetConfig(
        catalog="~/amass", out=str(prepared / "amass" / "poses")
    )
    assert TrainingDataConfig(poses="p", out="d") == TrainingDataConfig(
        poses=str(prepared / "amass" / "p"), out="~/amass/d"
    )
    relative = TrainConfig(data="d", out="run", val_data="./v", clean="../c")
    assert relative.identity() == TrainConfig(data="~/amass/d", out="/elsewhere", val_data="~/amass/v",
                                              clean=str(prepared / "c")).identity()  # fmt: skip
    assert relative.data == str(prepared / "amass" / "d")


def test_a_config_file_resolves_its_paths_from_its_own_folder(
    prepared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Relative paths in a YAML config are taken from the file's folder (run it from anywhere); ``~`` too."""
    configs = prepared / "configs"
    configs.mkdir(exist_ok=True)
    (configs / "prepare.yaml").write_text(
        "catalog: ../amass\nout: ~/stores-from-yaml\nscheme: amass-paper-all\n"
    )
    monkeypatch.setenv("HOME", str(prepared))
    monkeypatch.chdir(tmp_path)
    data = load_config_file("~/configs/prepare.yaml")
    assert data["catalog"] == str(prepared / "amass") and data["out"] == str(prepared / "stores-from-yaml")
    config = PrepareConfig.from_file(configs / "prepare.yaml", splits=["vald"], fps=30.0, workers=1)
    assert config.catalog == str(prepared / "amass")
    result = runner.invoke(app, ["-q", "prepare", str(configs / "prepare.yaml"), "--split", "vald",
                                 "--fps", "30", "-j", "1"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (prepared / "stores-from-yaml" / "vald" / "manifest.json").is_file()
    assert not (tmp_path / "~").exists()  # never a literal '~' folder


def test_prepare_rerun_from_another_directory_keeps_its_stores(
    prepared: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same prepare typed relatively from two directories, then absolutely: one experiment, kept."""
    monkeypatch.setenv("HOME", str(prepared))
    monkeypatch.chdir(prepared)
    first = runner.invoke(app, ["-q", "prepare", "--catalog", "amass", "--out", "stores", "--scheme",
                                "amass-paper-all", "--split", "vald", "--fps", "30", "-j", "1"])  # fmt: skip
    assert first.exit_code == 0, first.output
    manifest = (prepared / "stores" / "vald" / "manifest.json").read_bytes()
    monkeypatch.chdir(prepared / "amass")
    again = runner.invoke(app, ["-q", "prepare", "--catalog", ".", "--out", "~/stores", "--scheme",
                                "amass-paper-all", "--split", "vald", "--fps", "30", "-j", "1"])  # fmt: skip
    assert again.exit_code == 0, again.output
    assert (prepared / "stores" / "vald" / "manifest.json").read_bytes() == manifest


def test_piped_output_is_wide_enough_to_keep_every_column(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables printed to a pipe or a file keep every column (rich's 80-column default cut them): $COLUMNS, else
    160; a terminal keeps its own width."""
    from amasskit.cli._app import _width

    class Stream:
        def __init__(self, tty: bool) -> None:
            self.tty = tty

        def isatty(self) -> bool:
            return self.tty

    monkeypatch.delenv("COLUMNS", raising=False)
    assert _width(Stream(False)) == 160 and _width(Stream(True)) is None
    monkeypatch.setenv("COLUMNS", "230")
    assert _width(Stream(False)) == 230


def test_messages_and_values_that_misled(tmp_path: Path) -> None:
    """`--scheme none` is what its help says (no scheme); manifold_batch 0 is refused; a pose list whose ids do not
    match its poses is refused; a keypoint list of the wrong shape says its shape, not "75 values, BODY_25 has 75"."""
    import json as json_

    from amasskit.convert import convert_pose_list
    from amasskit.errors import ConfigError, KeypointFileError
    from amasskit.prior import read_openpose

    assert PrepareConfig(catalog="c", out="o", scheme="none").scheme is None
    assert PoseSetConfig(catalog="c", out="o", scheme="None").scheme is None
    with pytest.raises(ConfigError, match="manifold_batch"):
        TrainConfig(data="d", out="o", manifold_batch=0)
    np.savez(tmp_path / "list.npz", poses=np.zeros((3, 22, 3)), ids=np.arange(2))
    with pytest.raises(InvalidArgumentError, match=r"'ids' of shape \(2,\) for 3 poses"):
        convert_pose_list(tmp_path / "list.npz", tmp_path / "out.npz")
    (tmp_path / "kp.json").write_text(
        json_.dumps({"people": [{"pose_keypoints_2d": [[0.0, 0.0, 1.0]] * 25}]})
    )
    with pytest.raises(KeypointFileError, match=r"of shape \(25, 3\); BODY_25's is a flat list of 75"):
        read_openpose(tmp_path / "kp.json")
