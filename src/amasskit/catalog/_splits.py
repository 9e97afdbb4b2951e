"""Split schemes: which split (train / vald / test / ...) each motion file belongs to.

A scheme is either a list of rules, one per split, evaluated in order (the first that matches a file wins), or a
subject-level random split. A scheme marked ``overlap: true`` puts a file in *every* split whose rule takes it (the
splits then share files: llamass's SPL sub-dataset split, ``spl-datasets``, is one). Rules select by sub-dataset (canonical names, aliases and ``fnmatch`` patterns accepted),
by glob on the file's path relative to the catalog root, or by explicit file lists. Files no rule takes go to
``default`` when the scheme names one; otherwise they are *unallocated*, and reported per sub-dataset, never dropped
silently.

Built in:

* ``amass-paper``: the AMASS paper's vald / test / train sub-datasets; everything newer is unallocated.
* ``amass-paper-all``: the same, with every other sub-dataset added to train.
* ``spl`` (:meth:`Catalog.assign_spl`) and ``spl-datasets`` (overlapping): the SPL paper's file lists, see ``_spl``.

User schemes come from YAML or JSON::

    name: my-split
    splits:
      test:  {datasets: [Transitions_mocap, SSM_synced]}
      vald:  {globs: ["HumanEva/*"], files: ["SFU/0005/0005_Jogging001_poses.npz"]}
      train: {datasets: ["*"]}
    default: null            # or a split name for whatever is left
    overlap: false           # true: a file goes to every split whose rule takes it

    name: subjects-80-10-10
    random: {seed: 0, fractions: {train: 0.8, vald: 0.1, test: 0.1}, datasets: ["*"]}

The random split assigns whole subjects (``<dataset>/<subject>``), so splits never share a person; each subject's
split comes from a hash of (seed, dataset, subject), so it is deterministic and stays put when subjects are added.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from .._util.configfile import load_yaml_or_json
from .._util.paths import user_path
from ..errors import SplitSchemeError
from ._names import canonical_dataset

__all__ = [
    "BUILTIN_SCHEMES",
    "RandomSplit",
    "SplitAssignment",
    "SplitRule",
    "SplitScheme",
    "load_scheme",
    "scheme_from_mapping",
]


@dataclass(frozen=True, kw_only=True)
class SplitRule:
    """What one split takes: sub-datasets (names or patterns), path globs, explicit relative paths."""

    datasets: tuple[str, ...] = ()
    globs: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    _file_set: frozenset[str] = field(init=False, repr=False, compare=False, default=frozenset())

    def __post_init__(self) -> None:
        # thousands of explicit files (the SPL lists): looked up in a set, not the tuple
        object.__setattr__(self, "_file_set", frozenset(self.files))

    def matches(self, dataset: str, path: str) -> bool:
        if any(fnmatch.fnmatchcase(dataset, canonical_dataset(p)) for p in self.datasets):
            return True
        if any(fnmatch.fnmatchcase(path, g) for g in self.globs):
            return True
        return path in self._file_set


@dataclass(frozen=True, kw_only=True)
class RandomSplit:
    """A subject-level random split.

    Attributes:
        fractions: split name -> fraction of subjects (normalised to sum to 1).
        seed: the seed.
        datasets: sub-datasets (names or patterns) it covers; others are unallocated.
    """

    fractions: tuple[tuple[str, float], ...]
    seed: int = 0
    datasets: tuple[str, ...] = ("*",)

    def split_of(self, dataset: str, subject: str) -> str | None:
        if not any(fnmatch.fnmatchcase(dataset, canonical_dataset(p)) for p in self.datasets):
            return None
        digest = hashlib.sha256(f"{self.seed}\0{dataset}\0{subject}".encode()).digest()
        u = int.from_bytes(digest[:8], "big") / 2.0**64
        total = sum(f for _, f in self.fractions)
        edge = 0.0
        for name, fraction in self.fractions:
            edge += fraction / total
            if u < edge:
                return name
        return self.fractions[-1][0]


@dataclass(frozen=True)
class SplitAssignment:
    """The result of applying a scheme to a set of files.

    Attributes:
        splits: relative path -> split name, for every allocated file (its first split, in rule order).
        unallocated: sub-dataset -> number of files no rule took.
        scheme: the scheme's name.
        also: relative path -> the further splits of a file in an overlapping scheme (empty otherwise).
    """

    splits: dict[str, str]
    unallocated: dict[str, int]
    scheme: str = ""
    also: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def pairs(self) -> list[tuple[str, str]]:
        """Every ``(relative path, split)`` membership: one per file, more for the files in :attr:`also`."""
        out = list(self.splits.items())
        out.extend((path, name) for path, names in self.also.items() for name in names)
        return out

    def counts(self) -> dict[str, int]:
        """Files per split (a file in several splits counts in each)."""
        out: dict[str, int] = {}
        for _, name in self.pairs():
            out[name] = out.get(name, 0) + 1
        return out


@dataclass(frozen=True, kw_only=True)
class SplitScheme:
    """A named split scheme (see the module docstring)."""

    name: str
    rules: tuple[tuple[str, SplitRule], ...] = ()
    default: str | None = None
    random: RandomSplit | None = None
    overlap: bool = False
    definition: dict[str, Any] = field(default_factory=dict, compare=False)

    def assign(self, files: Iterable[tuple[str, str, str | None]]) -> SplitAssignment:
        """Assign ``(relative path, canonical dataset, subject)`` triples to splits."""
        splits: dict[str, str] = {}
        also: dict[str, tuple[str, ...]] = {}
        unallocated: dict[str, int] = {}
        for path, dataset, subject in files:
            chosen: list[str] = []
            if self.random is not None:
                picked = self.random.split_of(dataset, subject or "")
                chosen = [picked] if picked is not None else []
            else:
                for name, rule in self.rules:
                    if rule.matches(dataset, path):
                        chosen.append(name)
                        if not self.overlap:
                            break
            if not chosen and self.default is not None:
                chosen = [self.default]
            if not chosen:
                unallocated[dataset] = unallocated.get(dataset, 0) + 1
                continue
            splits[path] = chosen[0]
            if len(chosen) > 1:
                also[path] = tuple(chosen[1:])
        return SplitAssignment(splits, dict(sorted(unallocated.items())), self.name, also)


def _tuple(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise SplitSchemeError(f"{what} must be a string or a list of strings, got {value!r}")


def scheme_from_mapping(data: Mapping[str, Any], *, source: str = "scheme") -> SplitScheme:
    """A scheme from its parsed YAML/JSON form.

    Raises:
        SplitSchemeError: missing name, unknown keys, a split with no rule, bad fractions.
    """
    if not isinstance(data, Mapping):
        raise SplitSchemeError(f"{source}: a split scheme must be a mapping, got {type(data).__name__}")
    unknown = set(data) - {"name", "splits", "default", "random", "overlap", "description"}
    if unknown:
        raise SplitSchemeError(
            f"{source}: unknown keys {sorted(unknown)}; expected name, splits, default, random, overlap"
        )
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise SplitSchemeError(f"{source}: the scheme needs a 'name'")
    if ("splits" in data) == ("random" in data):
        raise SplitSchemeError(f"{source}: give either 'splits' (rules) or 'random', not both or neither")
    default = data.get("default")
    if default is not None and not isinstance(default, str):
        raise SplitSchemeError(f"{source}: 'default' must be a split name or null")
    overlap = data.get("overlap", False)
    if not isinstance(overlap, bool):
        raise SplitSchemeError(f"{source}: 'overlap' must be true or false, got {overlap!r}")
    if "random" in data:
        if overlap:
            raise SplitSchemeError(
                f"{source}: a random split gives each subject one split; 'overlap' is for rules"
            )
        spec = data["random"]
        if (
            not isinstance(spec, Mapping)
            or not isinstance(spec.get("fractions"), Mapping)
            or not spec["fractions"]
        ):
            raise SplitSchemeError(f"{source}: 'random' needs 'fractions' (split name -> fraction)")
        fractions = tuple((str(k), float(v)) for k, v in spec["fractions"].items())
        if any(f < 0 for _, f in fractions) or sum(f for _, f in fractions) <= 0:
            raise SplitSchemeError(f"{source}: fractions must be >= 0 and sum to more than 0")
        seed = spec.get("seed", 0)
        if not isinstance(seed, int):
            raise SplitSchemeError(f"{source}: 'seed' must be an integer")
        if spec.get("by", "subject") != "subject":
            raise SplitSchemeError(f"{source}: random splits are by 'subject'")
        datasets = _tuple(spec.get("datasets", ["*"]), f"{source}: random.datasets")
        return SplitScheme(
            name=name,
            default=default,
            random=RandomSplit(fractions=fractions, seed=seed, datasets=datasets),
            definition=dict(data),
        )
    splits = data["splits"]
    if not isinstance(splits, Mapping) or not splits:
        raise SplitSchemeError(f"{source}: 'splits' must map split names to rules")
    rules = []
    for split, rule in splits.items():
        if not isinstance(rule, Mapping):
            raise SplitSchemeError(f"{source}: split {split!r} must be a mapping of datasets/globs/files")
        extra = set(rule) - {"datasets", "globs", "files"}
        if extra:
            raise SplitSchemeError(f"{source}: split {split!r} has unknown keys {sorted(extra)}")
        parsed = SplitRule(
            datasets=_tuple(rule.get("datasets"), f"{source}: {split}.datasets"),
            globs=_tuple(rule.get("globs"), f"{source}: {split}.globs"),
            files=_tuple(rule.get("files"), f"{source}: {split}.files"),
        )
        if not (parsed.datasets or parsed.globs or parsed.files):
            raise SplitSchemeError(f"{source}: split {split!r} selects nothing")
        rules.append((str(split), parsed))
    return SplitScheme(name=name, rules=tuple(rules), default=default, overlap=overlap, definition=dict(data))


_PAPER: Final[dict[str, Any]] = {
    "name": "amass-paper",
    "description": "The AMASS paper's split: vald, test and train sub-datasets; newer sub-datasets unallocated.",
    "splits": {
        "vald": {"datasets": ["HumanEva", "MPI_HDM05", "SFU", "MPI_mosh"]},
        "test": {"datasets": ["Transitions_mocap", "SSM_synced"]},
        "train": {
            "datasets": [
                "CMU",
                "MPI_Limits",
                "TotalCapture",
                "Eyes_Japan_Dataset",
                "KIT",
                "BioMotionLab_NTroje",
                "EKUT",
                "TCD_handMocap",
                "ACCAD",
            ]
        },
    },
}
_PAPER_ALL: Final[dict[str, Any]] = {
    "name": "amass-paper-all",
    "description": "The AMASS paper's vald and test sub-datasets; every other sub-dataset in train.",
    "splits": {
        "vald": _PAPER["splits"]["vald"],
        "test": _PAPER["splits"]["test"],
        "train": {"datasets": ["*"]},
    },
}
BUILTIN_SCHEMES: Final[dict[str, SplitScheme]] = {
    d["name"]: scheme_from_mapping(d, source=f"built-in {d['name']}") for d in (_PAPER, _PAPER_ALL)
}


def load_scheme(name_or_path: str | os.PathLike[str]) -> SplitScheme:
    """A built-in scheme by name, or a user scheme from a ``.yaml``/``.yml``/``.json`` file.

    Raises:
        SplitSchemeError: unknown name, unreadable or malformed file.
    """
    key = os.fspath(name_or_path)
    if key in BUILTIN_SCHEMES:
        return BUILTIN_SCHEMES[key]
    if key == "spl-datasets":  # built from the package's SPL lists (``_spl`` builds on this module)
        from ._spl import spl_datasets_scheme

        return spl_datasets_scheme()
    path = user_path(key)
    if not path.is_file():
        raise SplitSchemeError(
            f"no built-in split scheme {key!r} (built in: {', '.join(BUILTIN_SCHEMES)}, spl, spl-datasets) and no "
            "such file"
        )
    data = load_yaml_or_json(path, SplitSchemeError)
    return scheme_from_mapping(data, source=str(path))
