"""Skeleton frames drawn with Pillow: a perspective camera that follows the subject, a world-fixed ground grid, the
root's trajectory on the ground, labels and a time counter. Several tracks go side by side or overlaid.

The projection and clipping are a few lines of numpy (pure functions below); the drawing is Pillow's ``ImageDraw``,
at twice the output size and reduced, which anti-aliases lines that ``ImageDraw`` draws hard-edged.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ._mesh import gl_renderer
from ._skeleton import joint_sides

__all__ = ["Track", "View", "frame_times", "look_at", "project", "render_frames"]

_SS = 2  # supersampling factor
_BACKGROUND = (246, 247, 249)
_GRID = (206, 210, 216)
_GRID_MAJOR = (180, 186, 194)
_TEXT = (40, 44, 52)
_MESH_COLOURS = [(168, 184, 206), (206, 178, 160), (170, 200, 172)]
#: per track: (left, right, centre) bone colours
_PALETTES = [
    ((47, 111, 208), (222, 92, 50), (64, 68, 76)),
    ((40, 160, 120), (200, 60, 150), (90, 80, 40)),
    ((120, 90, 200), (220, 160, 30), (30, 110, 140)),
]


#: the per-frame fact holding a pose prior's distance of the shown pose (the viewer gives it its own read-only field)
PRIOR_DISTANCE = "prior distance"


@dataclass(frozen=True)
class Track:
    """One motion to draw.

    Attributes:
        joints: ``(T, J, 3)`` joint positions, metres, Z-up world.
        parents: the kinematic tree (``-1`` for the root), ``J`` entries.
        names: joint names (their ``left``/``right`` prefixes colour the bones).
        fps: frames per second of ``joints``.
        label: shown in the corner.
        mesh: where there is a body model, the source of each frame's vertices (:class:`~amasskit.viz._mesh.MeshSource`);
            drawn lit and shaded instead of the skeleton when an OpenGL context can be made.
        info: facts the viewer shows (sub-dataset, subject, source, augmentation...).
        per_frame: ``name -> (T,)`` values the viewer shows for the drawn frame (a converted file's vertex error).
    """

    joints: np.ndarray
    parents: tuple[int, ...]
    names: tuple[str, ...]
    fps: float
    label: str = ""
    mesh: Any = None
    info: dict[str, str] = field(default_factory=dict)
    per_frame: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return len(self.joints) / self.fps


@dataclass(frozen=True, kw_only=True)
class View:
    """How frames are drawn: panel size in pixels, camera distance (m), elevation and azimuth (degrees; azimuth 0
    looks along +Y), vertical field of view, seconds over which the camera's target is smoothed, whether tracks
    share one panel (``overlay``), and whether tracks with a body model are drawn as meshes (``mesh``)."""

    width: int = 480
    height: int = 480
    distance: float = 4.5
    elevation: float = 18.0
    azimuth: float = -35.0
    fov: float = 40.0
    follow_seconds: float = 1.0
    overlay: bool = False
    grid_step: float = 0.5
    grid_extent: float = 6.0
    trajectory: bool = True
    annotate: bool = True
    mesh: bool = True


# ------------------------------------------------------------------------------------------------ camera (pure)


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray | None = None) -> np.ndarray:
    """``(3, 3)`` world-to-camera rotation for a camera at ``eye`` looking at ``target`` (rows: right, down,
    forward; Z-up world by default)."""
    up = np.array([0.0, 0.0, 1.0]) if up is None else up
    forward = target - eye
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, up)
    right = right / np.linalg.norm(right)
    down = np.cross(forward, right)
    return np.stack([right, down, forward])


def project(
    points: np.ndarray, rotation: np.ndarray, eye: np.ndarray, focal: float, center: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Pinhole projection of world ``points (..., 3)``: pixel coordinates ``(..., 2)`` and depth ``(...)``."""
    cam = (points - eye) @ rotation.T
    depth = cam[..., 2]
    safe = np.where(depth > 1e-6, depth, 1e-6)
    uv = focal * cam[..., :2] / safe[..., None] + np.asarray(center)
    return uv, depth


def _clip_segments(a: np.ndarray, b: np.ndarray, rotation: np.ndarray, eye: np.ndarray, near: float = 0.05
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Segments ``a, b (N, 3)`` cut at the camera's near plane: ``(a', b', keep)``."""
    da = (a - eye) @ rotation[2]
    db = (b - eye) @ rotation[2]
    keep = (da > near) | (db > near)
    t = np.clip((near - da) / np.where(np.abs(db - da) > 1e-12, db - da, 1e-12), 0.0, 1.0)
    a2 = np.where((da < near)[:, None], a + (b - a) * t[:, None], a)
    b2 = np.where((db < near)[:, None], a + (b - a) * t[:, None], b)
    return a2, b2, keep


def _smoothed(points: np.ndarray, window: int) -> np.ndarray:
    """Moving average of ``points (T, D)`` over ``window`` frames (edges use the frames there are)."""
    if window <= 1 or len(points) < 2:
        return points
    kernel = np.ones(window) / window
    pad = window // 2
    padded = np.concatenate(
        [np.repeat(points[:1], pad, 0), points, np.repeat(points[-1:], window - 1 - pad, 0)]
    )
    return np.stack([np.convolve(padded[:, d], kernel, mode="valid") for d in range(points.shape[1])], axis=1)


def frame_times(
    tracks: Sequence[Track], fps: float, *, start: float = 0.0, stop: float | None = None
) -> np.ndarray:
    """Output frame instants (seconds): every ``1/fps`` from ``start`` to ``stop`` (default: the longest track)."""
    end = max(t.duration for t in tracks) if stop is None else stop
    count = max(1, math.floor((end - start) * fps + 1e-9))
    return start + np.arange(count) / fps


# ------------------------------------------------------------------------------------------------ drawing


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


class _Panel:
    """One panel: its tracks, camera path and palette."""

    def __init__(self, tracks: list[tuple[int, Track]], times: np.ndarray, view: View) -> None:
        self.tracks, self.view = tracks, view
        self._as_mesh: set[int] = (
            set()
        )  # the slots last drawn as meshes (their labels show the mesh's colour)
        # the frame each track shows at each output instant (holding its last frame once it has ended)
        self.index = [
            np.clip(np.round(times * t.fps).astype(np.int64), 0, len(t.joints) - 1) for _, t in tracks
        ]
        roots = np.mean(
            [t.joints[i, 0] for (_, t), i in zip(tracks, self.index, strict=True)], axis=0
        )  # (N, 3)
        step = float(times[1] - times[0]) if len(times) > 1 else 1.0
        window = max(1, round(view.follow_seconds / step))
        target = _smoothed(roots, window)
        self.targets = np.concatenate([target[:, :2], np.full((len(target), 1), 0.9)], axis=1)
        el, az = math.radians(view.elevation), math.radians(view.azimuth)
        self.offset = view.distance * np.array([math.sin(az) * math.cos(el) * -1.0, -math.cos(az) * math.cos(el),
                                                 math.sin(el)])  # fmt: skip
        self.focal = 0.5 * view.height * _SS / math.tan(math.radians(view.fov) / 2)

    def draw(self, k: int, time: float) -> Image.Image:
        v = self.view
        W, H = v.width * _SS, v.height * _SS
        image = Image.new("RGB", (W, H), _BACKGROUND)
        draw = ImageDraw.Draw(image)
        target = self.targets[k]
        eye = target + self.offset
        R = look_at(eye, target)
        center = (W / 2, H / 2)
        self._grid(draw, R, eye, center, target)
        for (slot, track), index in zip(self.tracks, self.index, strict=True):
            if v.trajectory:
                self._trajectory(draw, R, eye, center, track, index, k, slot)
        meshes = [(slot, track, index) for (slot, track), index in zip(self.tracks, self.index, strict=True)
                  if track.mesh is not None and v.mesh]  # fmt: skip
        renderer = gl_renderer(W, H) if meshes else None
        self._as_mesh = {slot for slot, _, _ in meshes} if renderer is not None else set()
        if renderer is not None:
            rgba = renderer.draw([(t.mesh.vertices(int(i[k])), t.mesh.faces, _MESH_COLOURS[slot % len(_MESH_COLOURS)])
                                  for slot, t, i in meshes], R, eye, self.focal)  # fmt: skip
            image = Image.alpha_composite(image.convert("RGBA"), Image.fromarray(rgba)).convert("RGB")
            draw = ImageDraw.Draw(image)
        bones = []
        for (slot, track), index in zip(self.tracks, self.index, strict=True):
            if renderer is not None and track.mesh is not None:
                continue  # drawn as a mesh
            joints = track.joints[index[k]]
            uv, depth = project(joints, R, eye, self.focal, center)
            sides = joint_sides(track.names)
            left, right, centre = _PALETTES[slot % len(_PALETTES)]
            for j, p in enumerate(track.parents):
                if p < 0 or depth[j] <= 0.05 or depth[p] <= 0.05:
                    continue
                colour = left if sides[j] > 0 else right if sides[j] < 0 else centre
                width = max(2, round(0.045 * self.focal / (0.5 * (depth[j] + depth[p]))))
                bones.append((0.5 * (depth[j] + depth[p]), uv[p], uv[j], colour, width))
            head = track.names.index("head") if "head" in track.names else None
            if head is not None and depth[head] > 0.05:
                r = 0.10 * self.focal / depth[head]
                bones.append((depth[head] + 0.05, uv[head], None, centre, r))
        for _depth, a, b, colour, width in sorted(bones, key=lambda x: -x[0]):  # far to near
            if b is None:  # the head: a ring
                draw.ellipse([a[0] - width, a[1] - width, a[0] + width, a[1] + width], outline=colour,
                             width=max(2, int(width / 4)))  # fmt: skip
                continue
            draw.line([tuple(a), tuple(b)], fill=colour, width=int(width))
            for end in (a, b):
                r = width / 2
                draw.ellipse([end[0] - r, end[1] - r, end[0] + r, end[1] + r], fill=colour)
        if v.annotate:
            self._text(draw, k, time)
        # the supersampled drawing resolved by box averaging (ten times faster than a Lanczos resize, as smooth)
        return image.reduce(_SS)

    def _grid(self, draw: ImageDraw.ImageDraw, R: np.ndarray, eye: np.ndarray, center: tuple[float, float],
              target: np.ndarray) -> None:  # fmt: skip
        v = self.view
        step, extent = v.grid_step, v.grid_extent
        cx, cy = (np.round(target[:2] / step) * step).tolist()
        ticks = np.arange(-extent, extent + step / 2, step)
        a = np.concatenate([np.stack([cx + ticks, np.full_like(ticks, cy - extent), 0 * ticks], 1),
                            np.stack([np.full_like(ticks, cx - extent), cy + ticks, 0 * ticks], 1)])  # fmt: skip
        b = np.concatenate([np.stack([cx + ticks, np.full_like(ticks, cy + extent), 0 * ticks], 1),
                            np.stack([np.full_like(ticks, cx + extent), cy + ticks, 0 * ticks], 1)])  # fmt: skip
        major = np.concatenate([np.isclose(np.mod(cx + ticks + 1e-9, 1.0), 0, atol=1e-6),
                                np.isclose(np.mod(cy + ticks + 1e-9, 1.0), 0, atol=1e-6)])  # fmt: skip
        a, b, keep = _clip_segments(a, b, R, eye)
        ua, _ = project(a, R, eye, self.focal, center)
        ub, _ = project(b, R, eye, self.focal, center)
        for i in np.flatnonzero(keep):
            draw.line([tuple(ua[i]), tuple(ub[i])], fill=_GRID_MAJOR if major[i] else _GRID, width=_SS)

    def _trajectory(self, draw: ImageDraw.ImageDraw, R: np.ndarray, eye: np.ndarray, center: tuple[float, float],
                    track: Track, index: np.ndarray, k: int, slot: int) -> None:  # fmt: skip
        ground = track.joints[:, 0].copy()
        ground[:, 2] = 0.0
        uv, depth = project(ground, R, eye, self.focal, center)
        now = int(index[k])
        colour = _PALETTES[slot % len(_PALETTES)][2]
        faint = tuple(int(0.35 * c + 0.65 * g) for c, g in zip(colour, _BACKGROUND, strict=True))
        visible = depth > 0.05
        for part, fill, width in ((slice(now, None), faint, _SS), (slice(0, now + 1), colour, 2 * _SS)):
            pts = uv[part][visible[part]]
            if len(pts) >= 2:
                draw.line([tuple(p) for p in pts], fill=fill, width=width, joint="curve")

    def _text(self, draw: ImageDraw.ImageDraw, k: int, time: float) -> None:
        size = max(10, self.view.height // 28) * _SS
        font = _font(size)
        pad = 8 * _SS
        y = pad
        for slot, track in self.tracks:
            if not track.label:
                continue
            x = pad
            if slot in self._as_mesh:  # a swatch of the mesh's own colour keys the label
                mesh_colour = _MESH_COLOURS[slot % len(_MESH_COLOURS)]
                draw.rectangle([x, y + size // 8, x + size * 3 // 4, y + size * 7 // 8], fill=mesh_colour,
                               outline=_TEXT)  # fmt: skip
                x += size
                colour = _TEXT
            else:
                colour = _PALETTES[slot % len(_PALETTES)][0] if len(self.tracks) > 1 else _TEXT
            draw.text((x, y), track.label, fill=colour, font=font)
            y += int(size * 1.25)
        first = self.tracks[0][1]
        frame = int(self.index[0][k])
        counter = f"frame {frame + 1}/{len(first.joints)}   {time:6.2f} s   {first.fps:g} fps"
        draw.text((pad, self.view.height * _SS - pad - size), counter, fill=_TEXT, font=font)


def render_frames(
    tracks: Sequence[Track], times: np.ndarray, view: View | None = None
) -> Iterator[np.ndarray]:
    """``(H, W * panels, 3)`` uint8 frames at the instants ``times`` (seconds): one panel per track side by side,
    or all tracks in one panel with ``view.overlay``. Each track shows its frame nearest each instant."""
    view = view or View()
    numbered = list(enumerate(tracks))
    # side by side every panel keeps the same colours (left blue, right orange), so a mirror shows as a swap
    panels = (
        [_Panel(numbered, times, view)] if view.overlay else [_Panel([(0, t)], times, view) for t in tracks]
    )
    for k, time in enumerate(times):
        images = [panel.draw(k, float(time)) for panel in panels]
        yield np.concatenate([np.asarray(im) for im in images], axis=1)
