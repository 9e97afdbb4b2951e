"""``amasskit prepare``: from the catalog to one training-ready store per split.

* :class:`PrepareConfig` - what to prepare, every key checked (``PrepareConfig.from_file("prepare.yaml")``).
* :func:`plan_prepare` - what a run would do (``prepare --dry-run``), with every refusal raised before work starts.
* :func:`prepare` - the run: per-sequence work on a process pool or a Dask cluster, resumable, assembled into stores
  (:mod:`amasskit.store`) in catalogue order.
* :func:`process_sequence` - the per-sequence work itself, a pure function (for one's own pipelines and tests).
"""

from ._config import FPS_RANGE, PrepareConfig, load_config_file
from ._plan import PreparePlan, SplitPlan, plan_prepare
from ._run import PrepareReport, prepare
from ._work import pelvis_offset, process_sequence

__all__ = [
    "FPS_RANGE",
    "PrepareConfig",
    "PreparePlan",
    "PrepareReport",
    "SplitPlan",
    "load_config_file",
    "pelvis_offset",
    "plan_prepare",
    "prepare",
    "process_sequence",
]
