"""Whether a zip file's members are intact: torch's checkpoint format is a zip whose members carry CRC-32s that
``torch.load`` never checks, so a flipped byte in the middle of a weight loads as a different weight."""

from __future__ import annotations

import os
import zipfile

__all__ = ["damaged_member"]


def damaged_member(path: str | os.PathLike[str]) -> str | None:
    """The first member of the zip file at ``path`` whose data fails its CRC-32 (or whose header is unreadable), or
    None when every member is intact. A file that is not a zip file has no members to check: None.

    Reads the whole file once (about 10 ms for a 10 MB model).
    """
    if not zipfile.is_zipfile(path):
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        return f"(the zip directory: {exc})"
