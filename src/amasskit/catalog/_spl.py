"""The SPL split (Aksan et al., "Structured Prediction Helps 3D Human Motion Modelling", ICCV 2019): its three file
lists, shipped in the package, matched to the files of a catalog.

The lists name files of the early AMASS release that DIP-IMU distributed (``CMU/01_01_06.pkl``,
``BioMotion/rub0010000_treadmill_norm_dynamics.pkl``, ``ACCAD/Female1Running_c3dC4_SB__SB2__SB_Run_SB_to_SB_walk1_dynamics.pkl``):
``_SB_`` stands for a space and ``_SB2_`` for ``-``, the subject folder and the file name are joined without a
separator, ``_dynamics.pkl`` or ``.pkl`` replaces ``_poses.npz``, and the collections have older names. A list name
and a catalogued file match when their sub-dataset is the same (:data:`SPL_COLLECTIONS`) and their *keys* are equal:
the subject folders and file name joined, the release's suffix dropped, lower case, letters and digits only (the
separators differ by collection). Nothing is guessed: a name whose key no file has is *not found*, a name whose key
two files have is *ambiguous*, a file that names of two different lists claim is a *conflict*; all three are
reported, and none of them assigns a file. ``MIXAMO`` and ``CMU_Kitchen`` are not part of AMASS.

:func:`spl_datasets_scheme` is the other form, llamass's: the *sub-datasets* each list names, every file of them in
that split. It is not the SPL split: most sub-datasets appear in all three lists, so its splits overlap (a CMU file is
in train, vald and test), and it is offered for comparison with work that used it.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Final

from ..errors import SplitSchemeError
from ._names import canonical_dataset
from ._splits import SplitRule, SplitScheme

__all__ = [
    "SPL_COLLECTIONS",
    "SPL_DATASETS_SCHEME",
    "SPL_LISTS",
    "SplReport",
    "spl_datasets_scheme",
    "spl_key",
    "spl_lists",
    "spl_name_key",
    "spl_scheme",
]

#: the package's three lists and the split each one gives
SPL_LISTS: Final[dict[str, str]] = {"training": "train", "validation": "vald", "test": "test"}

#: the lists' collection names -> today's sub-dataset (canonical name), or None: not part of AMASS
SPL_COLLECTIONS: Final[dict[str, str | None]] = {
    "ACCAD": "ACCAD",
    "BioMotion": "BioMotionLab_NTroje",
    "CMU": "CMU",
    "Eyes": "Eyes_Japan_Dataset",
    "HDM05": "MPI_HDM05",
    "HEva": "HumanEva",
    "JointLimit": "MPI_Limits",
    "SSM": "SSM_synced",
    "Transition": "Transitions_mocap",
    "MIXAMO": None,
    "CMU_Kitchen": None,
}

#: the name of llamass's sub-dataset form (:func:`spl_datasets_scheme`)
SPL_DATASETS_SCHEME: Final = "spl-datasets"

_RELEASE_SUFFIX = re.compile(r"_(poses|stageii)\.npz$")
_NOT_ALNUM = re.compile(r"[^0-9a-z]+")


def spl_key(text: str) -> str:
    """The comparable form of a joined name: lower case, letters and digits only."""
    return _NOT_ALNUM.sub("", text.lower())


def spl_name_key(name: str) -> tuple[str, str]:
    """``(collection, key)`` of a list name such as ``Eyes/aitaaccident_SB2_09_SB2_damage_SB_leftfoot_SB2_aita_dynamics.pkl``.

    Raises:
        SplitSchemeError: a name without a collection.
    """
    collection, sep, rest = name.strip().partition("/")
    if not sep or not rest:
        raise SplitSchemeError(f"SPL list name {name!r} has no collection (COLLECTION/NAME.pkl)")
    rest = rest.removesuffix(".pkl").removesuffix("_dynamics")
    rest = rest.replace("_SB2_", "-").replace("_SB_", " ")
    return collection, spl_key(rest)


def file_key(path: str) -> tuple[str, str]:
    """``(sub-dataset folder, key)`` of a catalogued file's path relative to the catalog root
    (``BMLrub/rub001/0000_treadmill_norm_poses.npz`` -> ``("BMLrub", "rub0010000treadmillnorm")``)."""
    folder, _, rest = path.partition("/")
    return folder, spl_key(_RELEASE_SUFFIX.sub("", rest))


def spl_lists() -> dict[str, list[str]]:
    """The three lists shipped in the package (``training``, ``validation``, ``test``), their names in file order."""
    base = resources.files("amasskit.catalog") / "data" / "spl"
    out = {}
    for name in SPL_LISTS:
        text = gzip.decompress((base / f"{name}_fnames.txt.gz").read_bytes()).decode()
        out[name] = [line.strip() for line in text.splitlines() if line.strip()]
    return out


@dataclass
class SplReport:
    """What matched, per list and old collection.

    Attributes:
        counts: list -> collection -> ``{"names", "matched", "not_found", "ambiguous", "not_amass"}``.
        not_found: ``(list, name)`` no catalogued file has the key of (AMASS collections only).
        ambiguous: ``(list, name, files)`` whose key two or more files have (none assigned).
        conflicts: file -> the ``(list, name)`` pairs of different lists that claim it (not assigned).
        not_amass: ``(list, name)`` of the collections that are not part of AMASS.
        assigned: split -> files assigned.
    """

    counts: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    not_found: list[tuple[str, str]] = field(default_factory=list)
    ambiguous: list[tuple[str, str, list[str]]] = field(default_factory=list)
    conflicts: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    not_amass: list[tuple[str, str]] = field(default_factory=list)
    assigned: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form (the catalog keeps it with the scheme)."""
        return {"counts": self.counts, "not_found": [list(x) for x in self.not_found],
                "ambiguous": [[lst, name, files] for lst, name, files in self.ambiguous],
                "conflicts": {f: [list(c) for c in claims] for f, claims in self.conflicts.items()},
                "not_amass": len(self.not_amass), "assigned": self.assigned}  # fmt: skip


