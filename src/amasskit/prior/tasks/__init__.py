"""What a pose prior is used for, one module each: generating and interpolating poses, denoising motion, fitting a
body to 3D joints or to 2D keypoints, and the published evaluation protocol.

* :func:`sample_poses`, :func:`interpolate_poses` - ``amasskit prior sample | interpolate``.
* :func:`denoise_motion`, :class:`DenoiseSchedule` (:data:`DENOISE_PRESETS`) - ``amasskit prior denoise``.
* :func:`fit_joints` - inverse kinematics with missing joints and several hypotheses (``amasskit prior fit``).
* :func:`fit_keypoints` - SMPLify-style fitting to OpenPose keypoints (``amasskit prior fit --intrinsics``): OpenPose's
  :data:`BODY25_TO_SMPL`, the camera :func:`intrinsics_matrix` and :func:`camera_to_pixels`, the stages
  (:data:`KEYPOINT_STEPS`, :func:`keypoint_stages`, :data:`KEYPOINT_PRIOR_WEIGHTS`), who can be fitted
  (:func:`fittable_keypoints`: :data:`MIN_KEYPOINTS` confident body keypoints), :func:`keypoints_from_joints` to make
  inputs.
* :func:`evaluate_prior` (:class:`EvaluationConfig`, :func:`report_table`) - the published protocol for any prior or
  none (``amasskit prior evaluate``) on :func:`held_out_motion`, with its metrics: :func:`apd`,
  :func:`nearest_pose_distance`, :func:`frechet_distance` and :func:`precision_recall` of :func:`pose_features`; the
  completion task hides :data:`COMPLETION_HIDDEN`.
* :class:`Kinematics`, :class:`BodyFit`, :func:`prior_distance` - the body every fit moves, and what a fit returns.
* On files, as the commands run them: :func:`denoise_file` (:class:`DenoisedFile`; :func:`frame_window`),
  :func:`fit_joints_file` and :func:`fit_keypoint_files` (:class:`FittedFile`), :func:`evaluate_priors` (resumable,
  one JSON report) on :func:`held_out_files`; :func:`body_kinematics` and :func:`load_field` (``none``: no prior).
"""

from ._body import BodyFit, Kinematics, prior_distance
from ._denoise import DENOISE_PRESETS, DenoiseSchedule, denoise_motion
from ._evaluate import (
    COMPLETION_HIDDEN,
    EvaluationConfig,
    apd,
    evaluate_prior,
    frechet_distance,
    held_out_motion,
    nearest_pose_distance,
    pose_features,
    precision_recall,
    report_table,
)
from ._files import (
    DenoisedFile,
    FittedFile,
    body_kinematics,
    denoise_file,
    evaluate_priors,
    fit_joints_file,
    fit_keypoint_files,
    frame_window,
    held_out_files,
    load_field,
)
from ._joints import fit_joints
from ._keypoints import (
    BODY25_TO_SMPL,
    KEYPOINT_PRIOR_WEIGHTS,
    KEYPOINT_STEPS,
    MIN_KEYPOINTS,
    camera_to_pixels,
    fit_keypoints,
    fittable_keypoints,
    intrinsics_matrix,
    keypoint_stages,
    keypoints_from_joints,
)
from ._sample import STARTS, interpolate_poses, sample_poses

__all__ = [
    "BODY25_TO_SMPL",
    "COMPLETION_HIDDEN",
    "DENOISE_PRESETS",
    "KEYPOINT_PRIOR_WEIGHTS",
    "KEYPOINT_STEPS",
    "MIN_KEYPOINTS",
    "STARTS",
    "BodyFit",
    "DenoiseSchedule",
    "DenoisedFile",
    "EvaluationConfig",
    "FittedFile",
    "Kinematics",
    "apd",
    "body_kinematics",
    "camera_to_pixels",
    "denoise_file",
    "denoise_motion",
    "evaluate_prior",
    "evaluate_priors",
    "fit_joints",
    "fit_joints_file",
    "fit_keypoint_files",
    "fit_keypoints",
    "fittable_keypoints",
    "frame_window",
    "frechet_distance",
    "held_out_files",
    "held_out_motion",
    "interpolate_poses",
    "intrinsics_matrix",
    "keypoint_stages",
    "keypoints_from_joints",
    "load_field",
    "nearest_pose_distance",
    "pose_features",
    "precision_recall",
    "prior_distance",
    "report_table",
    "sample_poses",
]
