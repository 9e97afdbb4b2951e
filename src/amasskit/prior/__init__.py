"""Pose priors: training data for distance fields to the manifold of plausible poses (Pose-NDF, NRDF).

* :func:`pose_distance`, :data:`METRICS` - the pose metrics (``posendf``: ``sum_j 1 - |<q_j, x_j>|``; ``geodesic``:
  ``sum_j acos |<q_j, x_j>|``, half-angles in radians), over per-joint XYZW quaternions of either sign.
* :func:`perturb`, :class:`NoiseConfig` - noisy copies of clean poses (Pose-NDF's scheme fixed, NRDF's tangent-space
  scheme, Haar-random rotations, a mixture), seeded per (seed, pose, sample).
* :class:`PoseIndex`, :func:`knn` - the exact ``k`` nearest clean poses of each query (equal to brute force; what is
  skipped is skipped on a proven bound), :func:`knn_brute_force` the plain reference.
"""

from ._knn import PoseIndex, knn, knn_brute_force
from ._metrics import METRICS, Metric, pose_distance
from ._noise import NOISE_SCHEMES, NoiseConfig, perturb

__all__ = [
    "METRICS",
    "NOISE_SCHEMES",
    "Metric",
    "NoiseConfig",
    "PoseIndex",
    "knn",
    "knn_brute_force",
    "perturb",
    "pose_distance",
]
