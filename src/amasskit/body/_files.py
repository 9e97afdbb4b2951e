"""Finding and reading SMPL-family body-model files (never downloading them).

Where amasskit looks for a model, in order: the path given; the folder given (``model_dir``); the folder named by the
environment variable ``AMASSKIT_BODY_MODELS``. Inside a folder the layout is::

    <models>/smplh/{male,female,neutral}/model.npz      AMASS SMPL+H ("Extended SMPL+H model", 16 betas)
    <models>/dmpls/{male,female,neutral}/model.npz      DMPL soft-tissue eigenvectors (optional)
    <models>/smplx/SMPLX_{MALE,FEMALE,NEUTRAL}.npz      SMPL-X
    <models>/smpl/SMPL_{MALE,FEMALE,NEUTRAL}.pkl        SMPL (the release's basicmodel_{m,f,neutral}_lbs_10_207_0_v1.1.0.pkl
                                                        names are accepted too)

npz files are read without pickle (object arrays some releases carry, such as SMPL-X's ``joint2num``, are never
touched); SMPL ``.pkl`` files through a restricted unpickler that needs no chumpy (:mod:`amasskit.body._pickle`).
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from .._util.paths import user_path
from ..conventions import ModelType
from ..errors import AmassFileError, BodyModelFileError, BodyModelNotFoundError
from ..io import NpzArchive
from ..sequence import Gender
from ..topology import SMPL_PARENTS, SMPLH_PARENTS, SMPLX_PARENTS
from ._pickle import load_restricted_pickle, to_array

__all__ = ["MODELS_ENV", "ModelData", "ModelKind", "find_dmpl_file", "find_model_file", "load_model_data"]

MODELS_ENV: Final[str] = "AMASSKIT_BODY_MODELS"


ModelKind = ModelType
"""The old name of :class:`amasskit.conventions.ModelType` (one enum for sequences and body models)."""

_PARENTS = {ModelType.SMPL: SMPL_PARENTS, ModelType.SMPLH: SMPLH_PARENTS, ModelType.SMPLX: SMPLX_PARENTS}
_KIND_BY_JOINTS = {24: ModelType.SMPL, 52: ModelType.SMPLH, 55: ModelType.SMPLX}
_WHERE_TO_GET = {
    ModelType.SMPL: "SMPL: register and download at https://smpl.is.tue.mpg.de (SMPL for Python)",
    ModelType.SMPLH: (
        "SMPL+H as AMASS uses it: register at https://amass.is.tue.mpg.de and download 'Extended SMPL+H model' "
        "(and 'DMPLs compatible with SMPL' for soft tissue); the MANO site https://mano.is.tue.mpg.de has SMPL+H too"
    ),
    ModelType.SMPLX: "SMPL-X: register and download at https://smpl-x.is.tue.mpg.de (SMPL-X npz files)",
}
_SHAPE_SPACE_SMPLX = 300


def _candidates(kind: ModelType, gender: Gender, root: Path) -> list[Path]:
    g = gender.value
    if kind is ModelType.SMPLH:
        return [root / "smplh" / g / "model.npz", root / g / "model.npz", root / f"SMPLH_{g.upper()}.npz"]
    if kind is ModelType.SMPLX:
        return [root / "smplx" / f"SMPLX_{g.upper()}.npz", root / f"SMPLX_{g.upper()}.npz"]
    short = {"male": "m", "female": "f", "neutral": "neutral"}[g]
    return [
        root / "smpl" / f"SMPL_{g.upper()}.pkl",
        root / f"SMPL_{g.upper()}.pkl",
        root / "smpl" / f"basicmodel_{short}_lbs_10_207_0_v1.1.0.pkl",
        root / "smpl" / f"basicModel_{short}_lbs_10_207_0_v1.0.0.pkl",
    ]


def _roots(model_dir: str | os.PathLike[str] | None) -> list[Path]:
    roots = []
    if model_dir is not None:
        roots.append(user_path(model_dir))
    env = os.environ.get(MODELS_ENV)
    if env:
        roots.append(user_path(env))
    return roots


def find_model_file(
    kind: ModelType | str, gender: Gender | str, *, model_dir: str | os.PathLike[str] | None = None
) -> Path:
    """Where the model file of ``kind`` and ``gender`` is (see the module docstring for the layout).

    Raises:
        BodyModelNotFoundError: no such file; the message lists every place looked, the layout, and where to register.
    """
    k, g = ModelType(kind), Gender.parse(gender)
    looked: list[Path] = []
    for root in _roots(model_dir):
        for path in _candidates(k, g, root):
            looked.append(path)
            if path.is_file():
                return path
    where = "\n".join(f"  {p}" for p in looked) or (
        f"  nowhere: no model folder was given and {MODELS_ENV} is not set"
    )
    raise BodyModelNotFoundError(
        f"No {k.value} model file for gender {g.value}. Looked in:\n{where}\n"
        f"Pass model_dir=/path/to/models (CLI: --model-dir) or set {MODELS_ENV}; the folder holds "
        f"smplh/<gender>/model.npz, dmpls/<gender>/model.npz, smplx/SMPLX_<GENDER>.npz, smpl/SMPL_<GENDER>.pkl.\n"
        f"The models are licensed and amasskit never downloads them. {_WHERE_TO_GET[k]}."
    )


def find_dmpl_file(gender: Gender | str, model_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """The DMPL eigenvector file for ``gender`` (``dmpls/<gender>/model.npz``), or None where there is none."""
    g = Gender.parse(gender)
    for root in _roots(model_dir):
        path = root / "dmpls" / g.value / "model.npz"
        if path.is_file():
            return path
    return None


@dataclass(frozen=True, eq=False)
class ModelData:
    """A body model's arrays, checked, as numpy float64 (faces and parents int64).

    Attributes:
        kind, gender, path: what it is and where it came from.
        v_template: ``(V, 3)`` rest vertices (model frame, Y-up).
        faces: ``(F, 3)``.
        shapedirs: ``(V, 3, S)`` shape blend shapes.
        exprdirs: ``(V, 3, E)`` SMPL-X expression blend shapes, else None.
        posedirs: ``(V, 3, 9 (J - 1))`` pose blend shapes, driven by ``R - I`` of the non-root joints.
        J_regressor: ``(J, V)`` dense.
        parents: ``(J,)`` kinematic tree (``-1`` for the root).
        weights: ``(V, J)`` skinning weights.
        hands_mean: ``(90,)`` hand pose mean (left then right) where the file has one (AMASS uses a flat mean).
        dmpl_eigvec: ``(V, 3, 8)`` DMPL soft-tissue eigenvectors, where loaded.
    """

    kind: ModelType
    gender: Gender
    path: str
    v_template: np.ndarray
    faces: np.ndarray
    shapedirs: np.ndarray
    exprdirs: np.ndarray | None
    posedirs: np.ndarray
    J_regressor: np.ndarray
    parents: np.ndarray
    weights: np.ndarray
    hands_mean: np.ndarray | None = None
    dmpl_eigvec: np.ndarray | None = None

    @property
    def num_vertices(self) -> int:
        return int(self.v_template.shape[0])

    @property
    def num_joints(self) -> int:
        return int(self.parents.shape[0])

    @property
    def num_betas(self) -> int:
        return int(self.shapedirs.shape[2])


def _read_arrays(path: Path, keys: tuple[str, ...], optional: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if path.suffix.lower() == ".pkl":
        try:
            data = load_restricted_pickle(path.read_bytes())
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
            raise BodyModelFileError(path, f"not a readable SMPL pickle: {exc}") from None
        if not isinstance(data, dict):
            raise BodyModelFileError(path, f"holds a {type(data).__name__}, not a dict of model arrays")
        for key in (*keys, *optional):
            if key in data:
                try:
                    out[key] = to_array(data[key])
                except ValueError as exc:
                    raise BodyModelFileError(path, f"{key!r}: {exc}") from None
    else:
        try:
            with NpzArchive(path) as npz:
                for key in (*keys, *optional):
                    if key in npz:
                        out[key] = npz.read(key)
        except AmassFileError as exc:
            raise BodyModelFileError(path, exc.reason) from None
    missing = [k for k in keys if k not in out]
    if missing:
        raise BodyModelFileError(path, f"is not a body model: no {', '.join(missing)}")
    return out


def load_model_data(
    source: str | os.PathLike[str] | ModelType,
    gender: Gender | str | None = None,
    *,
    model_dir: str | os.PathLike[str] | None = None,
    dmpl: bool | str | os.PathLike[str] = True,
) -> ModelData:
    """Read and check a body model.

    Args:
        source: a model file, or a :class:`ModelType` (``"smplh"``, ...) to look up with ``gender`` and ``model_dir``.
        gender: needed with a kind; with a file, recorded (default neutral).
        model_dir: the model folder (else ``AMASSKIT_BODY_MODELS``).
        dmpl: for SMPL+H, also load the DMPL eigenvectors: True (from the folder, when present), a file, or False.

    Raises:
        BodyModelNotFoundError: nothing where amasskit looked.
        BodyModelFileError: an unreadable or inconsistent file.
    """
    g = Gender.parse(gender) if gender is not None else Gender.NEUTRAL
    if isinstance(source, ModelType) or str(source) in {k.value for k in ModelType}:
        path = find_model_file(ModelType(str(source)), g, model_dir=model_dir)
    else:
        path = user_path(source)
        if not path.is_file():
            raise BodyModelNotFoundError(f"No body-model file at {path}.")
    arrays = _read_arrays(
        path,
        ("v_template", "f", "shapedirs", "posedirs", "J_regressor", "kintree_table", "weights"),
        ("hands_meanl", "hands_meanr"),
    )
    v_template = np.asarray(arrays["v_template"], dtype=np.float64)
    if v_template.ndim != 2 or v_template.shape[1] != 3:
        raise BodyModelFileError(path, f"v_template must be (V, 3), got {v_template.shape}")
    V = v_template.shape[0]
    kintree = np.asarray(arrays["kintree_table"])
    if kintree.ndim != 2 or kintree.shape[0] != 2:
        raise BodyModelFileError(path, f"kintree_table must be (2, J), got {kintree.shape}")
    J = kintree.shape[1]
    kind = _KIND_BY_JOINTS.get(J)
    if kind is None:
        raise BodyModelFileError(path, f"{J} joints in kintree_table; SMPL has 24, SMPL+H 52, SMPL-X 55")
    parents = kintree[0].astype(np.int64)
    parents[0] = -1
    if tuple(parents.tolist()) != _PARENTS[kind]:
        raise BodyModelFileError(
            path, f"kintree_table's parents do not match the {kind.value} kinematic tree"
        )
    if list(kintree[1].astype(np.int64)) != list(range(J)):
        raise BodyModelFileError(path, "kintree_table's second row must list the joints 0..J-1")

    def check(name: str, value: Any, shape: tuple[int | None, ...]) -> np.ndarray:
        arr = np.asarray(value)
        if arr.ndim != len(shape) or any(
            s is not None and s != a for s, a in zip(shape, arr.shape, strict=False)
        ):
            want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
            raise BodyModelFileError(path, f"{name} must be {want}, got {arr.shape}")
        return arr

    faces = check("f", arrays["f"], (None, 3)).astype(np.int64)
    if faces.size and (faces.min() < 0 or faces.max() >= V):
        raise BodyModelFileError(path, f"faces index vertices outside 0..{V - 1}")
    shapedirs = check("shapedirs", arrays["shapedirs"], (V, 3, None)).astype(np.float64)
    posedirs = check("posedirs", arrays["posedirs"], (V, 3, 9 * (J - 1))).astype(np.float64)
    regressor = check("J_regressor", arrays["J_regressor"], (J, V)).astype(np.float64)
    weights = check("weights", arrays["weights"], (V, J)).astype(np.float64)
    exprdirs = None
    if kind is ModelType.SMPLX and shapedirs.shape[2] > _SHAPE_SPACE_SMPLX:
        shapedirs, exprdirs = shapedirs[:, :, :_SHAPE_SPACE_SMPLX], shapedirs[:, :, _SHAPE_SPACE_SMPLX:]
    hands_mean = None
    if "hands_meanl" in arrays and "hands_meanr" in arrays:
        hands_mean = np.concatenate([np.ravel(arrays["hands_meanl"]), np.ravel(arrays["hands_meanr"])])
        if hands_mean.shape != (90,):
            raise BodyModelFileError(
                path, f"hands_meanl/r must hold 45 values each, got {hands_mean.shape[0]} in all"
            )
    for name, arr in (("v_template", v_template), ("shapedirs", shapedirs), ("posedirs", posedirs),
                      ("J_regressor", regressor), ("weights", weights)):  # fmt: skip
        if not np.isfinite(arr).all():
            raise BodyModelFileError(path, f"{name} holds NaN or infinite values")

    eigvec = None
    if kind is ModelType.SMPLH and dmpl is not False:
        dmpl_path = find_dmpl_file(g, model_dir if model_dir is not None else _sibling_root(path)) if dmpl is True \
            else Path(dmpl)  # fmt: skip
        if dmpl_path is not None:
            eigvec = check("eigvec", _read_arrays(dmpl_path, ("eigvec",), ())["eigvec"], (V, 3, None))
            eigvec = eigvec.astype(np.float64)
    return ModelData(
        kind=kind,
        gender=g,
        path=str(path),
        v_template=v_template,
        faces=faces,
        shapedirs=shapedirs,
        exprdirs=exprdirs,
        posedirs=posedirs,
        J_regressor=regressor,
        parents=parents,
        weights=weights,
        hands_mean=hands_mean,
        dmpl_eigvec=eigvec,
    )


def _sibling_root(path: Path) -> Path | None:
    """For ``<models>/smplh/<gender>/model.npz``, the ``<models>`` folder (where ``dmpls/`` would be)."""
    parts = path.resolve().parts
    if len(parts) >= 4 and parts[-3] == "smplh":
        return Path(*parts[:-3])
    return None
