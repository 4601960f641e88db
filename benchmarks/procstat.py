"""Process measurements shared by the benchmark's worker scripts (ours and dlt's, which must not import
mfg_pipeline): both run from this folder, so a plain import finds this module."""

from __future__ import annotations

from pathlib import Path


def peak_rss_mb() -> float:
    """This process's high-water RSS (VmHWM). Not getrusage's ru_maxrss: Linux keeps that across exec, so a child
    would report its parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError("no VmHWM in /proc/self/status")
