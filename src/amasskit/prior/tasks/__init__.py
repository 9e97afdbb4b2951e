"""What a pose prior is used for, one module each: generating and interpolating poses, denoising motion, fitting a
body to 3D joints or to 2D keypoints, and the published evaluation protocol.

* :func:`sample_poses`, :func:`interpolate_poses` - ``amasskit prior sample | interpolate``.
* :func:`denoise_motion`, :class:`DenoiseSchedule` (:data:`DENOISE_PRESETS`) - ``amasskit prior denoise``.
* :func:`fit_joints` - inverse kinematics with missing joints and several hypotheses (``amasskit prior fit``).
* :func:`fit_keypoints` - SMPLify-style fitting to OpenPose keypoints (``amasskit prior fit --intrinsics``): OpenPose's
  :data:`BODY25_TO_SMPL`, the camera :func:`intrinsics_matrix` and :func:`project_points`, the stages
  (:data:`KEYPOINT_STEPS`, :func:`keypoint_stages`), :func:`keypoints_from_joints` to make inputs.
* :func:`evaluate_prior` (:class:`EvaluationConfig`, :func:`report_table`) - the published protocol for any prior or
  none (``amasskit prior evaluate``) on :func:`held_out_motion`, with its metrics: :func:`apd`,
  :func:`nearest_pose_distance`, :func:`frechet_distance` and :func:`precision_recall` of :func:`pose_features`; the
  completion task hides :data:`COMPLETION_HIDDEN`.
* :class:`Kinematics`, :class:`BodyFit`, :func:`prior_distance` - the body every fit moves, and what a fit returns.
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
from ._joints import fit_joints
from ._keypoints import (
    BODY25_TO_SMPL,
    KEYPOINT_STEPS,
    fit_keypoints,
    intrinsics_matrix,
    keypoint_stages,
    keypoints_from_joints,
    project_points,
)
from ._sample import STARTS, interpolate_poses, sample_poses

__all__ = [
    "BODY25_TO_SMPL",
    "COMPLETION_HIDDEN",
    "DENOISE_PRESETS",
    "KEYPOINT_STEPS",
    "STARTS",
    "BodyFit",
    "DenoiseSchedule",
    "EvaluationConfig",
    "Kinematics",
    "apd",
    "denoise_motion",
    "evaluate_prior",
    "fit_joints",
    "fit_keypoints",
    "frechet_distance",
    "held_out_motion",
    "interpolate_poses",
    "intrinsics_matrix",
    "keypoint_stages",
    "keypoints_from_joints",
    "nearest_pose_distance",
    "pose_features",
    "precision_recall",
    "prior_distance",
    "project_points",
    "report_table",
    "sample_poses",
]
