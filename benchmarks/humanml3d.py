"""HumanML3D from AMASS: amasskit beside the published procedure and the read floor, in one run.

A synthetic SMPL+H tree holds the files of a random sample of the index's AMASS rows (each file at its sub-dataset's
usual frame rate, long enough for every sampled crop of it plus a random tail, as the release's files are longer than
their crops), with amasskit's synthetic body models; so no licensed file is needed and the crops have the index's own
length distribution.

* amasskit: ``build_humanml3d`` (exact mode) over the whole sample, on every core.
* the published procedure, re-implemented here for timing, one process as the notebooks run: step 1 poses every
  ``int(fps / 20)``-th frame of each file with one full body-model call a frame (vertices and joints, float32, as
  ``raw_pose_processing.ipynb`` calls ``BodyModel`` per frame), step 2 trims, crops and mirrors each row, step 3 turns
  each motion and its mirror into features and ``new_joints`` (amasskit's feature step stands in for
  ``process_file``: the same vectorised algorithm, so this part is not where the two differ). Run on the first
  ``--original-files`` files and scaled per row.
* the read floor: ``np.load`` of every array of every file.

Printed: motions (with their mirrors) and feature frames a second, the ratios, and the whole index's 13,425 AMASS rows
extrapolated per row from the sample.

Usage: ``.venv/bin/python benchmarks/humanml3d.py [--rows 120] [--original-files 8] [--workers N]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from _common import load_every_array, settle

from amasskit.body import BodyModel
from amasskit.catalog import scan
from amasskit.humanml3d import build_humanml3d, features, mirror_joints, read_index, recover_joints
from amasskit.synth import DATASETS, MotionStyle, motion_arrays, write_body_models

AMASS_ROWS = 13425


def write_tree(root: Path, rows: int, seed: int) -> list[tuple[Path, list]]:
    """Files for a random sample of the index's AMASS rows; returns each file with its rows."""
    rng = np.random.default_rng(seed)
    index = [r for r in read_index() if not r.is_humanact12]
    fps_of = {spec.name: spec.fps[0] for spec in DATASETS}
    chosen = [index[i] for i in rng.choice(len(index), size=rows, replace=False)]
    by_file = defaultdict(list)
    for row in chosen:
        by_file[row.source].append(row)
    files = []
    for its_rows in by_file.values():
        dataset, subject, name = its_rows[0].place
        fps = float(fps_of.get(dataset, 120.0))
        stride = int(fps / 20)
        frames = (its_rows[0].trim + max(r.end for r in its_rows) + int(rng.integers(0, 200))) * stride
        arrays = motion_arrays(frames, fps, MotionStyle.draw(rng))
        poses = np.concatenate(
            [
                arrays["root_orient"],
                arrays["pose_body"].reshape(frames, -1),
                arrays["pose_hand"].reshape(frames, -1),
            ],
            axis=1,
        )
        path = root / dataset / subject / f"{name}_poses.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, poses=poses, trans=arrays["trans"], betas=rng.normal(0, 1, 16), dmpls=arrays["dmpls"],
                 gender=np.array(rng.choice(["male", "female"])), mocap_framerate=np.array(fps))  # fmt: skip
        files.append((path, its_rows))
    return files


def published_procedure(files: list[tuple[Path, list]], models: Path) -> tuple[int, int]:
    """Steps 1-3 as the notebooks make them (see the module), every index row of each file; returns (rows, feature
    frames)."""
    bms = {g: BodyModel.load("smplh", g, model_dir=models, dmpl=False) for g in ("male", "female")}
    swap = np.array([[1.0, 0, 0], [0, 0, 1], [0, 1, 0]])
    every_row = defaultdict(list)
    for row in read_index():
        every_row[row.source].append(row)
    motions = frames_out = 0
    for path, rows in files:
        data = np.load(path)
        fps = float(data["mocap_framerate"])
        bm = bms["male" if str(data["gender"]) == "male" else "female"]
        shaped = bm.with_shape(torch.tensor(data["betas"][:10], dtype=torch.float32))
        joints = []
        with torch.no_grad():
            for f in range(0, len(data["trans"]), int(fps / 20)):  # one full call a frame
                pose = torch.tensor(data["poses"][f], dtype=torch.float32)
                posed = shaped.with_pose(root_orient=pose[:3], pose_body=pose[3:66], pose_hand=pose[66:],
                                         trans=torch.tensor(data["trans"][f], dtype=torch.float32))  # fmt: skip
                posed.vertices  # noqa: B018  (the notebook's body model computes the mesh too)
                joints.append(posed.joints.numpy())
        joints = np.dot(np.array(joints), swap)
        for row in every_row[rows[0].source]:
            motion = joints[row.trim :][row.start : row.end].copy()
            if len(motion) < 2:
                continue
            motion[..., 0] *= -1
            for m in (motion, mirror_joints(motion)):
                vecs = features(m[:, :22])
                recover_joints(vecs)
                frames_out += len(vecs)
            motions += 1
    return motions, frames_out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=120)
    parser.add_argument("--original-files", type=int, default=8)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root, models = Path(tmp) / "amass", Path(tmp) / "models"
        write_body_models(models)
        files = write_tree(root, args.rows, args.seed)
        scan(root)
        settle(root)
        paths = [p for p, _ in files]
        t = time.perf_counter()
        load_every_array(paths)
        floor = time.perf_counter() - t

        t = time.perf_counter()
        report = build_humanml3d(root, models, Path(tmp) / "out", workers=args.workers)
        ours = time.perf_counter() - t
        rows_built = report.motions

        subset = files[: args.original_files]
        t = time.perf_counter()
        rows_orig, frames_orig = published_procedure(subset, models)
        original = time.perf_counter() - t

    ours_row, orig_row = ours / rows_built, original / rows_orig
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; torch {torch.__version__}"
    )
    print(f"sample: {args.rows} index rows in {len(files)} files; {rows_built} built, {report.frames:,} feature frames "
          "with the mirrors")  # fmt: skip
    print(f"{'method':<34}{'s':>9}{'motions/s':>12}{'frames/s':>12}{'s/row':>10}")
    print(
        f"{'read floor (np.load, every array)':<34}{floor:>9.2f}{'':>12}{'':>12}{floor / rows_built:>10.4f}"
    )
    print(f"{'amasskit build_humanml3d':<34}{ours:>9.2f}{2 * rows_built / ours:>12.1f}{report.frames / ours:>12.0f}"
          f"{ours_row:>10.4f}")  # fmt: skip
    print(f"{'published procedure (re-impl.)':<34}{original:>9.2f}{2 * rows_orig / original:>12.2f}"
          f"{frames_orig / original:>12.0f}{orig_row:>10.4f}   ({rows_orig} rows, {len(subset)} files)")  # fmt: skip
    print(
        f"amasskit vs published procedure: {orig_row / ours_row:.0f}x; vs read floor: {ours_row / (floor / rows_built):.1f}x"
    )
    print(f"all {AMASS_ROWS:,} AMASS rows, extrapolated per row: amasskit {ours_row * AMASS_ROWS / 60:.1f} min; "
          f"published procedure {orig_row * AMASS_ROWS / 3600:.1f} h")  # fmt: skip


if __name__ == "__main__":
    main()
