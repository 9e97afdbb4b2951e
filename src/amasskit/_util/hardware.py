"""What the machine does fast."""

from __future__ import annotations

import torch

from ..errors import InvalidArgumentError

__all__ = ["check_memory", "cpu_has_fast_bf16", "memory_available", "torch_device"]


def memory_available() -> int | None:
    """Bytes of memory a new allocation can take now (Linux's ``MemAvailable``; elsewhere the free pages), or None
    where the system does not say."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fp:
            for line in fp:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import os

        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def check_memory(need: int, what: str) -> None:
    """Refuse, before allocating, ``need`` bytes for ``what`` where the machine has less available.

    Raises:
        InvalidArgumentError: the message says what asked for how much, and how much there is.
    """
    have = memory_available()
    if have is not None and need > have:
        raise InvalidArgumentError(f"{what} needs {need / 2**30:,.1f} GiB of memory; this machine has "
                                   f"{have / 2**30:,.1f} GiB available")  # fmt: skip


def torch_device(name: str | torch.device, *, what: str = "device") -> torch.device:
    """``name`` (``cpu``, ``cuda``, ``cuda:N``, ``mps``) as a device this machine has.

    Raises:
        InvalidArgumentError: not a device name, or a device this machine lacks (CUDA without a CUDA build or GPU,
            a GPU index past the last); the message names ``what``.
    """
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise InvalidArgumentError(f"{what} {name!r}: not a device (cpu, cuda or cuda:N)") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise InvalidArgumentError(f"{what} {name!r}: this machine has no CUDA device for torch "
                                       f"{torch.__version__} (use cpu)")  # fmt: skip
        if device.index is not None and device.index >= count:
            raise InvalidArgumentError(
                f"{what} {name!r}: this machine has {count} CUDA device(s), 0-{count - 1}"
            )
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise InvalidArgumentError(f"{what} {name!r}: this machine has no MPS device (use cpu)")
    elif device.type != "cpu":
        raise InvalidArgumentError(f"{what} {name!r}: amasskit runs on cpu, cuda or mps, not {device.type}")
    return device


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 matrices natively (AVX512-BF16: about 4x its float32 products; elsewhere
    torch emulates them, slower than float32)."""
    check = getattr(torch.cpu, "_is_avx512_bf16_supported", None)  # private in torch 2.x: absent means no
    return check is not None and bool(check())
