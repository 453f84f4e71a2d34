"""Timing helpers shared by the benchmarks.

The machines this runs on are often shared, so every comparison is
*interleaved*: one call of each contender per round, in rotating order, and
the median over rounds is reported. Load then slows all contenders alike
instead of whichever happened to run during a busy second.
"""
import sys
import time

import numpy as np


def interleaved(funcs, repeats=15, warmup=2):
    """Time ``funcs`` (a dict name -> zero-argument callable) round by round.

    Each round calls every function once; the order rotates between rounds.
    Returns a dict name -> array of ``repeats`` wall-clock times in seconds.
    """
    if not funcs:
        raise ValueError("funcs is empty: expected a dict name -> callable")
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got {repeats}, {warmup}")
    names = list(funcs)
    for _ in range(warmup):
        for name in names:
            funcs[name]()
    times = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            t0 = time.perf_counter()
            funcs[name]()
            times[name].append(time.perf_counter() - t0)
    return {name: np.asarray(t) for name, t in times.items()}


def median_ms(times):
    """Median of an array of seconds, in milliseconds."""
    return float(np.median(times)) * 1e3


def copy_bandwidth(nbytes=1 << 26, repeats=9):
    """Measured memory bandwidth of a large array copy, in GB/s (1e9 bytes/s).

    A copy reads and writes ``nbytes`` each, so ``2 * nbytes`` move per call.
    The array (64 MiB by default) is larger than the caches.
    """
    src = np.ones(nbytes // 4, dtype=np.float32)
    dst = np.empty_like(src)
    t = interleaved({"copy": lambda: np.copyto(dst, src)}, repeats=repeats, warmup=1)
    return 2 * src.nbytes / float(np.median(t["copy"])) / 1e9


def format_table(headers, rows):
    """Rows of cells (str, int or float) as an aligned plain-text table."""
    def cell(v):
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1e-2 and v != 0 else f"{v:.2f}"
        return str(v)
    cells = [[cell(v) for v in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = "  ".join(str(h).rjust(w) for h, w in zip(headers, widths))
    out = [line, "-" * len(line)]
    out += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    return "\n".join(out)


def print_table(headers, rows, file=None):
    """Print :func:`format_table` to ``file`` (stdout by default)."""
    print(format_table(headers, rows), file=file or sys.stdout)
