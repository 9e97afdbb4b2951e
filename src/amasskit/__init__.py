"""amasskit: from the AMASS motion-capture archives to training-ready data, fast.

The package is laid out by what each part does:

========================  ==========================================================================
``amasskit.io``           reading and writing AMASS motion files (both releases), headers only or whole
``amasskit.synth``        synthetic AMASS trees, archives and body-model files (no licensed data)
``amasskit.archives``     safe, parallel, verified unpacking of the release archives
``amasskit.catalog``      every motion file in an SQLite catalog; split schemes
``amasskit.ops``          operations on sequences: resample, trim, canonicalise, mirror, augment
``amasskit.store``        the packed, memory-mappable store a trainer reads
``amasskit.data``         PyTorch datasets and samplers over the store (and over a HumanML3D folder)
``amasskit.body``         SMPL, SMPL+H (with DMPL) and SMPL-X forward passes
``amasskit.convert``      conversion between SMPL, SMPL+H and SMPL-X, either way
``amasskit.prior``        pose priors (Pose-NDF, NRDF): pose data, the field, and its tasks
``amasskit.humanml3d``    HumanML3D rebuilt from AMASS: its features, mirror, index and splits
``amasskit.viz``          rendered previews, the browser viewer, plots
``amasskit.cli``          the ``amasskit`` command, a thin layer over the above
========================  ==========================================================================

The core types live at the top: :class:`Sequence`, :class:`Gender`, :class:`ModelType`, and the readers
:func:`read` and :func:`read_header`. Conventions (Z-up, XYZW quaternions, 6D) are in :mod:`amasskit.conventions`; every option's named values in
:mod:`amasskit.choices`.
"""

from ._version import __version__
from .errors import AmassKitError
from .io import FileKind, SequenceHeader, read, read_header, write
from .sequence import Gender, Markers, ModelType, Provenance, Sequence

__all__ = [
    "AmassKitError",
    "FileKind",
    "Gender",
    "Markers",
    "ModelType",
    "Provenance",
    "Sequence",
    "SequenceHeader",
    "__version__",
    "read",
    "read_header",
    "write",
]
