"""Split schemes: the paper's, user rules from YAML/JSON, subject-level random; recorded in the catalog."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from amasskit.catalog import (
    BUILTIN_SCHEMES,
    CANONICAL_DATASETS,
    Catalog,
    load_scheme,
    scan,
    scheme_from_mapping,
)
from amasskit.cli import app
from amasskit.errors import CatalogError, SplitSchemeError
from amasskit.synth import SynthSummary


def files_of(datasets: list[str], subjects: int = 3, per: int = 2) -> list[tuple[str, str, str]]:
    return [
        (f"{d}/s{s}/m{k}_poses.npz", d, f"s{s}")
        for d in datasets
        for s in range(subjects)
        for k in range(per)
    ]


def test_amass_paper_split_and_unallocated() -> None:
    scheme = load_scheme("amass-paper")
    files = files_of([*CANONICAL_DATASETS, "GRAB"])
    result = scheme.assign(files)
    by_dataset = {d: result.splits.get(p) for p, d, _ in files}
    assert by_dataset["HumanEva"] == by_dataset["SFU"] == "vald"
    assert by_dataset["Transitions_mocap"] == by_dataset["SSM_synced"] == "test"
    assert by_dataset["CMU"] == by_dataset["BioMotionLab_NTroje"] == by_dataset["ACCAD"] == "train"
    assert set(result.unallocated) == {"BMLhandball", "BMLmovi", "DFaust_67", "DanceDB", "GRAB"}
    assert result.unallocated["GRAB"] == 6
    everything = load_scheme("amass-paper-all").assign(files)
    assert everything.unallocated == {} and everything.splits[files[0][0]] == "train"
    assert set(BUILTIN_SCHEMES) == {"amass-paper", "amass-paper-all"}
    assert load_scheme(
        "spl-datasets"
    ).overlap  # built from the package's SPL lists (tests/catalog/test_spl.py)


def test_rules_first_match_globs_files_default(tmp_path: Path) -> None:
    definition = {
        "name": "mine",
        "splits": {
            "test": {"files": ["CMU/s0/m0_poses.npz"]},
            "vald": {"globs": ["CMU/s1/*"], "datasets": ["BMLrub"]},  # alias of BioMotionLab_NTroje
            "train": {"datasets": ["C*"]},
        },
        "default": "extra",
    }
    path = tmp_path / "mine.yaml"
    import yaml

    path.write_text(yaml.safe_dump(definition, sort_keys=False))  # rule order matters: first match wins
    scheme = load_scheme(path)
    result = scheme.assign(files_of(["CMU", "BioMotionLab_NTroje", "KIT"]))
    assert result.splits["CMU/s0/m0_poses.npz"] == "test"
    assert result.splits["CMU/s0/m1_poses.npz"] == "train"
    assert result.splits["CMU/s1/m0_poses.npz"] == "vald"
    assert result.splits["BioMotionLab_NTroje/s2/m1_poses.npz"] == "vald"
    assert result.splits["KIT/s0/m0_poses.npz"] == "extra" and result.unallocated == {}
    as_json = tmp_path / "mine.json"
    as_json.write_text(json.dumps(definition))
    mixed = files_of(["CMU", "BioMotionLab_NTroje", "KIT"])
    assert load_scheme(as_json).assign(mixed) == result  # the JSON form of the same scheme assigns the same


@pytest.mark.parametrize(
    ("definition", "match"),
    [({"splits": {"train": {"datasets": ["*"]}}}, "needs a 'name'"),
     ({"name": "x"}, "either 'splits'"),
     ({"name": "x", "splits": {"train": {"datasets": ["*"]}}, "random": {"fractions": {"a": 1}}}, "either"),
     ({"name": "x", "splits": {"train": {}}}, "selects nothing"),
     ({"name": "x", "splits": {"train": {"dataset": ["CMU"]}}}, "unknown keys"),
     ({"name": "x", "splits": {"train": {"datasets": [1]}}}, "list of strings"),
     ({"name": "x", "random": {"fractions": {"a": -1}}}, "fractions"),
     ({"name": "x", "random": {"fractions": {"a": 1}, "by": "file"}}, "by 'subject'"),
     ({"name": "x", "bogus": 1, "splits": {}}, "unknown keys"),
     ({"name": "x", "overlap": "yes", "splits": {"train": {"datasets": ["*"]}}}, "'overlap' must be true or false"),
     ({"name": "x", "overlap": True, "random": {"fractions": {"a": 1}}}, "'overlap' is for rules")],
)  # fmt: skip
def test_malformed_schemes(definition: dict[str, object], match: str) -> None:
    with pytest.raises(SplitSchemeError, match=match):
        scheme_from_mapping(definition)


def test_bad_scheme_files(tmp_path: Path) -> None:
    with pytest.raises(SplitSchemeError, match="no built-in split scheme"):
        load_scheme("amass-papr")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(SplitSchemeError, match="not valid YAML"):
        load_scheme(bad)
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{")
    with pytest.raises(SplitSchemeError, match="not valid JSON"):
        load_scheme(bad_json)


def test_random_subject_split_is_disjoint_deterministic_and_stable() -> None:
    scheme = scheme_from_mapping(
        {"name": "r", "random": {"seed": 3, "fractions": {"train": 0.8, "vald": 0.1, "test": 0.1}}}
    )
    files = files_of(["CMU", "KIT"], subjects=400, per=3)
    first = scheme.assign(files)
    assert first == scheme.assign(files)  # deterministic
    by_subject: dict[tuple[str, str], set[str]] = {}
    for path, dataset, subject in files:
        by_subject.setdefault((dataset, subject), set()).add(first.splits[path])
    assert all(len(s) == 1 for s in by_subject.values())  # a subject never spans two splits
    share = {k: v / len(files) for k, v in first.counts().items()}
    assert abs(share["train"] - 0.8) < 0.05 and abs(share["test"] - 0.1) < 0.04
    more = scheme.assign(files + files_of(["SFU"], subjects=50))
    assert all(more.splits[p] == s for p, s in first.splits.items())  # adding subjects moves nobody
    other_seed = scheme_from_mapping(
        {"name": "r", "random": {"seed": 4, "fractions": {"train": 0.8, "test": 0.2}}}
    )
    assert other_seed.assign(files).splits != first.splits


def test_an_overlapping_scheme_puts_a_file_in_every_split_that_takes_it() -> None:
    """``overlap: true``: every rule is asked, not the first only; ``splits`` holds each file's first split in rule
    order, ``also`` the others; the default takes only files no rule took."""
    definition = {"name": "o", "overlap": True, "default": "rest",
                  "splits": {"train": {"datasets": ["CMU", "KIT"]}, "test": {"datasets": ["CMU"]},
                             "vald": {"globs": ["*/s0/*"]}}}  # fmt: skip
    files = files_of(["CMU", "KIT", "SFU"], subjects=2, per=1)
    result = scheme_from_mapping(definition).assign(files)
    member = {p: {s for q, s in result.pairs() if q == p} for p, _, _ in files}
    assert member == {"CMU/s0/m0_poses.npz": {"train", "test", "vald"}, "CMU/s1/m0_poses.npz": {"train", "test"},
                      "KIT/s0/m0_poses.npz": {"train", "vald"}, "KIT/s1/m0_poses.npz": {"train"},
                      "SFU/s0/m0_poses.npz": {"vald"}, "SFU/s1/m0_poses.npz": {"rest"}}  # fmt: skip
    assert result.splits["CMU/s0/m0_poses.npz"] == "train" and result.also["CMU/s0/m0_poses.npz"] == (
        "test",
        "vald",
    )
    assert result.counts() == {"train": 4, "test": 2, "vald": 3, "rest": 1}
    first_only = scheme_from_mapping({**definition, "overlap": False}).assign(files)
    assert first_only.also == {} and first_only.splits == result.splits  # the same first split, nothing more


@pytest.fixture
def catalogued(smplh_tree: SynthSummary, tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    shutil.copytree(smplh_tree.root, root, ignore=shutil.ignore_patterns("archives"))
    scan(root, workers=1)
    return root


def test_split_recorded_in_the_catalog(catalogued: Path, tmp_path: Path) -> None:
    with Catalog.open(catalogued) as cat:
        assignment = cat.assign_split("amass-paper")
        assert cat.schemes() == ["amass-paper"]
        counts = cat.split_counts("amass-paper")
        assert (
            counts == assignment.counts()
            and sum(counts.values()) + sum(assignment.unallocated.values()) == 19
        )
        train = cat.records(split="train", scheme="amass-paper")
        assert {r.dataset for r in train} <= set(BUILTIN_SCHEMES["amass-paper"].rules[2][1].datasets)
        both = cat.records(split=["vald", "test"], scheme="amass-paper")
        assert len(both) == counts["vald"] + counts["test"]
        with pytest.raises(CatalogError, match="no split scheme"):
            cat.records(split="train", scheme="nope")
        linked = cat.link_split("amass-paper", tmp_path / "links")
        assert linked == counts
        link = next((tmp_path / "links" / "test").rglob("*.npz"))
        assert link.is_symlink() and Path(os.readlink(link)).is_file()
        with pytest.raises(FileExistsError):
            cat.link_split("amass-paper", tmp_path / "links")
        assert cat.link_split("amass-paper", tmp_path / "links", overwrite=True) == counts


def test_split_survives_rescans_and_drops_deleted_files(catalogued: Path) -> None:
    with Catalog.open(catalogued) as cat:
        cat.assign_split("amass-paper-all")
        before = cat.split_counts("amass-paper-all")
    victim = next(catalogued.glob("CMU/*/*_poses.npz"))
    victim.unlink()
    scan(catalogued, workers=1)
    with Catalog.open(catalogued) as cat:
        after = cat.split_counts("amass-paper-all")
    assert after["train"] == before["train"] - 1


def test_cli_catalog_and_split(catalogued: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    stats = runner.invoke(app, ["catalog", "stats", str(catalogued)])
    assert stats.exit_code == 0, stats.output
    assert "total" in stats.output and "CMU" in stats.output
    result = runner.invoke(
        app, ["-q", "split", "amass-paper", "--db", str(catalogued), "--link", str(tmp_path / "l")]
    )
    assert result.exit_code == 0, result.output
    assert "unallocated" in result.output and "BMLmovi" in result.output
    assert (tmp_path / "l" / "train").is_dir()
    listed = runner.invoke(app, ["split", "--list"])
    assert "amass-paper-all" in listed.output and "spl-datasets" in listed.output
    missing = runner.invoke(app, ["split", "amass-paper", "--db", str(tmp_path / "none.sqlite")])
    assert missing.exit_code == 1 and "CatalogError" in missing.output
    rescan = runner.invoke(app, ["-q", "catalog", "scan", str(catalogued)])
    assert rescan.exit_code == 0, rescan.output
    assert "0 read" in rescan.output


def test_a_version_1_catalog_is_migrated_keeping_its_splits(catalogued: Path) -> None:
    """A catalog written by amasskit 0.x (schema 1: one split per file and scheme) opens as schema 2 with its
    recorded splits unchanged, and then takes an overlapping scheme."""
    import sqlite3

    from amasskit.catalog import SCHEMA_VERSION

    with Catalog.open(catalogued) as cat:
        cat.assign_split("amass-paper")
        before = {
            s: {r.path for r in cat.records(split=s, scheme="amass-paper")} for s in ("train", "vald", "test")
        }
        db = cat.path
    con = sqlite3.connect(db)  # back to the version 1 layout, as an older amasskit left it
    con.executescript("""
        ALTER TABLE split_files RENAME TO newer; DROP INDEX split_files_split;
        CREATE TABLE split_files(scheme TEXT NOT NULL, path TEXT NOT NULL, split TEXT NOT NULL,
                                 PRIMARY KEY(scheme, path));
        INSERT INTO split_files SELECT * FROM newer; DROP TABLE newer;
        CREATE INDEX split_files_split ON split_files(scheme, split);
        UPDATE meta SET value='1' WHERE key='schema_version';""")
    con.close()
    with Catalog.open(catalogued) as cat:
        after = {
            s: {r.path for r in cat.records(split=s, scheme="amass-paper")} for s in ("train", "vald", "test")
        }
        assert after == before and all(before.values())
        overlapping = scheme_from_mapping(
            {"name": "both", "overlap": True, "splits": {"a": {"datasets": ["*"]}, "b": {"datasets": ["*"]}}}
        )
        cat.assign_split(overlapping)
        counts = cat.split_counts("both")
        assert counts["a"] == counts["b"] == len(cat.records())
    con = sqlite3.connect(db)
    assert con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == (
        str(SCHEMA_VERSION),
    )
    keys = [
        row[1] for row in sorted(con.execute("PRAGMA table_info(split_files)"), key=lambda r: r[5]) if row[5]
    ]
    con.close()
    assert keys == ["scheme", "path", "split"]
