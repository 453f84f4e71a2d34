"""Batch norm forward+backward: bnbook against ``torch.nn.functional.batch_norm``.

``python -m bnbook.bench batchnorm [--repeats R] [--warmup W] [--threads T]
[--shapes 64x16x28x28,1024x512]``

Both run on the CPU in this process, float32, training mode, interleaved
repetitions, medians. "GB/s" is the effective bandwidth: the five arrays a
fused implementation must move (read x; write y; read x and dy; write dx)
divided by the time. The copy bandwidth measured alongside is the ceiling.
"""
import argparse
import os

import numpy as np

from .. import batchnorm as bn
from .timing import copy_bandwidth, interleaved, median_ms, print_table

SHAPES = [(64, 16, 28, 28), (128, 64, 32, 32), (256, 128, 16, 16), (1024, 512)]


def _contenders(shape, torch, seed=0):
    gen = np.random.default_rng(seed)
    x = gen.standard_normal(shape, dtype=np.float32)
    dy = gen.standard_normal(shape, dtype=np.float32)
    C = shape[1]
    gamma = (1 + 0.1 * gen.standard_normal(C)).astype(np.float32)
    beta = (0.1 * gen.standard_normal(C)).astype(np.float32)
    out = {}

    def ours():
        y, cache = bn.forward(x, gamma, beta)
        out["ours"] = bn.backward(dy, cache)[0]
    funcs = {"bnbook": ours}
    if torch is not None:
        tx = torch.from_numpy(x).requires_grad_(True)
        tg = torch.from_numpy(gamma).requires_grad_(True)
        tb = torch.from_numpy(beta).requires_grad_(True)
        tdy = torch.from_numpy(dy)

        def theirs():
            for t in (tx, tg, tb):
                t.grad = None
            torch.nn.functional.batch_norm(tx, None, None, tg, tb, training=True,
                                           eps=1e-5).backward(tdy)
            out["torch"] = tx.grad
        funcs["torch"] = theirs
    return funcs, out, x.nbytes


def _shapes(text):
    try:
        shapes = [tuple(int(n) for n in item.split("x")) for item in text.split(",")]
    except ValueError:
        shapes = []
    if not shapes or any(len(s) not in (2, 4) or min(s) < 1 for s in shapes):
        raise argparse.ArgumentTypeError(
            f"expected shapes like 64x16x28x28,1024x512 (2-D or 4-D, positive), got {text!r}")
    return shapes


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bnbook.bench batchnorm",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch.set_num_threads (default 1: bnbook's NumPy path runs "
                             "on one thread, so the comparison is at the same count)")
    parser.add_argument("--shapes", type=_shapes, default=SHAPES,
                        help="comma-separated, e.g. 64x16x28x28,1024x512")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        torch = None
        print("PyTorch is not installed: timing bnbook alone (pip install torch)")
    if args.threads < 1:
        parser.error("--threads must be >= 1")
    if torch is not None:
        torch.set_num_threads(args.threads)
    bw = copy_bandwidth()
    rows = []
    for shape in args.shapes:
        funcs, out, nbytes = _contenders(shape, torch)
        t = interleaved(funcs, repeats=args.repeats, warmup=args.warmup)
        ms = median_ms(t["bnbook"])
        row = ["x".join(map(str, shape)), ms, 5 * nbytes / ms / 1e6]
        if torch is not None:
            ms_t = median_ms(t["torch"])
            diff = float(np.max(np.abs(out["ours"] - out["torch"].numpy())))
            best = float(np.min(t["bnbook"]) / np.min(t["torch"]))
            row += [ms_t, 5 * nbytes / ms_t / 1e6, ms / ms_t, best, diff]
        rows.append(row)
    headers = ["shape (float32)", "bnbook ms", "GB/s"]
    if torch is not None:
        headers += ["torch ms", "torch GB/s", "ratio", "ratio of minima", "max|dx diff|"]
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
              f"numpy {np.__version__}, bnbook 1 thread")
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"copy bandwidth: {bw:.1f} GB/s; load average {load} on {os.cpu_count()} CPUs; "
          f"median of {args.repeats} interleaved repetitions; ratio = bnbook / torch "
          f"median time (the ratio of the fastest runs is less sensitive to load)")
    print_table(headers, rows)
    return 0
