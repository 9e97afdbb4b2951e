"""Synthetic human motion that looks real to every reader: smooth, within human joint ranges, walking and turning.

The motion is a closed-form function of time, drawn once per sequence (:class:`MotionStyle`): a gait phase drives the
legs, arms and spine; a root follows a constant-speed, constant-turn arc on the ground; slow random sinusoids add
individual variation. Because it is a function of *time*, the same style sampled at 60 and at 120 fps describes the
same movement, which later lets resampling be checked against the truth.

Joint angles are set in the SMPL rest frame of each joint (Y-up, facing +Z, +X to the subject's left) as rotations
``Rx @ Ry @ Rz``: hips flex about -X, knees about +X (never backwards), elbows about -Y (left) / +Y (right), fingers
curl about -Z (left) / +Z (right). The root maps the model's Y-up frame to AMASS's Z-up world.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..rotations import rotmat_to_rotvec
from ..topology import NUM_HAND_JOINTS

__all__ = ["MotionStyle", "motion_arrays"]

_TWO_PI = 2.0 * np.pi


@dataclass(frozen=True)
class MotionStyle:
    """The parameters of one synthetic sequence, drawn by :meth:`draw`.

    Attributes:
        activity: ``"walk"``, ``"stroll"`` or ``"idle"``.
        speed: ground speed in m/s (0 when idle).
        turn_rate: heading change in rad/s (positive: turning left).
        heading0: heading at t=0 in radians (0: walking along world +X).
        start: ``(2,)`` ground position at t=0 in metres.
        cadence: gait cycles per second (one cycle = two steps).
        gait_amplitude: 0..1, how strongly the gait swings the limbs.
        pelvis_height: root translation height in metres.
        phase0: gait phase at t=0.
        noise_amp: ``(21, 3)`` amplitudes of the slow per-joint variation (radians).
        noise_freq: ``(21, 3, 3)`` its frequencies (Hz), three sinusoids per angle.
        noise_phase: ``(21, 3, 3)`` their phases.
        finger_curl: mean finger curl (radians).
        dmpl_amp: ``(8,)`` amplitude of the soft-tissue coefficients.
    """

    activity: str
    speed: float
    turn_rate: float
    heading0: float
    start: np.ndarray
    cadence: float
    gait_amplitude: float
    pelvis_height: float
    phase0: float
    noise_amp: np.ndarray
    noise_freq: np.ndarray
    noise_phase: np.ndarray
    finger_curl: float
    dmpl_amp: np.ndarray

    @classmethod
    def draw(cls, rng: np.random.Generator) -> MotionStyle:
        """A random, plausible style."""
        activity = str(rng.choice(["walk", "stroll", "idle"], p=[0.55, 0.25, 0.2]))
        speed = {"walk": rng.uniform(0.9, 1.6), "stroll": rng.uniform(0.3, 0.9), "idle": 0.0}[activity]
        amplitude = {"walk": 1.0, "stroll": 0.55, "idle": 0.12}[activity] * rng.uniform(0.85, 1.1)
        turn = rng.choice([0.0, rng.uniform(-0.6, 0.6)], p=[0.4, 0.6])
        if activity == "idle":
            turn = rng.uniform(-0.1, 0.1)
        return cls(
            activity=activity,
            speed=float(speed),
            turn_rate=float(turn),
            heading0=float(rng.uniform(-np.pi, np.pi)),
            start=rng.uniform(-2.0, 2.0, size=2),
            cadence=float(rng.uniform(0.8, 1.05) if activity != "idle" else rng.uniform(0.2, 0.4)),
            gait_amplitude=float(amplitude),
            pelvis_height=float(rng.uniform(0.88, 0.98)),
            phase0=float(rng.uniform(0, _TWO_PI)),
            noise_amp=rng.uniform(0.01, 0.06, size=(21, 3)),
            noise_freq=rng.uniform(0.05, 0.6, size=(21, 3, 3)),
            noise_phase=rng.uniform(0, _TWO_PI, size=(21, 3, 3)),
            finger_curl=float(rng.uniform(0.1, 0.45)),
            dmpl_amp=rng.uniform(0.2, 1.5, size=8) * np.linspace(1.0, 0.3, 8),
        )


def _axis_rotmat(axis: int, angle: np.ndarray) -> np.ndarray:
    """``(..., 3, 3)`` rotation by ``angle (...)`` radians about coordinate axis ``axis``.

    Built from cos/sin directly: a rotation about a coordinate axis needs no general rotvec conversion, and this is
    ten times faster than going through ``roma.rotvec_to_rotmat`` (measured on the synthetic tree generator).
    """
    c, s = np.cos(angle), np.sin(angle)
    out = np.zeros((*np.shape(angle), 3, 3))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    out[..., axis, axis] = 1.0
    out[..., i, i] = c
    out[..., j, j] = c
    out[..., i, j] = -s
    out[..., j, i] = s
    return out


def _xyz_rotmat(angles: np.ndarray) -> np.ndarray:
    """``Rx(a) @ Ry(b) @ Rz(c)`` ``(..., 3, 3)`` float64 for angles ``(..., 3)`` = (a, b, c)."""
    return _axis_rotmat(0, angles[..., 0]) @ _axis_rotmat(1, angles[..., 1]) @ _axis_rotmat(2, angles[..., 2])


def _to_rotvec(rotmat: np.ndarray) -> np.ndarray:
    """Axis-angle ``(..., 3)`` of rotation matrices ``(..., 3, 3)`` (float64, amasskit's numpy formulas: writing a
    synthetic tree never imports torch, a second and a half of every `amasskit synth`)."""
    return np.asarray(rotmat_to_rotvec(np.ascontiguousarray(rotmat, dtype=np.float64)))


def _body_angles(t: np.ndarray, style: MotionStyle) -> np.ndarray:
    """``(T, 21, 3)`` Euler angles (x, y, z) of the 21 body joints (joint k+1 of the SMPL tree at index k)."""
    phase = _TWO_PI * style.cadence * t + style.phase0
    s, c = np.sin(phase), np.cos(phase)
    amp = style.gait_amplitude
    # slow individual variation, (T, 21, 3): sum of three sinusoids per angle
    arg = _TWO_PI * style.noise_freq[None] * t[:, None, None, None] + style.noise_phase[None]
    angles = (style.noise_amp[None] / 3.0)[..., None] * np.sin(arg)
    angles = angles.sum(axis=-1)

    def joint(k: int) -> int:  # SMPL joint index -> row in the 21 body joints
        return k - 1

    # legs: hips swing in opposite phase, knees flex (only forwards) in the swing phase
    angles[:, joint(1), 0] += -0.45 * amp * s - 0.05
    angles[:, joint(2), 0] += 0.45 * amp * s - 0.05
    angles[:, joint(1), 2] += 0.04
    angles[:, joint(2), 2] -= 0.04
    knee_l = 0.08 + 0.55 * amp * (1 + np.sin(phase - 1.2)) / 2
    knee_r = 0.08 + 0.55 * amp * (1 + np.sin(phase - 1.2 + np.pi)) / 2
    angles[:, joint(4), 0] = np.abs(angles[:, joint(4), 0]) * 0.5 + knee_l
    angles[:, joint(5), 0] = np.abs(angles[:, joint(5), 0]) * 0.5 + knee_r
    angles[:, joint(7), 0] += 0.2 * amp * np.cos(phase)
    angles[:, joint(8), 0] += -0.2 * amp * np.cos(phase)
    # spine: a slight forward lean and a counter-twist to the pelvis
    for k in (3, 6, 9):
        angles[:, joint(k), 0] += 0.03 + 0.02 * amp
        angles[:, joint(k), 1] += 0.04 * amp * c
    # arms hang down (shoulders about Z) and swing against the legs (about X); elbows bend a little, more in stride
    angles[:, joint(16), 2] += -1.25
    angles[:, joint(17), 2] += 1.25
    angles[:, joint(16), 0] += 0.3 * amp * s
    angles[:, joint(17), 0] += -0.3 * amp * s
    angles[:, joint(18), 1] = -(0.25 + 0.2 * amp * (1 + s) / 2) - np.abs(angles[:, joint(18), 1])
    angles[:, joint(19), 1] = (0.25 + 0.2 * amp * (1 - s) / 2) + np.abs(angles[:, joint(19), 1])
    return angles


def _hand_angles(t: np.ndarray, style: MotionStyle) -> np.ndarray:
    """``(T, 30, 3)`` Euler angles of the finger joints: a gentle curl that varies slowly."""
    slow = np.sin(_TWO_PI * 0.15 * t + style.phase0)[:, None]
    curl = (
        style.finger_curl
        * (1.0 + 0.3 * slow)
        * np.linspace(1.0, 0.6, 3)[None, :].repeat(5, axis=0).reshape(1, -1)
    )
    angles = np.zeros((t.shape[0], 2 * NUM_HAND_JOINTS, 3))
    angles[:, :NUM_HAND_JOINTS, 2] = -curl
    angles[:, NUM_HAND_JOINTS:, 2] = curl
    # thumbs (the last finger of each hand) curl less and about another axis
    for first in (12, NUM_HAND_JOINTS + 12):
        angles[:, first : first + 3, 2] *= 0.3
        angles[:, first : first + 3, 1] = 0.15 * (1 if first == 12 else -1)
    return angles


def _root(t: np.ndarray, style: MotionStyle) -> tuple[np.ndarray, np.ndarray]:
    """Root orientation ``(T, 3)`` axis-angle and translation ``(T, 3)`` (Z-up) along a constant-turn arc."""
    heading = style.heading0 + style.turn_rate * t  # direction of travel in the ground plane
    if abs(style.turn_rate) > 1e-6:
        radius = style.speed / style.turn_rate
        x = style.start[0] + radius * (np.sin(heading) - np.sin(style.heading0))
        y = style.start[1] - radius * (np.cos(heading) - np.cos(style.heading0))
    else:
        x = style.start[0] + style.speed * t * np.cos(heading)
        y = style.start[1] + style.speed * t * np.sin(heading)
    phase = _TWO_PI * style.cadence * t + style.phase0
    amp = style.gait_amplitude
    z = style.pelvis_height + 0.02 * amp * np.cos(2 * phase) - 0.01 * amp
    # Yaw so that the body's forward axis (+Z in the model, -Y in the world after the Y-up to Z-up turn) points
    # along the heading; a small pelvis rock and twist in the body frame.
    yaw = heading + np.pi / 2
    up = np.full_like(yaw, np.pi / 2)
    sway = np.stack(
        [0.03 * amp * np.sin(2 * phase), 0.08 * amp * np.cos(phase), 0.03 * amp * np.sin(phase)], -1
    )
    rotmat = _axis_rotmat(2, yaw) @ _axis_rotmat(0, up) @ _xyz_rotmat(sway)
    return _to_rotvec(rotmat), np.stack([x, y, z], axis=-1)


def motion_arrays(
    num_frames: int, fps: float, style: MotionStyle, *, smplx: bool = False
) -> dict[str, np.ndarray]:
    """Sample ``style`` at ``num_frames`` frames of ``1 / fps`` seconds.

    Args:
        num_frames: T >= 1.
        fps: frames per second.
        style: the sequence's parameters.
        smplx: also return ``pose_jaw`` and ``pose_eye``.

    Returns:
        float64 arrays: ``root_orient (T, 3)``, ``pose_body (T, 21, 3)``, ``pose_hand (T, 30, 3)``, ``trans (T, 3)``,
        ``dmpls (T, 8)``, and for SMPL-X ``pose_jaw (T, 3)``, ``pose_eye (T, 2, 3)``.
    """
    t = np.arange(num_frames, dtype=np.float64) / fps
    root_orient, trans = _root(t, style)
    out = {
        "root_orient": root_orient,
        "pose_body": _to_rotvec(_xyz_rotmat(_body_angles(t, style))),
        "pose_hand": _to_rotvec(_xyz_rotmat(_hand_angles(t, style))),
        "trans": trans,
    }
    phase = _TWO_PI * style.cadence * t + style.phase0
    k = np.arange(8)
    out["dmpls"] = style.dmpl_amp[None] * np.sin((k[None] % 3 + 1) * phase[:, None] + k[None])
    if smplx:
        jaw = np.zeros((num_frames, 3))
        jaw[:, 0] = 0.08 + 0.06 * np.sin(_TWO_PI * 0.3 * t + style.phase0)
        eye = np.zeros((num_frames, 2, 3))
        gaze = 0.1 * np.sin(_TWO_PI * 0.2 * t + style.heading0)
        eye[:, :, 1] = gaze[:, None]
        out["pose_jaw"] = jaw
        out["pose_eye"] = eye
    return out
