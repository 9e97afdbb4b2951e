"""An interactive viewer in the browser (viser): play and pause, a frame slider, previous/next, speed, loop, sequence
selection, skeleton or mesh, a second sequence drawn with the first (overlaid or beside it: a file and its
conversion), and per-frame facts (a converted file's error at the shown frame; a pose prior's distance of the shown
pose, in its own read-only field, for the outputs of ``amasskit prior`` and the projection steps of
``SAMPLES.npz#N``). Binds to localhost unless told otherwise.

The playback state (which sequence, frame, playing, speed, loop) lives in :class:`Viewer` and advances by
:meth:`Viewer.advance`, a plain function of elapsed time, so it is tested without a browser; a daemon thread calls it
while the server runs.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..errors import RenderError
from ._render import PRIOR_DISTANCE, Track
from ._skeleton import joint_sides

__all__ = ["Viewer"]

logger = logging.getLogger(__name__)

_SPEEDS = ("0.25x", "0.5x", "1x", "2x", "4x")
_LEFT, _RIGHT, _CENTRE = (47, 111, 208), (222, 92, 50), (64, 68, 76)
_BODY, _COMPARED = (
    (168, 184, 206),
    (214, 150, 120),
)  # the shown track's mesh; the compared track (mesh and bones)
_LAYOUTS = ("overlaid", "side by side")


class Viewer:
    """Serve ``tracks`` at ``http://host:port`` (see the module docstring).

    Args:
        tracks: what to show; one at a time, picked in the "sequence" dropdown.
        host: the address to bind (default localhost only).
        port: the port (0: any free one; :attr:`url` says which).
        mesh: show tracks that have a body model as meshes (else their joints as a skeleton).
        autoplay: run the thread that advances playback in real time (off: call :meth:`advance` yourself).
        allow_origins: more origins whose pages may open the viewer's websocket (``"*"``: any). By default only
            pages served by the viewer itself may (a page of another site open in the same browser cannot drive or
            read the viewer); clients that send no ``Origin`` (not browsers) are let in.
        compare: a track drawn with the shown one at the same instant (the "compare with" control; None: none).
        side_by_side: the compared track 1.2 m beside the shown one (else overlaid, in another colour).

    The port actually bound (viser moves to the next free one when the asked one is taken) is :attr:`port`, and
    :attr:`url` uses it. Binding an address other than loopback logs a warning: anyone who can reach it can watch.

    Raises:
        RenderError: viser is not installed (``pip install 'amasskit[view]'``) or there is nothing to show.
    """

    def __init__(
        self,
        tracks: Sequence[Track],
        *,
        host: str = "127.0.0.1",
        port: int = 8080,
        mesh: bool = True,
        autoplay: bool = True,
        allow_origins: Sequence[str] = (),
        compare: int | None = None,
        side_by_side: bool = False,
    ) -> None:
        try:
            import viser
        except ImportError:
            raise RenderError("the viewer needs viser: pip install 'amasskit[view]'") from None
        if not tracks:
            raise RenderError("nothing to view")
        self.tracks = list(tracks)
        self.current, self.frame, self.playing, self.speed, self.loop = 0, 0, False, 1.0, True
        self._position = 0.0  # fractional frame while playing
        self._lock = threading.RLock()
        self._stop = threading.Event()
        if port == 0:
            port = _free_port(host)
        loopback = _is_loopback(host)
        if not loopback:
            logger.warning("the viewer binds %s: anyone who can reach this machine on that address can watch; "
                           "use --host 127.0.0.1 to serve this machine only", host)  # fmt: skip
        origins: list[Any] = [None]  # filled in once the port is known: websockets reads it at each handshake
        with _origin_checked(None if "*" in allow_origins else origins):
            self.server = viser.ViserServer(host=host, port=port, verbose=False)
        self.host, self.port = host, int(self.server.get_port())
        if self.port != port:
            logger.warning("port %d is taken: the viewer serves on port %d", port, self.port)
        # pages of the viewer itself: loopback names, and any name of this machine when it binds another address
        hosts = "|".join(re.escape(n) for n in ("127.0.0.1", "localhost", "[::1]"))
        if not loopback:
            hosts += r"|[^/:\[\]]+|\[[0-9a-fA-F:.]+\]"
        origins.append(re.compile(rf"https?://(?:{hosts}):{self.port}"))
        origins.extend(allow_origins)
        scene, gui = self.server.scene, self.server.gui
        scene.set_up_direction("+z")  # AMASS is Z-up
        scene.add_grid("/ground", width=30.0, height=30.0, plane="xy", cell_size=0.5, section_size=1.0)
        labels = [t.label or f"sequence {i}" for i, t in enumerate(self.tracks)]
        self._labels = labels
        self.gui_sequence = gui.add_dropdown("sequence", labels, initial_value=labels[0])
        self.gui_play = gui.add_button("Play", hint="play or pause (the frame slider moves with it)")
        self.gui_previous = gui.add_button("< previous", hint="one frame (or projection step) back")
        self.gui_next = gui.add_button("next >", hint="one frame (or projection step) on")
        self.gui_frame = gui.add_slider("frame", min=0, max=max(1, len(self.tracks[0].joints) - 1), step=1,
                                        initial_value=0)  # fmt: skip
        self.gui_speed = gui.add_dropdown("speed", _SPEEDS, initial_value="1x")
        self.gui_loop = gui.add_checkbox("loop", True)
        has_mesh = any(t.mesh is not None for t in self.tracks)
        self.gui_draw = gui.add_dropdown("draw", ("mesh", "skeleton") if has_mesh else ("skeleton",),
                                         initial_value="mesh" if has_mesh and mesh else "skeleton")  # fmt: skip
        self.gui_compare = gui.add_dropdown("compare with", ("none", *labels), initial_value="none")
        self.gui_layout = gui.add_dropdown("layout", _LAYOUTS, initial_value=_LAYOUTS[int(side_by_side)])
        self.gui_distance = gui.add_text("distance to manifold", initial_value="-", disabled=True,
                                         hint="the pose prior's distance of the shown pose (read-only)")  # fmt: skip
        self.gui_facts = gui.add_markdown("")
        self.compared: int | None = None
        self.drawn: dict[str, np.ndarray | None] = {}  # scene node -> the points or vertices last drawn there

        @self.gui_play.on_click
        def _(_: Any) -> None:
            self.toggle()

        @self.gui_previous.on_click
        def _(_: Any) -> None:
            self.step(-1)

        @self.gui_next.on_click
        def _(_: Any) -> None:
            self.step(1)

        @self.gui_frame.on_update
        def _(_: Any) -> None:
            with self._lock:
                if int(self.gui_frame.value) != self.frame:
                    self.frame = int(self.gui_frame.value)
                    self._position = float(self.frame)
                    self.show()

        @self.gui_sequence.on_update
        def _(_: Any) -> None:
            self.select(self._labels.index(self.gui_sequence.value))

        @self.gui_speed.on_update
        def _(_: Any) -> None:
            self.speed = float(self.gui_speed.value.rstrip("x"))

        @self.gui_loop.on_update
        def _(_: Any) -> None:
            self.loop = bool(self.gui_loop.value)

        @self.gui_draw.on_update
        def _(_: Any) -> None:
            self.show()

        @self.gui_compare.on_update
        def _(_: Any) -> None:
            value = self.gui_compare.value
            self.compare_with(None if value == "none" else self._labels.index(value))

        @self.gui_layout.on_update
        def _(_: Any) -> None:
            self.show()

        if compare is not None:
            self.compare_with(compare)

        self._aim_camera()
        self.show()
        self._thread = threading.Thread(target=self._play_loop, name="amasskit-viewer", daemon=True)
        if autoplay:
            self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- state (tested without a browser)
    def select(self, index: int) -> None:
        """Show track ``index`` from its first frame."""
        with self._lock:
            self.current, self.frame, self._position = index, 0, 0.0
            self.gui_frame.max = max(1, len(self.tracks[index].joints) - 1)
            self.gui_frame.value = 0  # type: ignore[misc]
            self._aim_camera()
            self.show()

    def compare_with(self, index: int | None) -> None:
        """Also draw track ``index`` (None: none) at the same instant as the current one, overlaid in another colour
        or beside it (the "layout" control): a motion file and its conversion, a clip and its augmentation."""
        with self._lock:
            if index is not None and not 0 <= index < len(self.tracks):
                raise RenderError(f"no track {index} to compare with ({len(self.tracks)} tracks)")
            self.compared = index
            self.gui_compare.value = "none" if index is None else self._labels[index]  # type: ignore[misc]
            self.show()

    def step(self, delta: int) -> int:
        """Show the frame ``delta`` frames on (negative: back), kept within the track; pauses. Returns it."""
        with self._lock:
            if self.playing:
                self.toggle()
            last = len(self.tracks[self.current].joints) - 1
            self.frame = min(max(self.frame + delta, 0), last)
            self._position = float(self.frame)
            self.gui_frame.value = self.frame  # type: ignore[misc]
            self.show()
            return self.frame

    def toggle(self) -> None:
        """Play or pause."""
        with self._lock:
            self.playing = not self.playing
            self.gui_play.label = "Pause" if self.playing else "Play"

    def advance(self, seconds: float) -> int:
        """Move playback on by ``seconds`` of wall time (times speed, at the track's rate); at the end, wrap with
        ``loop`` or stop playing. Returns the frame shown."""
        with self._lock:
            track = self.tracks[self.current]
            if not self.playing:
                return self.frame
            last = len(track.joints) - 1
            self._position += seconds * self.speed * track.fps
            if self._position > last:
                if self.loop and last > 0:
                    self._position %= last + 1
                else:
                    self._position = float(last)
                    self.toggle()
            frame = int(self._position)
            if frame != self.frame:
                self.frame = frame
                self.gui_frame.value = frame  # type: ignore[misc]  # settable at run time; stubs say otherwise
                self.show()
            return self.frame

    # -- drawing
    def show(self) -> None:
        """Draw the current frame of the current track (and of the compared one) and their facts."""
        with self._lock:
            track = self.tracks[self.current]
            k = min(self.frame, len(track.joints) - 1)
            self._draw("/body", track, k, _BODY, np.zeros(3))
            facts = [f"**{track.label or 'sequence'}**", f"frame {k + 1} / {len(track.joints)}",
                     f"time {k / track.fps:.2f} s of {len(track.joints) / track.fps:.2f} s", f"{track.fps:g} fps"]  # fmt: skip
            facts += [f"{key}: {value}" for key, value in track.info.items()]
            facts += [
                f"{key}: {values[k]:.2f}" for key, values in track.per_frame.items() if key != PRIOR_DISTANCE
            ]
            distance = track.per_frame.get(PRIOR_DISTANCE)
            self.gui_distance.value = "-" if distance is None else f"{distance[k]:.5g}"  # type: ignore[misc]
            other = (
                None if self.compared is None or self.compared == self.current else self.tracks[self.compared]
            )
            if other is not None:
                j = min(round(k / track.fps * other.fps), len(other.joints) - 1)  # the same instant
                side = self.gui_layout.value == _LAYOUTS[1]
                self._draw("/compare", other, j, _COMPARED, np.array([1.2 if side else 0.0, 0.0, 0.0]))
                facts += ["", f"**with {other.label or 'sequence'}**" + (" (beside, +1.2 m x)" if side else ""),
                          f"frame {j + 1} / {len(other.joints)}"]  # fmt: skip
                facts += [f"{key}: {values[j]:.2f}" for key, values in other.per_frame.items()]
            else:
                self._hide("/compare")
            self.gui_facts.content = "  \n".join(facts)

    def _draw(
        self, root: str, track: Track, k: int, colour: tuple[int, int, int], offset: np.ndarray
    ) -> None:
        """Frame ``k`` of ``track`` under the scene node ``root``, moved by ``offset``: its mesh or its skeleton."""
        scene = self.server.scene
        if self.gui_draw.value == "mesh" and track.mesh is not None:
            vertices = (track.mesh.vertices(k) + offset).astype(np.float32)
            self.drawn[root] = vertices
            scene.add_mesh_simple(f"{root}/mesh", vertices, track.mesh.faces.astype(np.uint32), color=colour)
            scene.add_line_segments(
                f"{root}/bones", np.zeros((1, 2, 3), np.float32), (0, 0, 0), visible=False
            )
            scene.add_point_cloud(f"{root}/joints", np.zeros((1, 3), np.float32), (0, 0, 0), visible=False)
            return
        joints = track.joints[k] + offset
        pairs = [(p, j) for j, p in enumerate(track.parents) if p >= 0]
        points = np.array([[joints[p], joints[j]] for p, j in pairs], dtype=np.float32)
        self.drawn[root] = points
        if colour == _BODY:
            sides = joint_sides(track.names)
            colours = np.array([[_LEFT if sides[j] > 0 else _RIGHT if sides[j] < 0 else _CENTRE] * 2
                                for _, j in pairs], dtype=np.uint8)  # fmt: skip
        else:
            colours = np.array([[colour] * 2] * len(pairs), dtype=np.uint8)
        scene.add_line_segments(f"{root}/bones", points, colours, thickness=0.05)
        scene.add_point_cloud(f"{root}/joints", joints.astype(np.float32), (40, 40, 40), point_size=0.04,
                              point_shape="circle")  # fmt: skip
        scene.add_mesh_simple(f"{root}/mesh", np.zeros((3, 3), np.float32), np.array([[0, 1, 2]], np.uint32),
                              visible=False)  # fmt: skip

    def _hide(self, root: str) -> None:
        self.drawn[root] = None
        scene = self.server.scene
        scene.add_mesh_simple(f"{root}/mesh", np.zeros((3, 3), np.float32), np.array([[0, 1, 2]], np.uint32),
                              visible=False)  # fmt: skip
        scene.add_line_segments(f"{root}/bones", np.zeros((1, 2, 3), np.float32), (0, 0, 0), visible=False)
        scene.add_point_cloud(f"{root}/joints", np.zeros((1, 3), np.float32), (0, 0, 0), visible=False)

    def _aim_camera(self) -> None:
        track = self.tracks[self.current]
        centre = track.joints[:, 0].mean(axis=0)
        target = np.array([centre[0], centre[1], 0.9])
        self.server.initial_camera.look_at = tuple(target)
        self.server.initial_camera.position = tuple(target + np.array([2.2, -3.2, 0.9]))
        for client in self.server.get_clients().values():
            client.camera.look_at = tuple(target)
            client.camera.position = tuple(target + np.array([2.2, -3.2, 0.9]))

    def _play_loop(self) -> None:
        last = time.perf_counter()
        while not self._stop.wait(1 / 30):
            now = time.perf_counter()
            try:
                self.advance(now - last)
            except Exception:  # a client gone mid-update must not end playback for the others
                logger.exception("viewer update failed")
            last = now

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        self.server.stop()

    def wait(self) -> None:
        """Serve until interrupted (Ctrl-C)."""
        try:
            while not self._stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            self.close()


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@contextlib.contextmanager
def _origin_checked(origins: list[Any] | None) -> Iterator[None]:
    """While viser starts its server, have websockets check each websocket handshake's ``Origin`` against
    ``origins`` (None: no check). viser exposes no option for it, so its call of ``websockets.asyncio.server.serve``
    is wrapped for the duration of its start (it starts the server before ``ViserServer()`` returns)."""
    import websockets.asyncio.server as ws_server

    original = ws_server.serve

    def serve(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("origins", origins)
        return original(*args, **kwargs)

    ws_server.serve = serve  # type: ignore[misc,assignment]
    try:
        yield
    finally:
        ws_server.serve = original  # type: ignore[misc]


def _free_port(host: str) -> int:
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
