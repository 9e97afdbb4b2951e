"""OpenPose's JSON output (BODY_25 keypoints per person, version 1.3 layout): read one person, write people."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .._util.atomic import atomic_open
from .._util.paths import user_path
from ..errors import KeypointFileError

__all__ = ["read_openpose", "write_openpose"]


def read_openpose(path: str | os.PathLike[str], *, person: int | None = None) -> np.ndarray:
    """The BODY_25 keypoints ``(25, 3)`` (x, y in pixels; confidence) of one person in an OpenPose JSON file: the
    one given by index, else the most confident (largest summed confidence).

    Raises:
        KeypointFileError: not JSON, no ``people``, nobody in it, keypoints that are not 25 triples of numbers, a
            person index out of range.
    """
    path = user_path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KeypointFileError(path, "no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KeypointFileError(path, f"not an OpenPose JSON file ({exc})") from None
    except RecursionError:  # nesting deeper than the parser's stack: no OpenPose file is
        raise KeypointFileError(path, "not an OpenPose JSON file (nested too deeply)") from None
    people = data.get("people") if isinstance(data, dict) else None
    if not isinstance(people, list):
        raise KeypointFileError(path, "no 'people' list: not OpenPose's JSON output")
    if not people:
        raise KeypointFileError(path, "nobody detected (an empty 'people' list)")
    found = []
    for i, entry in enumerate(people):
        values = entry.get("pose_keypoints_2d") if isinstance(entry, dict) else None
        try:
            kp = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError):
            raise KeypointFileError(path, f"person {i}: pose_keypoints_2d is not a list of numbers") from None
        if kp.shape != (75,):
            raise KeypointFileError(
                path,
                f"person {i}: pose_keypoints_2d is of shape {kp.shape}; BODY_25's is a flat "
                "list of 75 numbers (25 x, y, confidence triples)",
            )
        if not np.isfinite(kp).all():
            raise KeypointFileError(path, f"person {i}: keypoints that are not finite")
        found.append(kp.reshape(25, 3))
    if person is not None:
        if not 0 <= person < len(found):
            raise KeypointFileError(path, f"person {person} asked for, {len(found)} in the file")
        return found[person]
    return max(found, key=lambda kp: float(kp[:, 2].sum()))


def write_openpose(path: str | os.PathLike[str], keypoints: np.ndarray) -> Path:
    """One OpenPose JSON file (version 1.3 layout) with one person per ``(25, 3)`` row of ``keypoints``."""
    kp = np.asarray(keypoints, dtype=np.float64).reshape(-1, 25, 3)
    people = [
        {
            "person_id": [-1],
            "pose_keypoints_2d": [float(v) for v in p.reshape(-1)],
            "face_keypoints_2d": [],
            "hand_left_keypoints_2d": [],
            "hand_right_keypoints_2d": [],
        }
        for p in kp
    ]
    with atomic_open(path) as fp:
        fp.write(json.dumps({"version": 1.3, "people": people}).encode())
    return Path(path)
