"""Reading and writing AMASS motion files.

* :func:`read` - one motion file of either release into a :class:`~amasskit.Sequence`.
* :func:`read_header` - frame count, fps, gender and model without reading pose data.
* :func:`classify_path` - motion, shape or stage-i file, by name.
* :func:`write` - a sequence as a release-layout npz, atomically.
* :class:`NpzArchive` - safe, lazy, pickle-free access to the arrays of any npz.
* :func:`read_pose`, :func:`read_motion`, :func:`save_motion`, :func:`save_poses` - the motion files the pose-prior
  tasks read and write (a pose from ``FILE#frame``; HuMoR-style files too; results viewable as motion files).
* :func:`read_openpose`, :func:`write_openpose` - OpenPose's BODY_25 JSON output.
"""

from ._motions import UPRIGHT, read_motion, read_pose, save_motion, save_poses
from ._npz import ArrayInfo, NpzArchive
from ._openpose import read_openpose, write_openpose
from ._reader import META_KEY, FileKind, SequenceHeader, classify_path, header_from_archive, read, read_header
from ._writer import FORMAT_VERSION, sequence_arrays, write

__all__ = [
    "FORMAT_VERSION",
    "META_KEY",
    "UPRIGHT",
    "ArrayInfo",
    "FileKind",
    "NpzArchive",
    "SequenceHeader",
    "classify_path",
    "header_from_archive",
    "read",
    "read_header",
    "read_motion",
    "read_openpose",
    "read_pose",
    "save_motion",
    "save_poses",
    "sequence_arrays",
    "write",
    "write_openpose",
]
