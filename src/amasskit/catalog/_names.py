"""Canonical sub-dataset names, and the aliases under which the same sub-dataset appears across AMASS releases.

The canonical name is the folder name of the SMPL+H release (``BioMotionLab_NTroje``, ``MPI_HDM05``, ...); newer
releases and the archive names spell several of them differently (``BMLrub``, ``HDM05``, ``MPIHDM05``, ...).
"""

from __future__ import annotations

from typing import Final

__all__ = ["ALIASES", "CANONICAL_DATASETS", "NEWER_DATASETS", "canonical_dataset", "is_known_dataset"]

CANONICAL_DATASETS: Final[tuple[str, ...]] = (
    "ACCAD", "BMLhandball", "BMLmovi", "BioMotionLab_NTroje", "CMU", "DFaust_67", "DanceDB", "EKUT",
    "Eyes_Japan_Dataset", "HumanEva", "KIT", "MPI_HDM05", "MPI_Limits", "MPI_mosh", "SFU", "SSM_synced",
    "TCD_handMocap", "TotalCapture", "Transitions_mocap",
)  # fmt: skip
"""The 19 sub-datasets of the SMPL+H release."""

NEWER_DATASETS: Final[tuple[str, ...]] = (
    "CNRS", "GRAB", "HUMAN4D", "MOYO", "PosePrior_extra", "SOMA", "WEIZMANN",
)  # fmt: skip
"""Sub-datasets added by later releases."""

ALIASES: Final[dict[str, str]] = {
    "BMLrub": "BioMotionLab_NTroje",
    "HDM05": "MPI_HDM05",
    "MPIHDM05": "MPI_HDM05",
    "MoSh": "MPI_mosh",
    "MPImosh": "MPI_mosh",
    "PosePrior": "MPI_Limits",
    "MPILimits": "MPI_Limits",
    "SSM": "SSM_synced",
    "SSMsynced": "SSM_synced",
    "TCDHands": "TCD_handMocap",
    "TCDhandMocap": "TCD_handMocap",
    "Transitions": "Transitions_mocap",
    "Transitionsmocap": "Transitions_mocap",
    "DFaust": "DFaust_67",
    "DFaust67": "DFaust_67",
    "EyesJapanDataset": "Eyes_Japan_Dataset",
}
"""Names that drift between releases -> canonical name."""


def _key(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "").replace(" ", "")


_LOOKUP: Final[dict[str, str]] = {
    **{_key(n): n for n in (*CANONICAL_DATASETS, *NEWER_DATASETS)},
    **{_key(a): c for a, c in ALIASES.items()},
}


def canonical_dataset(name: str) -> str:
    """The canonical name of a sub-dataset folder or alias (case, ``_`` and ``-`` ignored); unknown names are kept."""
    return _LOOKUP.get(_key(name), name)


def is_known_dataset(name: str) -> bool:
    """Whether ``name`` is a sub-dataset of some AMASS release, under any of its spellings."""
    return _key(name) in _LOOKUP
