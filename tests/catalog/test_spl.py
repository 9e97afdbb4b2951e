"""The SPL split: the package's three lists matched to catalogued files by today's naming, never by guessing.

Today's paths are built here from the rules of ``data/spl/SOURCES.md`` (decode ``_SB_`` / ``_SB2_``, drop
``_dynamics`` / ``.pkl``, today's sub-dataset folder in either spelling, the subject folder split off the joined name,
the release's suffix), independently of the matcher, which joins and normalises; and a few are written by hand from
the examples there.
"""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from amasskit.catalog import (
    SPL_DATASETS_SCHEME,
    SPL_LISTS,
    Catalog,
    canonical_dataset,
    scan,
    spl_datasets_scheme,
    spl_lists,
    spl_scheme,
)
from amasskit.cli import app
from amasskit.io import read
from amasskit.synth import SynthSummary

SOURCES = Path(__file__).resolve().parents[3] / "shared" / "data" / "spl"
#: the lists' collections -> today's folders (both spellings where there are two), from SOURCES.md's table
TODAY = {"ACCAD": ["ACCAD"], "BioMotion": ["BioMotionLab_NTroje", "BMLrub"], "CMU": ["CMU"],
         "Eyes": ["Eyes_Japan_Dataset"], "HDM05": ["MPI_HDM05"], "HEva": ["HumanEva"], "JointLimit": ["MPI_Limits"],
         "SSM": ["SSM_synced"], "Transition": ["Transitions_mocap"]}  # fmt: skip
SUBJECT_LENGTH = {
    "CMU": 2,
    "BioMotion": 6,
}  # CMU/01_01_06 -> 01/01_06; BioMotion/rub0010000_... -> rub001/0000_...


def todays_path(name: str, k: int, release: str = "smplh") -> str | None:
    """The file a list name stands for in today's release, by the documented rules (None: not part of AMASS)."""
    collection, rest = name.split("/", 1)
    if collection not in TODAY:
        return None
    stem = rest.removesuffix(".pkl").removesuffix("_dynamics").replace("_SB2_", "-").replace("_SB_", " ")
    cut = SUBJECT_LENGTH.get(collection, max(1, stem.find("_")))  # where today's subject folder ends
    subject, file = stem[:cut], stem[cut:].lstrip("_")
    folders = TODAY[collection]
    suffix = "_poses.npz" if release == "smplh" else "_stageii.npz"
    return f"{folders[k % len(folders)]}/{subject}/{file}{suffix}"


def test_the_shipped_lists_are_the_published_ones() -> None:
    """The package's lists are the three files of the SPL repository, unchanged (7,865 / 343 / 385 names)."""
    lists = spl_lists()
    assert {k: len(v) for k, v in lists.items()} == {"training": 7865, "validation": 343, "test": 385}
    if SOURCES.is_dir():
        for name, names in lists.items():
            assert names == (SOURCES / f"{name}_fnames.txt").read_text().split()


@pytest.mark.parametrize("release", ["smplh", "smplx"])
def test_every_list_name_lands_on_its_file_and_in_its_split(release: str) -> None:
    """A catalog holding today's file of every list name: each AMASS name matches exactly its file, in its list's
    split; the SSM pairs (``X.pkl`` and ``X_dynamics.pkl``) land on one file (the one pair split between training and
    validation is a conflict, left out); MIXAMO and CMU_Kitchen are reported as not part of AMASS; nothing is left
    unmatched."""
    lists = spl_lists()
    claimed: dict[str, set[str]] = {}
    for k, (list_name, names) in enumerate(lists.items()):
        for i, name in enumerate(names):
            path = todays_path(name, k + i, release)
            if path is not None:
                claimed.setdefault(path, set()).add(SPL_LISTS[list_name])
    # the lists themselves give one SSM take to two splits (training's X.pkl, validation's X_dynamics.pkl)
    both = sorted(p for p, splits in claimed.items() if len(splits) > 1)
    assert both == [todays_path("SSM/20160330_03333walking.pkl", 0, release)]
    want = {p: next(iter(splits)) for p, splits in claimed.items() if len(splits) == 1}
    scheme, report = spl_scheme(sorted(claimed) + [f"KIT/3/walk_{i}_poses.npz" for i in range(3)])
    got = scheme.assign((p, p.split("/")[0], None) for p in sorted(claimed)).splits
    assert got == want
    assert not report.not_found and not report.ambiguous and list(report.conflicts) == both
    not_amass = sum(n.startswith(("MIXAMO/", "CMU_Kitchen/")) for names in lists.values() for n in names)
    assert len(report.not_amass) == not_amass == 105
    assert sum(report.assigned.values()) == len(want)
    ssm = [n for n in lists["training"] if n.startswith("SSM/")]
    takes = {n.removesuffix("_dynamics.pkl").removesuffix(".pkl") for n in ssm}
    assert report.counts["training"]["SSM"]["matched"] == len(ssm) > len(takes)
    assert (
        sum(p.startswith("SSM_synced/") and v == "train" for p, v in want.items()) == len(takes) - 1
    )  # - walking


