"""Lit, shaded body meshes from a real offscreen OpenGL renderer (moderngl): EGL first (the GPU where there is one,
Mesa's llvmpipe software driver otherwise, no display needed), then moderngl's default backend. Where no context
can be made, :func:`gl_renderer` returns None and the caller draws the skeleton instead (logged once).

The camera is the skeleton renderer's pinhole (see :mod:`amasskit.viz._render`), turned into an OpenGL projection,
so meshes, grid and trajectory line up.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ..errors import RenderError

__all__ = ["GLRenderer", "MeshSource", "gl_renderer", "vertex_normals"]

logger = logging.getLogger(__name__)

_VERTEX = """
#version 330
uniform mat4 view;        // world -> OpenGL eye coordinates
uniform mat4 projection;
in vec3 in_position;
in vec3 in_normal;
out vec3 v_normal;
out vec3 v_eye;
void main() {
    vec4 eye = view * vec4(in_position, 1.0);
    v_eye = eye.xyz;
    v_normal = mat3(view) * in_normal;
    gl_Position = projection * eye;
}
"""
_FRAGMENT = """
#version 330
uniform vec3 colour;
in vec3 v_normal;
in vec3 v_eye;
out vec4 f_colour;
void main() {
    vec3 n = normalize(v_normal);
    vec3 to_eye = normalize(-v_eye);
    if (dot(n, to_eye) < 0.0) n = -n;                       // two-sided
    vec3 key = normalize(vec3(-0.4, 0.7, 0.6));             // eye space: upper left, towards the viewer
    vec3 fill = normalize(vec3(0.6, 0.1, 0.4));
    float diffuse = 0.65 * max(dot(n, key), 0.0) + 0.25 * max(dot(n, fill), 0.0);
    float specular = 0.18 * pow(max(dot(n, normalize(key + to_eye)), 0.0), 24.0);
    f_colour = vec4(colour * (0.28 + diffuse) + vec3(specular), 1.0);
}
"""


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """``(V, 3)`` unit normals: the area-weighted sum of the normals of the faces around each vertex."""
    v = np.asarray(vertices, dtype=np.float64)
    face_normals = np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]])
    normals = np.zeros_like(v)
    for k in range(3):
        np.add.at(normals, faces[:, k], face_normals)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


class MeshSource:
    """Vertices of a sequence's frames from its body model, computed on demand in chunks and kept per chunk."""

    def __init__(self, model: Any, seq: Any, *, chunk: int = 64) -> None:
        self.model, self.seq, self.chunk = model, seq, chunk
        self.faces = model.faces.cpu().numpy().astype(np.int64)
        self._cached: tuple[int, np.ndarray] | None = None

    def vertices(self, frame: int) -> np.ndarray:
        """``(V, 3)`` vertices of frame ``frame``, Z-up world."""
        import torch

        start = frame - frame % self.chunk
        if self._cached is None or self._cached[0] != start:
            with torch.no_grad():
                part = self.seq[start : start + self.chunk]
                self._cached = (start, torch.cat(list(self.model.sequence_vertices(part))).cpu().numpy())
        return self._cached[1][frame - start]


def _view_matrix(rotation: np.ndarray, eye: np.ndarray) -> np.ndarray:
    """World -> OpenGL eye coordinates (x right, y up, looking down -z) from the pinhole's rows (right, down,
    forward)."""
    flip = np.diag([1.0, -1.0, -1.0])
    R = flip @ rotation
    view = np.eye(4)
    view[:3, :3] = R
    view[:3, 3] = -R @ eye
    return view


def _projection(focal: float, width: int, height: int, near: float = 0.05, far: float = 100.0) -> np.ndarray:
    """The pinhole with focal length ``focal`` px and the principal point at the image centre, as an OpenGL
    projection."""
    P = np.zeros((4, 4))
    P[0, 0] = 2 * focal / width
    P[1, 1] = 2 * focal / height
    P[2, 2] = -(far + near) / (far - near)
    P[2, 3] = -2 * far * near / (far - near)
    P[3, 2] = -1.0
    return P


class GLRenderer:
    """An offscreen framebuffer of ``width x height`` and the shading program.

    Raises:
        RenderError: no OpenGL context could be made (no EGL, no display, no moderngl).
    """

    def __init__(self, width: int, height: int) -> None:
        try:
            import moderngl
        except ImportError:
            raise RenderError("meshes need moderngl: pip install 'amasskit[render]'") from None
        errors = []
        self.ctx: Any = None
        create: Any = moderngl.create_standalone_context  # its stubs type ``backend`` wrongly
        for backend in ("egl", None):
            try:
                self.ctx = create(backend=backend) if backend else create()
                break
            except Exception as exc:  # each backend fails in its own way (missing library, no display, ...)
                errors.append(f"{backend or 'default'}: {exc}")
        if self.ctx is None:
            raise RenderError("no OpenGL context for meshes (" + "; ".join(errors) + ")")
        self.width, self.height = width, height
        self.program = self.ctx.program(vertex_shader=_VERTEX, fragment_shader=_FRAGMENT)
        self.fbo = self.ctx.framebuffer(
            color_attachments=[self.ctx.renderbuffer((width, height), 4)],
            depth_attachment=self.ctx.depth_renderbuffer((width, height)),
        )
        self.renderer_name = str(self.ctx.info.get("GL_RENDERER", "?"))

    def draw(
        self,
        meshes: list[tuple[np.ndarray, np.ndarray, tuple[int, int, int]]],
        rotation: np.ndarray,
        eye: np.ndarray,
        focal: float,
    ) -> np.ndarray:
        """``(H, W, 4)`` uint8 RGBA of ``meshes`` (``(vertices (V, 3), faces (F, 3), colour RGB)`` each) seen from
        the pinhole camera ``(rotation, eye, focal)``; alpha 0 where no mesh is."""
        self.fbo.use()
        self.ctx.enable(self.ctx.DEPTH_TEST)
        self.fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
        self.program["view"].write(_view_matrix(rotation, eye).T.astype("f4").tobytes())
        self.program["projection"].write(_projection(focal, self.width, self.height).T.astype("f4").tobytes())
        for vertices, faces, colour in meshes:
            normals = vertex_normals(vertices, faces)
            data = np.concatenate([vertices, normals], axis=1).astype("f4")
            vbo = self.ctx.buffer(data.tobytes())
            ibo = self.ctx.buffer(np.asarray(faces, dtype="i4").tobytes())
            vao = self.ctx.vertex_array(self.program, [(vbo, "3f 3f", "in_position", "in_normal")], ibo)
            self.program["colour"].value = tuple(c / 255 for c in colour)
            vao.render()
            vao.release()
            vbo.release()
            ibo.release()
        pixels = np.frombuffer(self.fbo.read(components=4), dtype=np.uint8).reshape(
            self.height, self.width, 4
        )
        return pixels[::-1].copy()  # OpenGL's rows run bottom to top

    def release(self) -> None:
        self.fbo.release()
        self.program.release()
        self.ctx.release()


_RENDERERS: dict[tuple[int, int], GLRenderer | None] = {}


def gl_renderer(width: int, height: int) -> GLRenderer | None:
    """A renderer of that size (one per size per process), or None where OpenGL is not available (logged once)."""
    key = (width, height)
    if key not in _RENDERERS:
        try:
            _RENDERERS[key] = GLRenderer(width, height)
            logger.info("meshes drawn with OpenGL on %s", _RENDERERS[key].renderer_name)  # type: ignore[union-attr]
        except RenderError as exc:
            logger.warning("%s; drawing the skeleton instead", exc)
            _RENDERERS[key] = None
    return _RENDERERS[key]
