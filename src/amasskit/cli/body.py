"""``amasskit joints`` and ``amasskit mesh``: body models on motion files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import NonFiniteError
from ._app import app, console, handle_errors


@app.command()
def joints(
    sequence: Annotated[Path, typer.Argument(help="An AMASS motion file.")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where to write the joints (.npy, (T, J, 3)).")
    ],
    model_dir: Annotated[
        Path | None, typer.Option(help="Body-model folder (else $AMASSKIT_BODY_MODELS).")
    ] = None,
    float64: Annotated[bool, typer.Option("--float64", help="Compute and save in float64.")] = False,
) -> None:
    """Joint locations of every frame (joints-only forward kinematics; no vertex is computed), in AMASS's Z-up world."""
    import numpy as np
    import torch

    from ..body import BodyModel, write_npy
    from ..io import read

    with handle_errors():
        seq = read(sequence, dtype=np.float64 if float64 else np.float32)
        model = BodyModel.for_sequence(
            seq, model_dir=model_dir, dtype=torch.float64 if float64 else torch.float32
        )
        with torch.inference_mode():
            positions = model.sequence_joints(seq).numpy()
        if not np.isfinite(positions).all():
            raise NonFiniteError(
                sequence, f"joint positions are not finite in {positions.dtype} (try --float64)"
            )
        write_npy(output, positions)
    console.print(
        f"{output}: joints {positions.shape} ({model.kind.value}, {model.gender.value})", highlight=False
    )


@app.command()
def mesh(
    sequence: Annotated[Path, typer.Argument(help="An AMASS motion file.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Mesh file: .obj or .ply.")],
    frame: Annotated[
        int, typer.Option("--frame", "-f", help="Frame index (negative counts from the end).")
    ] = 0,
    model_dir: Annotated[
        Path | None, typer.Option(help="Body-model folder (else $AMASSKIT_BODY_MODELS).")
    ] = None,
) -> None:
    """The posed mesh of one frame as OBJ or PLY, to open in any mesh viewer."""
    import torch

    if output.suffix.lower() not in (".obj", ".ply"):
        raise typer.BadParameter(f"{output}: the mesh is written as .obj or .ply")

    from ..body import BodyModel, write_mesh
    from ..io import read

    with handle_errors():
        seq = read(sequence)
        try:
            one = seq[frame]
        except IndexError as exc:
            raise typer.BadParameter(str(exc)) from None
        model = BodyModel.for_sequence(seq, model_dir=model_dir)
        with torch.inference_mode():
            vertices = next(model.sequence_vertices(one))[0].numpy()
        write_mesh(output, vertices, model.faces.numpy())
    shown = frame % seq.num_frames  # -1 is the last frame: say which
    console.print(
        f"{output}: frame {shown} of {seq.num_frames}, {len(vertices)} vertices, {len(model.faces)} faces",
        highlight=False,
    )
