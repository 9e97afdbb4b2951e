"""SMPL-family body models: model files (no chumpy), staged forward passes, a joints-only path, a torch module.

* :class:`BodyModel` - ``BodyModel.load(...).with_shape(betas).with_pose(...)`` -> ``.joints`` / ``.vertices``.
* :class:`BodyModelModule` - a differentiable :class:`torch.nn.Module` view for training code.
* :func:`load_model_data` / :func:`find_model_file` - reading and locating model files (``AMASSKIT_BODY_MODELS``).
"""

from ..conventions import ROTATIONS as ROTATION_REPRESENTATIONS  # old name, kept for existing imports
from ..rotations import from_rotmat, to_rotmat  # moved to amasskit.rotations; kept here for existing imports
from ._export import write_mesh, write_npy
from ._files import MODELS_ENV, ModelData, ModelKind, find_dmpl_file, find_model_file, load_model_data
from ._lbs import forward_kinematics, skin, skinning_transforms, tree_levels
from ._model import BodyModel, BodyModelModule, PosedBody, ShapedBody
from ._pickle import coo_from_arrays, load_restricted_pickle, sparse_to_coo

__all__ = [
    "MODELS_ENV",
    "ROTATION_REPRESENTATIONS",
    "BodyModel",
    "BodyModelModule",
    "ModelData",
    "ModelKind",
    "PosedBody",
    "ShapedBody",
    "coo_from_arrays",
    "find_dmpl_file",
    "find_model_file",
    "forward_kinematics",
    "from_rotmat",
    "load_model_data",
    "load_restricted_pickle",
    "skin",
    "skinning_transforms",
    "sparse_to_coo",
    "to_rotmat",
    "tree_levels",
    "write_mesh",
    "write_npy",
]
