"""``amasskit render`` and ``amasskit view``: previews and the browser viewer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._app import app, console, handle_errors, progress_bar


def _frame_range(text: str | None) -> tuple[int | None, int | None] | None:
    if not text:
        return None
    start, sep, stop = text.partition(":")
    try:
        return (
            (int(start) if start else None, int(stop) if stop else None)
            if sep
            else (int(start), int(start) + 1)
        )
    except ValueError:
        raise typer.BadParameter(f"frames as A:B (either may be left out), not {text!r}") from None


@app.command()
def render(
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="AMASS .npz files, stores (STORE or STORE#N for sequence N) or joints .npy (T, J, 3)."
        ),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="The video: .mp4 (needs ffmpeg) or .gif.")],
    model_dir: Annotated[
        Path | None,
        typer.Option(
            help="Body-model folder: draw the model's lit mesh (the model's joints with --no-mesh) instead of the "
            "built-in skeleton."
        ),
    ] = None,
    frames: Annotated[
        str | None, typer.Option(help="Frames A:B of the first input (its frame rate sets the span for all).")
    ] = None,
    fps: Annotated[
        float | None, typer.Option(help="Video frame rate (default: the first input's, capped).")
    ] = None,
    label: Annotated[list[str] | None, typer.Option(help="A label per input (repeat the option).")] = None,
    overlay: Annotated[
        bool, typer.Option(help="Draw every input in one panel instead of side by side.")
    ] = False,
    mesh: Annotated[
        bool, typer.Option(help="With --model-dir: the lit mesh (OpenGL offscreen); else the model's joints.")
    ] = True,
    size: Annotated[int, typer.Option(min=64, help="Panel width and height, pixels.")] = 480,
) -> None:
    """Render motion to a video: the skeleton, a ground grid in AMASS's Z-up world, the root's trajectory and a
    camera that follows the subject; several inputs side by side (or overlaid) with labels, time and frame."""
    from ..viz import View
    from ..viz import render as render_video

    with handle_errors(), progress_bar() as bar:
        task = bar.add_task(f"rendering {output.name}", total=None)
        written = render_video(
            inputs, output, model_dir=model_dir, frames=_frame_range(frames), fps=fps, labels=label,
            view=View(width=size, height=size, overlay=overlay, mesh=mesh),
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )  # fmt: skip
    console.print(f"{written}: {len(inputs)} input(s) rendered", highlight=False)


@app.command()
def view(
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="AMASS .npz files, stores (STORE or STORE#N for sequence N) or joints .npy (T, J, 3)."
        ),
    ],
    model_dir: Annotated[
        Path | None, typer.Option(help="Body-model folder: show meshes (and the model's joints).")
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address to bind; the default serves this machine only.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: any free one).")] = 8080,
    label: Annotated[list[str] | None, typer.Option(help="A label per input (repeat the option).")] = None,
    allow_origin: Annotated[
        list[str] | None,
        typer.Option(help="Also let pages of this origin (http://host:port) connect; '*': any (repeatable)."),
    ] = None,
    compare: Annotated[
        bool,
        typer.Option(
            help="Draw the second input with the first (a file and its conversion); changeable in the page."
        ),
    ] = False,
    side_by_side: Annotated[bool, typer.Option(help="With --compare: beside it, not overlaid.")] = False,
) -> None:
    """An interactive viewer in the browser: play and pause, frame slider, speed, loop, sequence selection,
    skeleton or mesh, and per-frame facts. Serves until Ctrl-C."""
    from ..viz import Viewer, load_track

    labels = list(label) if label else [None] * len(inputs)
    if len(labels) != len(inputs):
        raise typer.BadParameter(f"{len(labels)} labels for {len(inputs)} inputs")
    with handle_errors():
        tracks = [
            load_track(spec, model_dir=model_dir, label=name)
            for spec, name in zip(inputs, labels, strict=True)
        ]
        if compare and len(tracks) < 2:
            raise typer.BadParameter("--compare needs two inputs (the second is drawn with the first)")
        viewer = Viewer(tracks, host=host, port=port, allow_origins=tuple(allow_origin or ()),
                        compare=1 if compare else None, side_by_side=side_by_side)  # fmt: skip
    console.print(f"amasskit viewer: open {viewer.url} in a browser (Ctrl-C to stop)", highlight=False)
    viewer.wait()
