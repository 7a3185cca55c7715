"""What the Python benchmarks share: the machine line and the Barabási–Albert graph they run on."""

import os
import platform

import numpy as np


def machine():
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    print(f"machine: {model}, {os.cpu_count()} cores, Python {platform.python_version()}")


def barabasi_albert(n, m, seed):
    """Preferential attachment, every link both ways (as `axonal_core::generate::barabasi_albert`)."""
    rng = np.random.default_rng(seed)
    src = np.empty(2 * m * (n - m), dtype=np.uint32)
    dst = np.empty_like(src)
    repeated = np.empty(2 * m * (n - m) + m, dtype=np.uint32)
    repeated[:m] = np.arange(m)
    filled, at = m, 0
    targets = np.arange(m)
    for v in range(m, n):
        targets = np.unique(targets)
        k = len(targets)
        src[at : at + k], dst[at : at + k] = v, targets
        src[at + k : at + 2 * k], dst[at + k : at + 2 * k] = targets, v
        at += 2 * k
        repeated[filled : filled + k] = targets
        repeated[filled + k : filled + 2 * k] = v
        filled += 2 * k
        targets = repeated[rng.integers(0, filled, m)]
    return src[:at], dst[:at]
