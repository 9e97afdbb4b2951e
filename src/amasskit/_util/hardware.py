"""What the machine does fast."""

from __future__ import annotations

import torch

__all__ = ["cpu_has_fast_bf16"]


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 matrices natively (AVX512-BF16: about 4x its float32 products; elsewhere
    torch emulates them, slower than float32)."""
    check = getattr(torch.cpu, "_is_avx512_bf16_supported", None)  # private in torch 2.x: absent means no
    return check is not None and bool(check())