def spl_scheme(
    paths: Iterable[str], *, lists: dict[str, list[str]] | None = None
) -> tuple[SplitScheme, SplReport]:
    """The SPL split of the catalogued files ``paths`` (relative to the catalog root), and what matched.

    Args:
        paths: the catalog's relative paths (``<sub-dataset folder>/<subject>/.../<name>_poses.npz``; SMPL+H or
            SMPL-X release).
        lists: list name -> its names (default: the package's, :func:`spl_lists`).

    Returns:
        A scheme named ``spl`` whose splits take the matched files, and the report.
    """
    lists = spl_lists() if lists is None else lists
    by_key: dict[tuple[str, str], list[str]] = {}
    for path in paths:
        folder, key = file_key(path)
        by_key.setdefault((canonical_dataset(folder), key), []).append(path)
    report = SplReport()
    claims: dict[str, dict[str, list[tuple[str, str]]]] = {}  # file -> list -> the names claiming it
    for list_name, names in lists.items():
        per_collection = report.counts.setdefault(list_name, {})
        for name in names:
            collection, key = spl_name_key(name)
            row = per_collection.setdefault(
                collection, {"names": 0, "matched": 0, "not_found": 0, "ambiguous": 0, "not_amass": 0}
            )
            row["names"] += 1
            if collection in SPL_COLLECTIONS and SPL_COLLECTIONS[collection] is None:
                row["not_amass"] += 1
                report.not_amass.append((list_name, name))
                continue
            dataset = SPL_COLLECTIONS.get(collection) or canonical_dataset(collection)
            found = by_key.get((dataset, key), [])
            if not found:
                row["not_found"] += 1
                report.not_found.append((list_name, name))
            elif len(found) > 1:
                row["ambiguous"] += 1
                report.ambiguous.append((list_name, name, sorted(found)))
            else:
                row["matched"] += 1
                claims.setdefault(found[0], {}).setdefault(list_name, []).append((list_name, name))
    files: dict[str, list[str]] = {split: [] for split in SPL_LISTS.values()}
    for path, by_list in claims.items():
        if len(by_list) > 1:  # names of two lists claim one file: reported, not assigned
            report.conflicts[path] = [c for found in by_list.values() for c in found]
            continue
        (list_name,) = by_list
        files[SPL_LISTS.get(list_name, list_name)].append(path)
    report.assigned = {split: len(f) for split, f in files.items()}
    rules = tuple((split, SplitRule(files=tuple(sorted(f)))) for split, f in files.items() if f)
    definition = {"name": "spl", "source": "eth-ait/spl preprocessing/*_fnames.txt, matched to this catalog",
                  "report": report.as_dict()}  # fmt: skip
    return SplitScheme(name="spl", rules=rules, definition=definition), report


def spl_datasets_scheme(*, lists: dict[str, list[str]] | None = None) -> SplitScheme:
    """llamass's form of the SPL split: each list reduced to the sub-datasets it names (old collection names mapped
    to today's, the collections outside AMASS dropped), every file of those sub-datasets in that split.

    The splits overlap wherever a sub-dataset appears in several lists (with the shipped lists: every one but
    HumanEva and SSM_synced is in all three), so the scheme is ``overlap: true`` and a file is recorded in each.

    Args:
        lists: list name -> its names (default: the package's, :func:`spl_lists`).

    Returns:
        A scheme named ``spl-datasets``; its definition records the sub-datasets per split and the overlaps.
    """
    lists = spl_lists() if lists is None else lists
    datasets: dict[str, list[str]] = {}
    for list_name, names in lists.items():
        found: set[str] = set()
        for name in names:
            collection = spl_name_key(name)[0]
            if collection in SPL_COLLECTIONS and SPL_COLLECTIONS[collection] is None:
                continue
            found.add(SPL_COLLECTIONS.get(collection) or canonical_dataset(collection))
        datasets[SPL_LISTS.get(list_name, list_name)] = sorted(found)
    shared = sorted(set.intersection(*(set(d) for d in datasets.values()))) if datasets else []
    definition = {
        "name": SPL_DATASETS_SCHEME,
        "description": "llamass's SPL sub-dataset split: the sub-datasets each SPL list names; NOT the SPL split, "
        "its splits share files",
        "overlap": True,
        "splits": {split: {"datasets": names} for split, names in datasets.items() if names},
        "in_every_split": shared,
    }
    rules = tuple((split, SplitRule(datasets=tuple(names))) for split, names in datasets.items() if names)
    return SplitScheme(name=SPL_DATASETS_SCHEME, rules=rules, overlap=True, definition=definition)
