"""The browser viewer: playback state without a browser, then the real page in Debian's headless Chromium driven by
Playwright (the figure is drawn where the body stands, Play advances the frame); the screenshots are kept in
test-artifacts/."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from amasskit.errors import RenderError
from amasskit.viz import Track, Viewer, skeleton_joints, tree_for

ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"


def walk_track(label: str, T: int = 90) -> Track:
    t = np.arange(T) / 30
    root = np.tile([np.pi / 2, 0.0, 0.0], (T, 1))
    pose = np.zeros((T, 21, 3))
    pose[:, 0, 0], pose[:, 1, 0] = -0.6 * np.sin(2 * np.pi * t), 0.6 * np.sin(2 * np.pi * t)
    pose[:, 15, 2], pose[:, 16, 2] = -1.2, 1.2
    trans = np.stack([np.zeros(T), -1.0 * t, np.full(T, 0.95)], axis=1)
    return Track(
        skeleton_joints(root, pose, trans), *tree_for(24), 30.0, label, info={"sub-dataset": "SYNTH"}
    )


@pytest.fixture
def viewer() -> Iterator[Viewer]:
    v = Viewer([walk_track("walk"), walk_track("short", T=10)], port=0)
    yield v
    v.close()


def test_playback_state() -> None:
    viewer = Viewer(
        [walk_track("walk"), walk_track("short", T=10)], port=0, autoplay=False
    )  # advanced by hand
    try:
        _check_playback(viewer)
    finally:
        viewer.close()


def _check_playback(viewer: Viewer) -> None:
    assert viewer.url.startswith("http://127.0.0.1:") and viewer.frame == 0 and not viewer.playing
    assert viewer.advance(1.0) == 0  # paused: nothing moves
    viewer.toggle()
    viewer.speed = 2.0
    frame = viewer.advance(0.5)  # 0.5 s at 2x of 30 fps: 30 frames on
    assert frame == 30 and viewer.gui_frame.value == 30
    viewer.select(1)  # ten frames: the end comes quickly
    assert viewer.frame == 0 and viewer.gui_frame.max == 9
    viewer.loop = False
    assert viewer.playing
    viewer.advance(10.0)
    assert viewer.frame == 9 and not viewer.playing  # no loop: stops on the last frame
    viewer.loop = True
    viewer.toggle()
    viewer._position = 8.0
    assert viewer.advance(0.1) == 4  # frame 8 + 6 frames (2x) wraps round the 10-frame track to frame 4


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it: apt-get install chromium)")
    return path


def test_the_page_draws_the_body_and_play_advances(viewer: Viewer) -> None:
    from io import BytesIO

    from PIL import Image
    from playwright.sync_api import sync_playwright

    def pixels(png: bytes) -> np.ndarray:
        return np.asarray(Image.open(BytesIO(png)).convert("RGB"), dtype=np.int16)

    def regions(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        H, W = img.shape[:2]
        centre = img[int(0.3 * H) : int(0.8 * H), int(0.3 * W) : int(0.6 * W)]  # where the body stands
        corner = img[int(0.85 * H) :, int(0.1 * W) : int(0.3 * W)]  # floor only
        return centre, corner

    def body(img: np.ndarray) -> int:  # bones (saturated blue/orange) and joints (near black)
        saturation = img.max(axis=2) - img.min(axis=2)
        return int(((saturation > 60) | (img.max(axis=2) < 70)).sum())

    def moved(a: np.ndarray, b: np.ndarray) -> int:
        return int(np.abs(regions(a)[0] - regions(b)[0]).max(axis=2).astype(bool).sum())

    def screenshot_when(done: Callable[[np.ndarray], bool], path: Path, seconds: float) -> np.ndarray:
        """Screenshots until ``done`` holds (the canvas draws a few frames after the page is there), or time is up;
        the last one is kept in ``path``."""
        deadline = time.monotonic() + seconds
        while True:
            img = pixels(page.screenshot(path=str(path)))
            if done(img) or time.monotonic() > deadline:
                return img
            time.sleep(0.1)

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(), headless=True,
                                    args=["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"])  # fmt: skip
        try:
            page = browser.new_page(viewport={"width": 960, "height": 640})
            page.goto(viewer.url)
            page.wait_for_selector("canvas", timeout=60_000)
            page.get_by_text(re.compile(r"frame 1 / 90")).wait_for(timeout=60_000)  # the facts panel is live
            a = screenshot_when(lambda img: body(regions(img)[0]) > 150, ARTIFACTS / "viewer-paused.png", 20)
            page.get_by_role("button", name="Play").click()
            deadline = time.monotonic() + 20
            while viewer.frame < 10 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert viewer.playing and viewer.frame >= 10  # pressing Play in the page advanced the frame
            page.get_by_text(re.compile(r"frame (1\d|[2-9]\d) / 90")).first.wait_for(timeout=20_000)
            b = screenshot_when(lambda img: moved(a, img) > 100, ARTIFACTS / "viewer-playing.png", 20)
        finally:
            browser.close()
    assert body(regions(a)[0]) > 150, "no figure drawn where the body stands"
    assert body(regions(a)[1]) < 20
    assert moved(a, b) > 100  # the figure moved


def test_cli_view_names_a_bad_input(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from amasskit.cli import app

    (tmp_path / "notes.txt").write_text("not motion")
    result = CliRunner().invoke(app, ["view", str(tmp_path / "notes.txt"), "--port", "0"])
    assert result.exit_code == 1 and "RenderError" in result.output and "notes.txt" in result.output


def _handshake(port: int, origin: str | None) -> bool:
    """Whether the viewer accepts a websocket handshake from a page of ``origin`` (None: no Origin header)."""
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    try:
        with connect(f"ws://127.0.0.1:{port}", origin=origin, open_timeout=10) as ws:  # type: ignore[arg-type]
            ws.close()
    except InvalidStatus as exc:
        status = exc.response.status_code
    else:
        return True
    assert status == 403
    return False


def test_the_real_port_is_reported_and_other_origins_are_refused() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        viewer = Viewer([walk_track("walk", T=10)], port=busy, autoplay=False)
        try:
            assert viewer.port != busy and viewer.url == f"http://127.0.0.1:{viewer.port}"
            assert _handshake(viewer.port, f"http://127.0.0.1:{viewer.port}")
            assert _handshake(viewer.port, f"http://localhost:{viewer.port}")
            assert _handshake(viewer.port, None)  # not a browser: no page to forge
            assert not _handshake(viewer.port, "http://evil.example")
            assert not _handshake(viewer.port, f"http://evil.example:{viewer.port}")
            assert not _handshake(viewer.port, "http://127.0.0.1:1")
        finally:
            viewer.close()
    allowed = Viewer(
        [walk_track("walk", T=10)], port=0, autoplay=False, allow_origins=("http://lab.example",)
    )
    try:
        assert _handshake(allowed.port, "http://lab.example")
        assert not _handshake(allowed.port, "http://evil.example")
    finally:
        allowed.close()


def test_binding_another_address_warns(caplog: pytest.LogCaptureFixture) -> None:
    viewer = Viewer([walk_track("walk", T=10)], host="0.0.0.0", port=0, autoplay=False)
    try:
        assert "anyone who can reach this machine" in caplog.text
        assert _handshake(viewer.port, f"http://192.0.2.7:{viewer.port}")  # its own page, by another name
        assert not _handshake(viewer.port, "http://evil.example")
    finally:
        viewer.close()


def test_a_second_track_drawn_with_the_first_at_the_same_instant() -> None:
    """A file and its conversion: the compared track is drawn at the shown one's instant (its own frame rate), beside
    it or overlaid, and the per-frame values of both (a conversion's error) follow the frame."""
    walk = walk_track("source")
    half = walk_track("converted", T=45)
    half = Track(half.joints, half.parents, half.names, 15.0, "converted",
                 per_frame={"conversion error (mean, mm)": np.arange(45) / 10})  # fmt: skip
    viewer = Viewer([walk, half], port=0, autoplay=False, compare=1, side_by_side=True)
    try:
        assert viewer.compared == 1 and viewer.gui_compare.value == "converted"
        viewer.gui_frame.value = 30  # type: ignore[misc]  # 1 s at 30 fps: frame 15 of the 15 fps track
        viewer.show()
        facts = viewer.gui_facts.content
        assert "**with converted**" in facts and "frame 16 / 45" in facts
        assert "conversion error (mean, mm): 1.50" in facts
        bones = viewer.drawn["/compare"]
        assert bones is not None
        assert np.allclose(bones[0, 0], half.joints[15][half.parents[1]] + [1.2, 0.0, 0.0], atol=1e-5)
        viewer.compare_with(None)
        assert "with converted" not in viewer.gui_facts.content and viewer.drawn["/compare"] is None
        with pytest.raises(RenderError, match="no track 5"):
            viewer.compare_with(5)
    finally:
        viewer.close()


def test_projection_steps_step_by_step(tmp_path: Path) -> None:
    """`SAMPLES.npz#N` (what `prior sample --keep-steps` writes) is sample N's projection, one frame a step, until it
    stopped; previous/next move a frame and pause, within the track; the read-only field shows the prior's distance
    of the shown step, and a plain track shows none."""
    from amasskit.viz._inputs import load_track

    rng = np.random.default_rng(0)
    history = rng.normal(size=(6, 3, 21, 4))
    history /= np.linalg.norm(history, axis=-1, keepdims=True)
    history[4:, 1] = history[3, 1]  # sample 1 stopped after 3 steps
    distance = np.linspace(1.0, 0.0, 18).reshape(6, 3)
    np.savez(tmp_path / "s.npz", history_quat=history.astype(np.float32), history_distance=distance)
    track = load_track(f"{tmp_path / 's.npz'}#1")
    assert track.joints.shape[0] == 4 and track.info["steps"] == "3"
    viewer = Viewer([track, walk_track("walk", T=10)], port=0, autoplay=False)
    try:
        assert viewer.gui_distance.value == f"{distance[0, 1]:.5g}"
        viewer.toggle()
        assert viewer.step(1) == 1 and not viewer.playing
        assert viewer.gui_distance.value == f"{distance[1, 1]:.5g}" and viewer.gui_frame.value == 1
        assert viewer.step(10) == 3 and viewer.step(-5) == 0
        viewer.select(1)
        assert viewer.gui_distance.value == "-"
    finally:
        viewer.close()
    for spec, message in (
        (f"{tmp_path / 's.npz'}#7", "no sample 7"),
        (f"{tmp_path / 's.npz'}#x", "not a number"),
    ):
        with pytest.raises(RenderError, match=message):
            load_track(spec)
    np.savez(tmp_path / "plain.npz", a=np.zeros(3))
    with pytest.raises(RenderError, match="no projection steps"):
        load_track(f"{tmp_path / 'plain.npz'}#0")
