"""Converting motion between SMPL-family models: SMPL+H <-> SMPL-X, SMPL <-> SMPL-X, SMPL <-> SMPL+H.

* :class:`Converter` - built once from two body models and the deformation transfer between their meshes; converts
  :class:`~amasskit.Sequence` objects or batches of poses, and reports every frame's error.
* :func:`load_transfer`, :func:`find_transfer_file`, :class:`TransferMatrix` - the released
  ``*_deftrafo_setup.pkl`` files (or their npz form) in ``<model folder>/transfer/``.
* :func:`load_mask`, :func:`find_mask_file` - SMPL-X's ``smplx_mask_ids.npy`` (vertices to fit).
* :func:`convert_files` - motion files or whole trees, resumable, with per-frame errors in every output and a report
  (``amasskit convert``); :func:`convert_pose_list` - PoseScript/PoseFix-style pose lists.
"""

from ._converter import JOINT_MAPS, RUN_OPTIONS, SCHEDULES, ConversionResult, Converter
from ._files import ConvertReport, convert_files, convert_pose_list
from ._transfer import (
    MASK_FILE,
    TRANSFER_DIR,
    TransferMatrix,
    find_mask_file,
    find_transfer_file,
    load_mask,
    load_transfer,
    mesh_of,
    transfer_file_name,
)

__all__ = [
    "JOINT_MAPS",
    "MASK_FILE",
    "RUN_OPTIONS",
    "SCHEDULES",
    "TRANSFER_DIR",
    "ConversionResult",
    "ConvertReport",
    "Converter",
    "TransferMatrix",
    "convert_files",
    "convert_pose_list",
    "find_mask_file",
    "find_transfer_file",
    "load_mask",
    "load_transfer",
    "mesh_of",
    "transfer_file_name",
]