def test_the_documented_examples_by_hand() -> None:
    """The examples of SOURCES.md, in both spellings of BMLrub and both releases."""
    lists = {"training": ["ACCAD/Female1Running_c3dC4_SB__SB2__SB_Run_SB_to_SB_walk1_dynamics.pkl",
                          "BioMotion/rub0010000_treadmill_norm_dynamics.pkl", "CMU/01_01_06.pkl",
                          "SSM/20160330_03333ATU_001.pkl", "SSM/20160330_03333ATU_001_dynamics.pkl"],
             "validation": ["Eyes/aitaaccident_SB2_09_SB2_damage_SB_leftfoot_SB2_aita_dynamics.pkl"],
             "test": ["HEva/S1_Gestures_1.pkl"]}  # fmt: skip
    files = {"ACCAD/Female1Running_c3d/C4 - Run to walk1_poses.npz": "train",
             "BMLrub/rub001/0000_treadmill_norm_stageii.npz": "train", "CMU/01/01_06_poses.npz": "train",
             "SSM_synced/20160330_03333/ATU_001_poses.npz": "train",
             "Eyes_Japan_Dataset/aita/accident-09-damage leftfoot-aita_poses.npz": "vald",
             "HumanEva/S1/Gestures_1_poses.npz": "test"}  # fmt: skip
    scheme, report = spl_scheme([*files, "CMU/01/01_07_poses.npz"], lists=lists)
    assert scheme.assign((p, p.split("/")[0], None) for p in files).splits == files
    assert report.assigned == {"train": 4, "vald": 1, "test": 1} and not report.not_found


def test_missing_ambiguous_and_conflicting_names_are_reported_not_assigned() -> None:
    lists = {"training": ["CMU/01_01_06.pkl", "CMU/02_02_01.pkl", "ACCAD/s1walk.pkl"],
             "test": ["ACCAD/s1walk_dynamics.pkl", "CMU/09_09_09.pkl"]}  # fmt: skip
    paths = ["CMU/01/01_06_poses.npz", "CMU/010/1_06_poses.npz",  # one key, two files: ambiguous
             "ACCAD/s1/walk_poses.npz"]  # claimed by train and by test: a conflict  # fmt: skip
    scheme, report = spl_scheme(paths, lists=lists)
    assert scheme.assign((p, p.split("/")[0], None) for p in paths).splits == {}
    assert [n for _, n, _ in report.ambiguous] == ["CMU/01_01_06.pkl"]
    assert report.ambiguous[0][2] == ["CMU/01/01_06_poses.npz", "CMU/010/1_06_poses.npz"]
    assert report.not_found == [("training", "CMU/02_02_01.pkl"), ("test", "CMU/09_09_09.pkl")]
    assert list(report.conflicts) == ["ACCAD/s1/walk_poses.npz"]
    assert report.counts["training"]["CMU"] == {"names": 2, "matched": 0, "not_found": 1, "ambiguous": 1,
                                                "not_amass": 0}  # fmt: skip


#: a small tree of today's names: the SPL split each file gets (test_fnames.txt has the first two; "" none)
TREE = {"CMU/01/01_06_poses.npz": "test", "BMLrub/rub001/0000_treadmill_norm_poses.npz": "test",
        "HumanEva/S1/Box_1_poses.npz": "train", "Transitions_mocap/mazen_c3d/GUS_kick_poses.npz": "train",
        "MPI_HDM05/bd/HDM_bd_01-01_02_120_poses.npz": "train", "SSM_synced/resynced/20160330_03333/punch_kick_sync_poses.npz": "",
        "KIT/3/walking_poses.npz": ""}  # fmt: skip


