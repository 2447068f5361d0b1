"""Device and dtype are decided once, here, and passed down; nothing else names CUDA."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import torch

from mms.errors import MMSError


class DeviceError(MMSError):
    """A --device or --dtype that this machine or torch build cannot give."""

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
          "fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    device = _resolve_device(name)
    if device.type == "cpu":
        keep_freed_memory()
    return device


def _resolve_device(name: str | torch.device) -> torch.device:
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"unknown device {name!r} (use auto, cpu, cuda, cuda:N or mps)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {name!r} requested but CUDA is not available (this torch build: {torch.__version__})")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) is not None
                                     and torch.backends.mps.is_available()):
        raise DeviceError(f"device {name!r} requested but MPS (Apple GPUs) is not available here")
    if device.type not in ("cpu", "cuda", "mps"):
        try:  # xpu, hpu, ...: usable only where this torch build has the backend and a device
            torch.empty(0, device=device)
        except Exception:
            raise DeviceError(f"device {name!r} is not available with this torch build ({torch.__version__})") from None
    return device


@functools.cache
def keep_freed_memory() -> bool:
    """Have glibc's malloc keep freed blocks of up to 128 MB for reuse instead of handing them back to the OS.

    A CPU forward pass allocates and frees tens of MB per operation; by default glibc returns such blocks at
    once, so every new activation costs a page fault per 4 kB (6,000 for one 26 MB HiFi-GAN activation).
    Keeping them made the VITS decoder 1.4-1.5x faster with bit-identical results (docs/performance.md); the
    price is up to 512 MB of freed memory kept by the process. Once per process; skipped where malloc is not
    glibc's, when MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ are set, or with MMS_KEEP_FREED_MEMORY=0."""
    import ctypes
    import platform

    if (platform.system() != "Linux" or platform.libc_ver()[0] != "glibc" or os.environ.get("MMS_KEEP_FREED_MEMORY") == "0"
            or any(k in os.environ for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"))):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    return bool(mallopt(M_MMAP_THRESHOLD, 128 << 20)) and bool(mallopt(M_TRIM_THRESHOLD, 512 << 20))


def default_batch_seconds(device: torch.device) -> float:
    """Padded audio per forward pass. On a CPU batching buys nothing (a single 5 s input already fills the
    matrix units) while padding costs in full: 10 s batches ran 5-15% faster than 30 s ones end to end in
    benchmarks/asr.py's files (2-16 s), and 30 s ones 1.5-2x faster than 200 s ones before that."""
    return 200.0 if device.type == "cuda" else 10.0


# CPU flags (Linux /proc/cpuinfo names) of instructions that compute bfloat16 products natively: AVX512-BF16
# (Intel Cooper Lake and later, AMD Zen 4 and later) and AMX (Intel Sapphire Rapids and later). Without them
# oneDNN emulates bf16 with float32 arithmetic plus conversions: slower than float32, so "auto" stays float32.
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")

# `--dtype auto` picks bfloat16 on such CPUs because it kept the demo model's held-out CER within 0.2 points of
# float32 (the bar), measured with tests/test_demo.py's held-out set; docs/performance.md has the figures
# and tests/test_performance.py re-measures it. Set to False if a model is found where it does not.
CPU_AUTO_BF16 = True


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (or the given text); empty where there is none (macOS, Windows)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):  # x86, ARM
            return set(value.split())
    return set()


def cpu_name() -> str:
    """The CPU's model name (for benchmark reports): /proc/cpuinfo's, else what the platform says."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def native_bf16(flags: set[str]) -> bool:
    return any(flag in flags for flag in NATIVE_BF16_FLAGS)


@functools.cache
def cpu_native_bf16() -> bool:
    """Whether this machine's CPU multiplies bfloat16 natively (read once per process)."""
    return native_bf16(cpu_flags())


def auto_dtype(device: torch.device, cpu_bf16: bool | None = None) -> torch.dtype:
    """What `--dtype auto` means on `device`; `cpu_bf16` overrides the CPU's detected native bf16 (tests).
    MMS_CPU_BF16=0 in the environment keeps float32 on any CPU (exact float32 results by default)."""
    if device.type == "cuda":
        # bf16 keeps fp32's range (no overflow in the 48-layer residual stream); fp16 on older GPUs
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if cpu_bf16 is None:
        cpu_bf16 = os.environ.get("MMS_CPU_BF16", "1") != "0" and cpu_native_bf16()
    if device.type == "cpu" and CPU_AUTO_BF16 and cpu_bf16:
        return torch.bfloat16
    return torch.float32


def precision_name(device="auto", dtype="auto") -> str:
    """Where and in what a model runs, e.g. "cpu bfloat16": what results cached from a run depend on."""
    where = resolve_device(device)
    return f"{where.type} {str(resolve_dtype(dtype, where)).replace('torch.', '')}"


def resolve_dtype(name: str | torch.dtype = "auto", device: torch.device | None = None) -> torch.dtype:
    if isinstance(name, torch.dtype):
        return name
    if name == "auto":
        return auto_dtype(device) if device is not None else torch.float32
    if name not in DTYPES:
        raise DeviceError(f"unknown dtype {name!r} (use auto, float32, float16 or bfloat16)")
    return DTYPES[name]
