"""The published evaluation protocol of pose priors (Pose-NDF, NRDF, DPoser-X), one report for any prior or none.

Metrics (each a pure function, checked on cases with known answers in the tests):

* :func:`apd` - average pairwise distance of a set of poses: the mean over pairs of the mean per-joint Euclidean
  distance between their joint positions (centimetres; diversity).
* :func:`nearest_pose_distance` (dNN) - for each pose, ``sum_j 2 acos |<q_j, x_j>|`` (radians, full angles summed
  over the joints) to its nearest pose of a reference set, exactly (:class:`amasskit.prior.PoseIndex`).
* :func:`frechet_distance` (FID) - between Gaussians fitted to two feature sets: ``|mu_a - mu_b|^2 + tr(S_a + S_b -
  2 (S_a S_b)^(1/2))``; features are forward-kinematics joint positions (root at rest, metres).
* :func:`precision_recall` - Naeem et al.'s k-NN manifolds: the fraction of generated samples inside some real
  sample's ball (radius: its distance to its k-th nearest real neighbour), and the fraction of real samples inside
  some generated sample's ball.

:func:`evaluate_prior` runs the protocol: generation (Haar starts projected, Pose-NDF's sampling), field fidelity on a
held-out training set (MAE, Spearman, AUROC), denoising MPJPE of 60-frame clips at 20, 40 and 100 mm of Gaussian joint
noise (a per-coordinate standard deviation; v2v too with a body model) and at 0.1 and 0.5 rad of noise on the body
joints' axis-angles (Pose-NDF's protocol: the fit starts from the noisy motion), and completion (the left leg hidden, min and
mean error of the hidden joints over the hypotheses). With no prior it runs the same fits without the prior term: the
baseline row.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import torch

from ..._util.sampling import even_indices
from ...errors import InvalidArgumentError
from ...rotations import quat_canonical, quat_to_rotvec
from ..poses import PoseIndex
from ._body import Kinematics
from ._denoise import DenoiseSchedule, denoise_motion
from ._joints import fit_joints

logger = logging.getLogger(__name__)

__all__ = [
    "COMPLETION_HIDDEN",
    "EvaluationConfig",
    "apd",
    "evaluate_prior",
    "frechet_distance",
    "held_out_motion",
    "nearest_pose_distance",
    "pose_features",
    "precision_recall",
    "report_table",
]

COMPLETION_HIDDEN: Final[tuple[int, ...]] = (4, 7, 10)  # the left knee, ankle and foot: the hidden leg


# ------------------------------------------------------------------------------------------------ metrics


def apd(joints: np.ndarray) -> float:
    """Average pairwise distance of ``joints (N, J, 3)`` (metres) in centimetres: the mean over pairs ``a != b`` of
    ``mean_j |p_aj - p_bj|``.

    Raises:
        InvalidArgumentError: fewer than two poses.
    """
    p = np.asarray(joints, dtype=np.float64)
    if p.ndim != 3 or len(p) < 2:
        raise InvalidArgumentError(f"apd needs (N >= 2, J, 3) joints, got {p.shape}")
    total, pairs = 0.0, 0
    for a in range(len(p) - 1):
        d = np.linalg.norm(p[a + 1 :] - p[a], axis=-1).mean(-1)
        total += float(d.sum())
        pairs += len(d)
    return 100.0 * total / pairs


def nearest_pose_distance(quat: np.ndarray, reference: np.ndarray | PoseIndex) -> np.ndarray:
    """dNN: ``(N,)`` for each pose ``quat (N, J, 4)``, ``sum_j 2 acos |<q_j, x_j>|`` (radians) to its nearest pose
    of ``reference (M, J, 4)`` (or a built :class:`PoseIndex`), exactly."""
    if isinstance(reference, PoseIndex):
        index = reference.with_metric("geodesic")
    else:
        index = PoseIndex(np.asarray(reference, np.float32), metric="geodesic")
    distance, _ = index.search(np.asarray(quat, dtype=np.float32), 1)
    return 2.0 * distance[:, 0]


def _sqrtm_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The Fréchet distance between Gaussians fitted to features ``a (N, D)`` and ``b (M, D)``:
    ``|mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a^(1/2) S_b S_a^(1/2))^(1/2))`` (the last term is
    ``tr((S_a S_b)^(1/2))``, computed through symmetric matrices so it stays real)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise InvalidArgumentError(
            f"frechet_distance needs (N >= 2, D) features of one D, got {a.shape}, {b.shape}"
        )
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = _sqrtm_psd(s_a)
    cross = np.trace(_sqrtm_psd(root @ s_b @ root))
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * cross)


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d2 = (a**2).sum(1)[:, None] + (b**2).sum(1)[None] - 2 * a @ b.T
    return np.sqrt(np.clip(d2, 0, None))


def precision_recall(real: np.ndarray, fake: np.ndarray, *, k: int = 5) -> tuple[float, float]:
    """Precision and recall of ``fake (N, D)`` against ``real (M, D)`` by k-NN manifolds (Naeem et al. 2020; Kynkäänniemi
    et al. 2019): precision, the fraction of fake samples within ``radius_k`` of some real sample; recall, the
    fraction of real samples within ``radius_k`` of some fake sample (``radius_k``: a sample's distance to its k-th
    nearest neighbour in its own set).

    Raises:
        InvalidArgumentError: sets with no more than ``k`` samples, or features of different widths.
    """
    real, fake = np.asarray(real, dtype=np.float64), np.asarray(fake, dtype=np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1] or min(len(real), len(fake)) <= k:
        raise InvalidArgumentError(
            f"precision_recall needs (N > k, D) sets of one D, got {real.shape}, {fake.shape}"
        )

    def radii(x: np.ndarray) -> np.ndarray:
        return np.sort(_pairwise(x, x), axis=1)[:, k]  # column 0 is the sample itself

    cross = _pairwise(real, fake)  # (M, N)
    precision = float((cross <= radii(real)[:, None]).any(0).mean())
    recall = float((cross <= radii(fake)[None, :]).any(1).mean())
    return precision, recall


def pose_features(quat: np.ndarray, kinematics: Kinematics) -> np.ndarray:
    """``(N, 66)`` joint positions of the 22 body joints (root at rest, no translation; metres) of ``quat (N, 21,
    4)``: the features of FID and precision/recall, and the points of APD."""
    rotvec = torch.as_tensor(
        np.asarray(quat_to_rotvec(np.asarray(quat, dtype=np.float64))),
        dtype=kinematics.dtype,
        device=kinematics.device,
    )
    zero = torch.zeros(len(rotvec), 3, dtype=kinematics.dtype, device=kinematics.device)
    with torch.no_grad():
        joints = kinematics(zero, rotvec, zero, None)
    return joints.double().cpu().numpy().reshape(len(rotvec), -1)


# ------------------------------------------------------------------------------------------------ the protocol


@dataclass(frozen=True)
class EvaluationConfig:
    """What :func:`evaluate_prior` runs (defaults: the published protocol, sized for a CPU).

    Attributes:
        samples: poses generated (Haar starts projected, ``max_steps`` evaluations each at most).
        noise_mm: joint-noise levels of the denoising task (per-coordinate standard deviations, mm; DPoser-X's).
        pose_noise_rad: pose-noise levels (on the 21 body joints' axis-angles, radians; Pose-NDF's).
        clip_frames: frames a denoising clip.
        completion: poses in the completion task; hypotheses: fits per pose.
        denoise_rounds, denoise_steps, warmup: the denoising schedule (Pose-NDF's preset) and its prior-free warm-up
            from the rest pose.
        fit_steps: Adam steps of a completion fit; fit_prior_weight: the prior's weight in it (relative to the data
            term; :func:`fit_joints`'s ``w_prior``). seed: everything random.
    """

    samples: int = 500
    max_steps: int = 100
    noise_mm: tuple[float, ...] = (20.0, 40.0, 100.0)
    pose_noise_rad: tuple[float, ...] = (0.1, 0.5)
    clip_frames: int = 60
    completion: int = 50
    hypotheses: int = 10
    denoise_rounds: int = 5
    denoise_steps: int = 50
    warmup: int = 150
    fit_steps: int = 400
    fit_prior_weight: float = 10.0
    seed: int = 0


def evaluate_prior(
    field: torch.nn.Module | None,
    *,
    reference: np.ndarray,
    clips: Sequence[Mapping[str, np.ndarray]] = (),
    training: np.ndarray | None = None,
    fidelity: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    kinematics: Kinematics | None = None,
    config: EvaluationConfig | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The protocol's numbers for one prior (``field``) or none (the baseline).

    Args:
        reference: ``(M, 21, 4)`` held-out poses: the real set of FID and precision/recall, APD's "real" value and
            the completion task's poses (the first ``config.completion``, in a seeded order).
        clips: held-out motion clips (``root_orient (T, 3)``, ``pose_body (T, 21, 3)``, ``trans (T, 3)``, optional
            ``betas``), each at least ``clip_frames`` long: the denoising task (its first ``clip_frames`` frames).
        training: ``(P, 21, 4)`` the prior's training poses, for dNN (default: ``reference``).
        fidelity: ``(noisy (N, 21, 4), distance (N,), clean (C, 21, 4))`` a held-out training set of the field's
            kind: MAE, Spearman, AUROC.
        kinematics: the body (default: the built-in skeleton).

    Returns:
        a nested dict: ``generation`` (apd_cm, apd_real_cm, dnn, fid, precision, recall, converged), ``field`` (mae,
        spearman, auroc), ``denoising`` (per level ``"20mm"`` or ``"0.1rad"``: mpjpe_mm, noisy_mpjpe_mm, and
        v2v_mm with a body model), ``completion`` (min_mm, mean_mm over the hypotheses, visible_mm); a task left out (no clips, no
        fidelity set, no prior for generation) is None.
    """
    config = config or EvaluationConfig()
    kinematics = kinematics or Kinematics()
    say = progress or (lambda _: None)
    reference = np.asarray(quat_canonical(np.asarray(reference, dtype=np.float64)), dtype=np.float32)
    if reference.ndim != 3 or reference.shape[1:] != (21, 4) or len(reference) < 6:
        raise InvalidArgumentError(f"reference poses must be (M >= 6, 21, 4), got {reference.shape}")
    rng = np.random.default_rng(config.seed)
    report: dict[str, Any] = {"generation": None, "field": None, "denoising": None, "completion": None}
    real_features = pose_features(reference, kinematics)

    if field is not None:
        say("generation")
        report["generation"] = _generation(field, reference, real_features, training, kinematics, config)
        if fidelity is not None:
            say("field")
            report["field"] = _fidelity(field, fidelity)
    usable = [c for c in clips if len(c["pose_body"]) >= config.clip_frames]
    if len(usable) < len(clips):
        logger.warning(
            "%d clip(s) shorter than %d frames left out", len(clips) - len(usable), config.clip_frames
        )
    if not usable and (config.noise_mm or config.pose_noise_rad):
        report["skipped"] = {
            "denoising": f"no held-out clip of {config.clip_frames} frames (every held-out file "
            "is shorter, or none was given): the denoising task was not run"
        }
        logger.warning("%s", report["skipped"]["denoising"])
    if usable:
        report["denoising"] = _denoising(field, usable, kinematics, config, rng, say)
    count = min(config.completion, len(reference))
    if count:
        say("completion")
        report["completion"] = _completion(field, reference, count, kinematics, config, rng)
    return report


def _generation(
    field: torch.nn.Module,
    reference: np.ndarray,
    real_features: np.ndarray,
    training: np.ndarray | None,
    kinematics: Kinematics,
    config: EvaluationConfig,
) -> dict[str, float]:
    """The generation task: ``config.samples`` poses from Haar starts, against the held-out ``reference``."""
    from ._sample import sample_poses

    sampled = sample_poses(field, config.samples, start="haar", seed=config.seed, max_steps=config.max_steps)
    quat = sampled.quat.detach().cpu().double().cpu().numpy()
    features = pose_features(quat, kinematics)
    k = min(5, len(reference) - 1, len(quat) - 1)
    precision, recall = precision_recall(real_features, features, k=k)
    return {
        "apd_cm": apd(features.reshape(len(quat), 22, 3)),
        "apd_real_cm": apd(real_features.reshape(len(reference), 22, 3)),
        "dnn": float(nearest_pose_distance(quat, reference if training is None else training).mean()),
        "fid": frechet_distance(real_features, features),
        "precision": precision,
        "recall": recall,
        "converged": float(sampled.converged.float().mean()),
    }


def _fidelity(
    field: torch.nn.Module, fidelity: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> dict[str, float]:
    """The field's own fit on a held-out training set: MAE, Spearman, AUROC."""
    from ..field import evaluate_field

    noisy, target, clean = fidelity
    scores = evaluate_field(field, noisy, target, clean)
    return {k: scores[k] for k in ("mae", "spearman", "auroc")}


def _denoising(
    field: torch.nn.Module | None,
    clips: Sequence[Mapping[str, np.ndarray]],
    kinematics: Kinematics,
    config: EvaluationConfig,
    rng: np.random.Generator,
    say: Callable[[str], None],
) -> dict[str, dict[str, float]]:
    """The denoising task at each noise level (joint noise in mm, then pose noise in rad) over every clip."""
    schedule = DenoiseSchedule.posendf(config.denoise_rounds, config.denoise_steps)
    out: dict[str, dict[str, float]] = {}
    levels: list[tuple[str, float | None, float | None]] = [
        (f"{v:g}mm", v / 1000.0, None) for v in config.noise_mm
    ]
    levels += [(f"{v:g}rad", None, v) for v in config.pose_noise_rad]
    for name, joint_noise, pose_noise in levels:
        say(f"denoising at {name}")
        results = [
            _denoise_clip(
                field, kinematics, clip, config, schedule, rng, joint_noise=joint_noise, pose_noise=pose_noise
            )
            for clip in clips
        ]
        entry = {
            "mpjpe_mm": 1000 * float(np.mean([r[0] for r in results])),
            "noisy_mpjpe_mm": 1000 * float(np.mean([r[1] for r in results])),
            "clips": len(clips),
        }
        if kinematics.model is not None:
            entry["v2v_mm"] = 1000 * float(np.mean([r[2] for r in results]))
        out[name] = entry
    return out


def _completion(
    field: torch.nn.Module | None,
    reference: np.ndarray,
    count: int,
    kinematics: Kinematics,
    config: EvaluationConfig,
    rng: np.random.Generator,
) -> dict[str, float]:
    """The completion task: ``count`` held-out poses (a seeded choice) with the left leg hidden, fitted with
    ``config.hypotheses`` starts; the hidden joints' error of the best and of the mean hypothesis."""
    chosen = reference[np.sort(rng.permutation(len(reference))[:count])]
    rotvec = np.asarray(quat_to_rotvec(chosen.astype(np.float64)))
    upright = np.tile([math.pi / 2, 0.0, 0.0], (count, 1))
    tensors = [
        torch.as_tensor(a, dtype=kinematics.dtype, device=kinematics.device)
        for a in (upright, rotvec, np.zeros((count, 3)))
    ]
    with torch.no_grad():
        truth = kinematics(*tensors, None).double().cpu().numpy()
    hidden = truth.copy()
    hidden[:, list(COMPLETION_HIDDEN)] = np.nan
    fit = fit_joints(
        field,
        hidden,
        kinematics=kinematics,
        hypotheses=config.hypotheses,
        seed=config.seed,
        steps=config.fit_steps,
        w_prior=config.fit_prior_weight,
    )
    err = np.linalg.norm(fit.joints - truth[:, None], axis=-1)  # (N, K, 22)
    leg = err[:, :, list(COMPLETION_HIDDEN)].mean(-1)
    seen = [j for j in range(22) if j not in COMPLETION_HIDDEN]
    return {
        "min_mm": 1000 * float(leg.min(1).mean()),
        "mean_mm": 1000 * float(leg.mean()),
        "visible_mm": 1000 * float(err[:, 0, seen].mean()),
        "poses": count,
        "hypotheses": config.hypotheses,
    }


def _denoise_clip(
    field: torch.nn.Module | None,
    kinematics: Kinematics,
    clip: Mapping[str, np.ndarray],
    config: EvaluationConfig,
    schedule: DenoiseSchedule,
    rng: np.random.Generator,
    *,
    joint_noise: float | None,
    pose_noise: float | None,
) -> tuple[float, float, float]:
    """One clip denoised: ``(MPJPE, the noisy input's MPJPE, v2v or NaN)`` in metres against the clean clip.

    Joint noise (DPoser-X's protocol): Gaussian noise of ``joint_noise`` metres a coordinate on the clean joints; the
    fit starts from the rest pose (the clip's root and translation) with a prior-free warm-up. Pose noise (Pose-NDF's):
    Gaussian noise of ``pose_noise`` radians on the axis-angles of the 21 body joints; the noisy motion's joints are
    the observations and the fit starts from the noisy motion."""
    part = {
        k: np.asarray(clip[k], dtype=np.float64)[: config.clip_frames]
        for k in ("root_orient", "pose_body", "trans")
    }
    betas = None if clip.get("betas") is None else np.asarray(clip["betas"], dtype=np.float64)

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, dtype=kinematics.dtype, device=kinematics.device)

    shape = t(betas[: kinematics.num_betas]) if betas is not None and kinematics.num_betas else None
    with torch.no_grad():
        clean = (
            kinematics(t(part["root_orient"]), t(part["pose_body"]), t(part["trans"]), shape)
            .double()
            .cpu()
            .numpy()
        )
    if pose_noise is not None:
        noisy_pose = part["pose_body"] + rng.normal(0.0, pose_noise, part["pose_body"].shape)
        with torch.no_grad():
            noisy = (
                kinematics(t(part["root_orient"]), t(noisy_pose), t(part["trans"]), shape)
                .double()
                .cpu()
                .numpy()
            )
        start = dict(part, pose_body=noisy_pose)
        if betas is not None:
            start["betas"] = betas
        warmup = 0
    else:
        noisy = clean + rng.normal(0.0, float(joint_noise or 0.0), clean.shape)
        start = dict(part, pose_body=np.zeros_like(part["pose_body"]))
        if betas is not None:
            start["betas"] = np.zeros_like(betas)
        warmup = config.warmup
    fit = denoise_motion(field, noisy, kinematics=kinematics, init=start, schedule=schedule, warmup=warmup)
    v2v = float("nan")
    if kinematics.model is not None:
        full = None if shape is None else shape.expand(config.clip_frames, -1)
        with torch.no_grad():
            v_fit = kinematics.vertices(t(fit.root_orient), t(fit.pose_body), t(fit.trans), t(fit.betas))
            v_true = kinematics.vertices(t(part["root_orient"]), t(part["pose_body"]), t(part["trans"]), full)
        assert v_fit is not None and v_true is not None
        v2v = float((v_fit - v_true).norm(dim=-1).mean())
    error = float(np.linalg.norm(fit.joints - clean, axis=-1).mean())
    return error, float(np.linalg.norm(noisy - clean, axis=-1).mean()), v2v


def report_table(rows: Mapping[str, Mapping[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """``(header, rows)`` of one comparable table from :func:`evaluate_prior`'s reports by name."""
    columns: list[tuple[str, Callable[[Mapping[str, Any]], Any]]] = [
        ("dNN rad", lambda r: (r["generation"] or {}).get("dnn")),
        ("FID", lambda r: (r["generation"] or {}).get("fid")),
        ("APD cm", lambda r: (r["generation"] or {}).get("apd_cm")),
        ("precision", lambda r: (r["generation"] or {}).get("precision")),
        ("recall", lambda r: (r["generation"] or {}).get("recall")),
        ("MAE", lambda r: (r["field"] or {}).get("mae")),
        ("Spearman", lambda r: (r["field"] or {}).get("spearman")),
        ("AUROC", lambda r: (r["field"] or {}).get("auroc")),
    ]
    levels: list[str] = []
    for report in rows.values():
        for level in report["denoising"] or {}:
            if level not in levels:
                levels.append(level)

    def mpjpe_at(level: str) -> Callable[[Mapping[str, Any]], Any]:
        return lambda r: ((r["denoising"] or {}).get(level) or {}).get("mpjpe_mm")

    columns += [(f"MPJPE@{level}", mpjpe_at(level)) for level in levels]
    columns += [
        ("compl. min mm", lambda r: (r["completion"] or {}).get("min_mm")),
        ("compl. mean mm", lambda r: (r["completion"] or {}).get("mean_mm")),
    ]
    header = ["prior", *(name for name, _ in columns)]
    table = []
    for name, report in rows.items():
        cells = [name]
        for _, get in columns:
            value = get(report)
            cells.append("-" if value is None else f"{value:.4g}")
        table.append(cells)
    if levels:  # the noisy input's own error at each level (the same noise for every prior): what denoising starts from
        noisy = next(r["denoising"] for r in rows.values() if r["denoising"])
        table.append(
            [
                "noisy input",
                *(
                    f"{noisy[name.removeprefix('MPJPE@')]['noisy_mpjpe_mm']:.4g}"
                    if name.startswith("MPJPE@") and name.removeprefix("MPJPE@") in noisy
                    else "-"
                    for name, _ in columns
                ),
            ]
        )
    return header, table


def held_out_motion(
    files: Sequence[Any], *, fps: float = 30.0, clip_frames: int = 60, reference: int = 2000, seed: int = 0
) -> tuple[list[dict[str, np.ndarray]], np.ndarray]:
    """The evaluation's inputs from held-out motion files: one clip of ``clip_frames`` frames from each file long
    enough (at a seeded start, resampled to ``fps``), and ``reference`` poses ``(M, 21, 4)`` spread evenly over all
    the files' frames (at ``fps``). Files that cannot be read are logged and skipped.

    Raises:
        InvalidArgumentError: no file could be read.
    """
    from ...errors import AmassFileError
    from ...io import read
    from ...ops import resample
    from ...rotations import rotvec_to_quat

    rng = np.random.default_rng(seed)
    clips, poses = [], []
    short = 0
    for path in files:
        try:
            seq = resample(read(path), fps)
        except AmassFileError as exc:
            logger.warning("%s", exc)
            continue
        body = seq.pose_body.astype(np.float64)
        poses.append(body)
        if seq.num_frames < clip_frames:
            short += 1
        else:
            s = int(rng.integers(0, seq.num_frames - clip_frames + 1))
            clips.append(
                {
                    "root_orient": seq.root_orient[s : s + clip_frames].astype(np.float64),
                    "pose_body": body[s : s + clip_frames],
                    "trans": seq.trans[s : s + clip_frames].astype(np.float64),
                    "betas": seq.betas.astype(np.float64),
                }
            )
    if not poses:
        raise InvalidArgumentError("no held-out motion file could be read")
    if short:
        logger.warning(
            "%d of the %d held-out files are shorter than %d frames at %g fps: no denoising clip from them",
            short,
            len(poses),
            clip_frames,
            fps,
        )
    every = np.concatenate(poses)
    rows = even_indices(len(every), reference)
    quat = np.asarray(quat_canonical(rotvec_to_quat(every[rows])), dtype=np.float32)
    return clips, quat