@pytest.fixture(scope="module")
def spl_tree(tmp_path_factory: pytest.TempPathFactory, smplh_tree: SynthSummary) -> Path:
    """:data:`TREE` written with one small synthetic motion and scanned (the catalog is in the folder)."""
    root = tmp_path_factory.mktemp("spl") / "amass"
    motion = read(min(smplh_tree.root.rglob("*_poses.npz"), key=lambda p: p.stat().st_size))
    for rel in TREE:
        motion.save(root / rel)
    scan(root, workers=1)
    return root


def test_the_split_command_on_a_catalog(tmp_path: Path, spl_tree: Path) -> None:
    """`amasskit split spl --db DIR --unmatched FILE` on a scanned tree of today's names: the files in their splits,
    recorded in the catalog (with the report), the rest unallocated; the names not matched listed with why."""
    root, tree = spl_tree, TREE
    out = tmp_path / "unmatched.txt"
    result = CliRunner().invoke(app, ["split", "spl", "--db", str(root), "--unmatched", str(out)])
    assert result.exit_code == 0, result.output
    assert "SPL lists matched" in result.output and "MIXAMO" in result.output
    assert "overlap" not in result.output
    with Catalog.open(root) as cat:
        assert cat.split_counts("spl") == {"test": 2, "train": 3}
        for split in ("train", "test"):
            assert {r.path for r in cat.records(split=split, scheme="spl")} == {
                p for p, s in tree.items() if s == split
            }
    lines = [line.split("\t") for line in out.read_text().splitlines()]
    _, report = spl_scheme(list(tree))
    matched = sum(row["matched"] for rows in report.counts.values() for row in rows.values())
    assert matched >= 5 and len(lines) == 7865 + 343 + 385 - matched
    assert {why for _, _, why in lines} == {"not found", "not part of AMASS"}
    assert ["training", "CMU/01_01_06.pkl", "not found"] not in lines
    assert sum(why == "not part of AMASS" for _, _, why in lines) == 105
    other = tmp_path / "other"  # a tree of no SPL file: said, not an empty table alone
    read(root / "KIT/3/walking_poses.npz").save(other / "KIT" / "3" / "walking_poses.npz")
    scan(other, workers=1)
    nothing = CliRunner().invoke(app, ["split", "spl", "--db", str(other)])
    assert nothing.exit_code == 0 and "no catalogued file matched an SPL list name" in nothing.stderr
    refused = CliRunner().invoke(app, ["split", "amass-paper", "--db", str(root), "--unmatched", str(out)])
    assert refused.exit_code == 2
    # the recorded split feeds prepare: one store per split, the split's files in it
    from amasskit.prepare import PrepareConfig, prepare
    from amasskit.store import Store

    done = prepare(PrepareConfig(catalog=str(root), out=str(tmp_path / "stores"), scheme="spl", workers=1))
    for split in ("train", "test"):
        sources = {s["source"] for s in Store(done.stores[split]).sequences}
        assert sources == {p for p, s in tree.items() if s == split}  # relative to the catalog root


#: the sub-datasets each shipped list names, read off the lists by hand (``cut -d/ -f1 | sort -u``), mapped to
#: today's names by SOURCES.md's table; MIXAMO and CMU_Kitchen are not AMASS
NINE = {"ACCAD", "BioMotionLab_NTroje", "CMU", "Eyes_Japan_Dataset", "MPI_HDM05", "HumanEva", "MPI_Limits",
        "SSM_synced", "Transitions_mocap"}  # fmt: skip
LLAMASS = {"train": NINE, "vald": NINE - {"HumanEva"}, "test": NINE - {"SSM_synced"}}


