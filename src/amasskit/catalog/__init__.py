"""Every motion file of an AMASS tree as one row in SQLite, scanned from headers in parallel and incrementally;
queries, per-dataset statistics and split schemes.

* :func:`scan` - scan or rescan a tree into a catalog database.
* :class:`Catalog` - open a catalog; query records (or a DataFrame), stats, problems; record and link splits.
* :func:`load_scheme` / :data:`BUILTIN_SCHEMES` - split schemes (``amass-paper``, ``amass-paper-all``, YAML/JSON).
* :func:`spl_scheme` / :class:`SplReport` - the SPL paper's file lists matched to catalogued files
  (``Catalog.assign_spl``, ``amasskit split spl``); :func:`spl_datasets_scheme` - llamass's overlapping sub-dataset
  form (``amasskit split spl-datasets``).
* :func:`canonical_dataset` - sub-dataset names across releases.
"""

from ._db import DEFAULT_DB_NAME, SCHEMA_VERSION, CatalogRecord, DatasetSummary, Problem
from ._names import ALIASES, CANONICAL_DATASETS, NEWER_DATASETS, canonical_dataset
from ._query import Catalog
from ._scan import ScanReport, scan
from ._spl import SPL_DATASETS_SCHEME, SPL_LISTS, SplReport, spl_datasets_scheme, spl_lists, spl_scheme
from ._splits import (
    BUILTIN_SCHEMES,
    RandomSplit,
    SplitAssignment,
    SplitRule,
    SplitScheme,
    load_scheme,
    scheme_from_mapping,
)

__all__ = [
    "ALIASES",
    "BUILTIN_SCHEMES",
    "CANONICAL_DATASETS",
    "DEFAULT_DB_NAME",
    "NEWER_DATASETS",
    "SCHEMA_VERSION",
    "SPL_DATASETS_SCHEME",
    "SPL_LISTS",
    "Catalog",
    "CatalogRecord",
    "DatasetSummary",
    "Problem",
    "RandomSplit",
    "ScanReport",
    "SplReport",
    "SplitAssignment",
    "SplitRule",
    "SplitScheme",
    "canonical_dataset",
    "load_scheme",
    "scan",
    "scheme_from_mapping",
    "spl_datasets_scheme",
    "spl_lists",
    "spl_scheme",
]
