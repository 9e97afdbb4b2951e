"""The exceptions amasskit raises.

Every error derives from :class:`AmassKitError`, so ``except AmassKitError`` catches all of them; each concrete
class also derives from the builtin a caller would expect (``ValueError``, ``KeyError``, ``FileNotFoundError``), so
code written against plain Python keeps working::

    AmassKitError
    ├── AmassFileError                         a file that cannot be used; carries ``.path``
    │   ├── MotionFileNotFoundError            (FileNotFoundError) no such file
    │   ├── CorruptFileError                   (ValueError) not a zip/npz, truncated, CRC or size mismatch
    │   ├── PickledDataError                   (ValueError) an object array that would need pickle
    │   ├── MissingKeyError                    (KeyError) a required array is absent
    │   ├── ArrayShapeError                    (ValueError) wrong shape or dtype
    │   ├── EmptySequenceError                 (ValueError) zero frames
    │   ├── NonFiniteError                     (ValueError) NaN or infinite values where none may be
    │   ├── InvalidValueError                  (ValueError) a bad scalar: gender, frame rate, model type
    │   ├── NotMotionFileError                 (ValueError) a shape or stage-i file, not a motion
    │   ├── ArchiveError                       (ValueError) an archive that cannot be unpacked as asked
    │   │   ├── CorruptArchiveError            truncated or damaged compression or tar structure
    │   │   ├── HostileArchiveError            a member that would write outside the target, a device file, ...
    │   │   │   └── DecompressionBombError     unpacks to more than the size or ratio limits allow
    │   │   └── ChecksumMismatchError          unpacked contents differ from the release checksum
    │   ├── BodyModelFileError                 (ValueError) a body-model file that is corrupt or inconsistent
    │   ├── TransferFileError                  (ValueError) a deformation-transfer or mask file that cannot be used
    │   ├── StoreError                         (ValueError) a store folder that is incomplete or of unknown format
    │   ├── CheckpointError                    (ValueError) a model checkpoint or config that cannot be loaded
    │   │   └── NotAmasskitModelError          a readable checkpoint of another kind (a released one, ...)
    │   └── KeypointFileError                  (ValueError) a 2D keypoint file (OpenPose JSON) that cannot be used
    ├── BodyModelNotFoundError                 (FileNotFoundError) no body-model file where amasskit looked
    ├── OutputExistsError                      (FileExistsError) an output amasskit may not replace as asked
    ├── BusyError                              (RuntimeError) another amasskit run is writing the same output
    ├── ConfigError                            (ValueError) a config value or file that cannot be used; ``.key``
    │   └── EmptySelectionError                the selection holds no sequence to prepare
    ├── CatalogError                           (ValueError) a catalog database that cannot be used
    ├── SplitSchemeError                       (ValueError) a split scheme that is malformed or unknown
    ├── SequenceError                          (ValueError) arrays that do not form a valid Sequence
    ├── RotationError                          (ValueError) an array that is not of the rotation shape asked for
    ├── InvalidArgumentError                   (ValueError) an argument outside its domain (a shape, a range, a name)
    └── RenderError                            (RuntimeError) a preview that cannot be drawn or written

Messages name the file (where there is one), say what was expected and what was found, and how to fix it.
"""

from __future__ import annotations

import os

__all__ = [
    "AmassFileError",
    "AmassKitError",
    "ArchiveError",
    "ArrayShapeError",
    "BodyModelFileError",
    "BodyModelNotFoundError",
    "BusyError",
    "CatalogError",
    "CheckpointError",
    "ChecksumMismatchError",
    "ConfigError",
    "CorruptArchiveError",
    "CorruptFileError",
    "DecompressionBombError",
    "EmptySelectionError",
    "EmptySequenceError",
    "HostileArchiveError",
    "InvalidArgumentError",
    "InvalidValueError",
    "KeypointFileError",
    "MissingKeyError",
    "MotionFileNotFoundError",
    "NonFiniteError",
    "NotAmasskitModelError",
    "NotMotionFileError",
    "OutputExistsError",
    "PickledDataError",
    "RenderError",
    "RotationError",
    "SequenceError",
    "SplitSchemeError",
    "StoreError",
    "TransferFileError",
]


class AmassKitError(Exception):
    """Root of every error amasskit raises."""


class AmassFileError(AmassKitError):
    """A file amasskit cannot use. ``path`` names it; the message starts with it.

    Args:
        path: the offending file.
        message: what is wrong, without the path.
    """

    def __init__(self, path: str | os.PathLike[str], message: str) -> None:
        self.path = os.fspath(path)
        self.reason = message
        super().__init__(f"{self.path}: {message}")

    def __str__(self) -> str:
        # KeyError's own __str__ would quote the message; every subclass reads the same.
        return f"{self.path}: {self.reason}"

    def __reduce__(self) -> tuple[type, tuple[str, str], dict[str, object]]:
        # Picklable across process pools (the catalog scans in workers), keyword attributes included.
        return (type(self), (self.path, self.reason), dict(self.__dict__))


class MotionFileNotFoundError(AmassFileError, FileNotFoundError):
    """The path does not exist or is not a regular file."""


class CorruptFileError(AmassFileError, ValueError):
    """Not a zip/npz file, truncated, or an array whose stored bytes do not match its header."""


class PickledDataError(AmassFileError, ValueError):
    """An array holds Python objects, which only pickle could read; amasskit never enables pickle."""


class MissingKeyError(AmassFileError, KeyError):
    """A required array is missing from the file. ``key`` names it."""

    def __init__(self, path: str | os.PathLike[str], message: str, *, key: str = "") -> None:
        super().__init__(path, message)
        self.key = key