def test_the_llamass_form_assigns_whole_sub_datasets_with_its_overlaps(
    tmp_path: Path, spl_tree: Path
) -> None:
    """`amasskit split spl-datasets`: every file of a sub-dataset a list names is in that list's split, so a file is
    in each split whose list names its sub-dataset (CMU: all three; HumanEva: train and test); the overlaps are
    recorded, said, and followed by records, counts, --link and prepare (the same file in several stores)."""
    scheme = spl_datasets_scheme()
    assert scheme.name == SPL_DATASETS_SCHEME and scheme.overlap
    assert {split: set(rule["datasets"]) for split, rule in scheme.definition["splits"].items()} == LLAMASS
    expected = {rel: {split for split, names in LLAMASS.items() if canonical_dataset(rel.split("/")[0]) in names}
                for rel in TREE}  # fmt: skip
    assert (
        expected["CMU/01/01_06_poses.npz"] == {"train", "vald", "test"}
        and not expected["KIT/3/walking_poses.npz"]
    )
    result = CliRunner().invoke(
        app, ["split", "spl-datasets", "--db", str(spl_tree), "--link", str(tmp_path / "linked")]
    )
    assert result.exit_code == 0, result.output
    shared = sum(len(s) > 1 for s in expected.values())
    assert f"overlap: {shared:,} files are in more than one" in " ".join(result.stderr.split())
    assert "KIT (1)" in result.stderr  # unallocated, as every scheme reports
    with Catalog.open(spl_tree) as cat:
        got: dict[str, set[str]] = {rel: set() for rel in TREE}
        for split in LLAMASS:
            for r in cat.records(split=split, scheme=SPL_DATASETS_SCHEME):
                got[r.path].add(split)
        assert got == expected
        assert cat.split_counts(SPL_DATASETS_SCHEME) == {
            s: sum(s in e for e in expected.values()) for s in ("test", "train", "vald")
        }
        both = cat.records(split=["train", "test"], scheme=SPL_DATASETS_SCHEME)
        assert len(both) == len({r.path for r in both})  # one record a file, however many splits hold it
    linked = {str(p.relative_to(tmp_path / "linked")) for p in (tmp_path / "linked").rglob("*.npz")}
    assert linked == {f"{split}/{rel}" for rel, splits in expected.items() for split in splits}
    from amasskit.store import Store

    prepared = CliRunner().invoke(app, ["prepare", "--catalog", str(spl_tree), "--out", str(tmp_path / "stores"),
                                        "--scheme", SPL_DATASETS_SCHEME, "--workers", "1"])  # fmt: skip
    assert prepared.exit_code == 0, prepared.output
    for split in LLAMASS:
        sources = {s["source"] for s in Store(tmp_path / "stores" / split).sequences}
        assert sources == {rel for rel, splits in expected.items() if split in splits}
    assert f"puts {shared} sequences in more than one split" in " ".join(prepared.stderr.split())


def test_the_lists_are_in_the_wheel(tmp_path: Path) -> None:
    """The package data that `spl` and `humanml3d` read is in the built wheel (not only in the source tree)."""
    import shutil
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    # built from a copy of what a source distribution holds: a build folder left in the checkout by an earlier
    # build would otherwise put modules that were moved since into the wheel
    source = tmp_path / "source"
    shutil.copytree(repo / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(repo / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "wheel"), str(source)], check=True, timeout=300)  # fmt: skip
    (wheel,) = (tmp_path / "wheel").glob("amasskit-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        assert not [n for n in zf.namelist() if n.startswith("amasskit/prior/_knn")]  # nothing stale
        for name in SPL_LISTS:
            data = zf.read(f"amasskit/catalog/data/spl/{name}_fnames.txt.gz")
            assert len(gzip.decompress(data).split()) == len(spl_lists()[name])
        assert b"eth-ait/spl" in zf.read("amasskit/catalog/data/spl/SOURCES.md")
        # and HumanML3D's index, splits, normalisation and target skeleton, with their attribution
        assert len(gzip.decompress(zf.read("amasskit/humanml3d/data/index.csv.gz")).splitlines()) == 14617
        for name in ("train", "val", "test", "train_val", "all"):
            assert zf.read(f"amasskit/humanml3d/data/{name}.txt.gz")
        for name in ("Mean.npy", "Std.npy", "target_skeleton.json"):
            assert zf.read(f"amasskit/humanml3d/data/{name}")
        assert b"EricGuo5513/HumanML3D" in zf.read("amasskit/humanml3d/data/SOURCES.md")
