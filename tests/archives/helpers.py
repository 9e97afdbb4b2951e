"""Tar archives written member by member, hostile ones included, for the unpack tests."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path


def make_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]], mode: str = "w:bz2") -> Path:
    with tarfile.open(path, mode) as tar:  # type: ignore[call-overload]
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    return info


def good_members() -> list[tuple[tarfile.TarInfo, bytes | None]]:
    return [(member("CMU", tarfile.DIRTYPE), None), (member("CMU/01/a_poses.npz"), b"abc" * 1000)]