class ArrayShapeError(AmassFileError, ValueError):
    """An array has the wrong shape or dtype."""


class EmptySequenceError(AmassFileError, ValueError):
    """The motion has zero frames."""


class NonFiniteError(AmassFileError, ValueError):
    """NaN or infinite values in an array that must be finite (poses, translation, shape, frame rate)."""


class InvalidValueError(AmassFileError, ValueError):
    """A scalar field holds a value outside its domain (unknown gender, frame rate <= 0, unknown model type)."""


class NotMotionFileError(AmassFileError, ValueError):
    """The file is a valid AMASS file, but not a motion: ``shape.npz``, ``*_stagei.npz``, ``{gender}_stagei.npz``.

    ``kind`` says what it is (see :class:`amasskit.io.FileKind`). Batch jobs skip these files rather than report them.
    """

    def __init__(self, path: str | os.PathLike[str], message: str, *, kind: str = "") -> None:
        super().__init__(path, message)
        self.kind = kind


class SequenceError(AmassKitError, ValueError):
    """Arrays given to :class:`amasskit.Sequence` that do not fit together (shapes, frame counts, dtypes)."""


class ArchiveError(AmassFileError, ValueError):
    """An archive that cannot be unpacked as asked. Nothing is left outside the target when it is raised."""


class CorruptArchiveError(ArchiveError):
    """The archive is truncated, or its compression or tar structure is damaged."""


class HostileArchiveError(ArchiveError):
    """A member would escape the target (absolute path, ``..``, a link leaving it) or is a device or FIFO.

    The whole archive is refused: a release archive never holds such members.
    """


class DecompressionBombError(HostileArchiveError):
    """The archive unpacks to more than the limits allow (total size, or size relative to the archive): a
    decompression bomb or a sparse member that would fill the disk. Nothing of it is left on disk."""


class ChecksumMismatchError(ArchiveError):
    """The unpacked folder's checksum differs from the release table's."""


class OutputExistsError(AmassKitError, FileExistsError):
    """An output path already holds something amasskit may not replace as asked: a folder amasskit did not write
    (never replaced), or an earlier result that only ``overwrite`` (``--overwrite``) replaces."""


class BusyError(AmassKitError, RuntimeError):
    """Another amasskit run holds the lock of the same output (prepare, unpack). The lock is released when that run
    ends, however it ends, so a killed run never leaves it stuck."""


class ConfigError(AmassKitError, ValueError):
    """A config file that cannot be read, or a config value of the wrong type or outside its range.

    ``key`` names the offending key (empty for the file as a whole); the message says what came and what is allowed.
    """

    def __init__(self, message: str, *, key: str = "") -> None:
        super().__init__(message)
        self.key = key

    def __reduce__(self) -> tuple[type, tuple[str], dict[str, object]]:
        return (type(self), (str(self),), dict(self.__dict__))


class EmptySelectionError(ConfigError):
    """The selection (sub-datasets, splits, gender, model, duration) holds no sequence to prepare."""


class CatalogError(AmassKitError, ValueError):
    """A catalog database that cannot be used (not a catalog, a newer schema, no such catalog)."""


class SplitSchemeError(AmassKitError, ValueError):
    """A split scheme that is unknown or malformed."""


class BodyModelFileError(AmassFileError, ValueError):
    """A body-model file that cannot be used: unreadable, a forbidden pickle, missing keys, shapes that disagree."""


class BodyModelNotFoundError(AmassKitError, FileNotFoundError):
    """No body-model file where amasskit looked. The message lists the places, the expected layout and where the
    models are registered for (amasskit never downloads them)."""


class StoreError(AmassFileError, ValueError):
    """A store folder that is not a complete amasskit store, or one of an unknown format version."""


class RenderError(AmassKitError, RuntimeError):
    """A preview that cannot be written: no encoder for the format asked for, an unknown format, no frames, or an
    input that cannot be drawn."""


class RotationError(AmassKitError, ValueError):
    """An array passed to :mod:`amasskit.rotations` whose trailing shape does not fit the representation asked for,
    or an unknown representation name."""


class ClusterError(AmassKitError, ConnectionError):
    """No Dask scheduler answers at the address given (``--dask``): unreachable, refused, or timed out."""


class InvalidArgumentError(AmassKitError, ValueError):
    """An argument of a library function outside its domain: a pose of the wrong shape for the body model, a
    probability above 1, a frame rate of 0, an unknown option name. The message names the argument."""


class TransferFileError(AmassFileError, ValueError):
    """A deformation-transfer file (``*_deftrafo_setup.pkl`` or its npz form) or a vertex-mask file that cannot be
    used: unreadable, a forbidden pickle, not a sparse matrix, rows that are not barycentric weights, sizes that do not
    fit the models."""


class CheckpointError(AmassFileError, ValueError):
    """A model checkpoint or its config that cannot be used: not a checkpoint, one that would run code to load
    (anything but tensors and plain data), missing or unexpected weights, shapes or a config that do not fit."""


class NotAmasskitModelError(CheckpointError):
    """A readable checkpoint that is not a model amasskit trained (a released Pose-NDF/NRDF checkpoint, or anything
    else): :func:`~amasskit.prior.load_prior` then tries the released kind."""


class KeypointFileError(AmassFileError, ValueError):
    """A 2D keypoint file (OpenPose's JSON) that cannot be used: not JSON, no ``people``, nobody in it, keypoints that
    are not BODY_25's 25 (x, y, confidence) triples of finite numbers."""
