"""Ioffe & Szegedy's Figure 1 at full length, into a committed results file.

``python -m bnbook.experiments.ics_fig1 --seeds 0 1 2 --out
results/ics_figure1.json`` trains the Figure 1 MLP without and with BN
(:func:`~bnbook.experiments.ics_fig1.train_fig1`, all seeds at once), each
at the learning rates 1 and 3 (the best rate of one and of the other), for
50,000 steps of batch 60 on the MNIST subset of
:func:`bnbook.experiments.common.flat_mnist`, and writes a small JSON file: the
command, date, library and NumPy versions, facts about the machine, the
settings, and per run (network and rate) the logged summaries of :data:`RUN_KEYS`.
:func:`check_results` is the schema the chapter reads. The file is rewritten
after each run; a stopped command resumes with the runs already there (same
settings), not repeating them.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from . import ics_measures as im
from .results_file import write_results

VARIANTS = ("plain", "bn")
SHARED = (1.0, 3.0)     # default rates of every network: the chapter compares at both


def run_key(variant, lr):
    """The key of one run in ``doc['runs']``: ``'plain@1'``, ``'bn@3'``."""
    return f"{variant}@{lr:g}"
TOP_KEYS = ("command", "date", "bnbook_version", "numpy_version", "machine",
            "settings", "runs")
SETTING_KEYS = ("seeds", "steps", "batch_size", "record_every", "lr",
                "n_train", "n_test", "probe_size", "unit")
# per run: (name, number of values along the step axis)
RUN_KEYS = (("unit_percentiles", "R"), ("median_drift", "R-1"),
            ("relative_drift", "R-1"), ("spread", "R"),
            ("loss", "R-1"), ("test_acc", "R"), ("train_acc", "R"))


def summarize(h, record_every):
    """The logged part of a :func:`train_fig1` result, as JSON-ready lists.

    ``unit_percentiles`` (S, R, 3): the 15th/50th/85th percentiles of unit 0;
    ``median_drift`` (S, R - 1): :func:`ics_measures.median_drift` over all
    units; ``relative_drift`` (S, R - 1): per unit the median's move divided
    by that unit's 85th minus 15th percentile at the later probe, mean over
    units; ``spread`` (S, R): that width, mean over units; ``loss`` (S, R - 1): mean training loss of each ``record_every``
    steps; ``test_acc``, ``train_acc`` (S, R) at the record steps.
    """
    loss = h["loss"].reshape(len(h["loss"]), -1, record_every).mean(2)
    p = h["percentiles"]                                   # (S, R, 3, D)
    width = p[:, :, 2, :] - p[:, :, 0, :]
    rel = (np.abs(np.diff(p[:, :, 1, :], axis=1)) / width[:, 1:]).mean(-1)
    out = dict(unit_percentiles=p[:, :, :, 0],
               median_drift=im.median_drift(p), relative_drift=rel,
               spread=width.mean(-1), loss=loss,
               test_acc=h["test_acc"], train_acc=h["train_acc"])
    five = np.vectorize(lambda x: float(f"{x:.5g}"))   # 5 significant digits
    return {k: five(np.asarray(v, dtype=float)).tolist()
            for k, v in out.items()}


def check_results(doc):
    """Check a results document against the schema the chapter reads; return it.

    ``doc['runs'][run_key(v, lr)]`` for each ``[v, lr]`` of
    ``settings['lr']`` (v in :data:`VARIANTS`) holds the lists of
    :data:`RUN_KEYS`, one row per seed of ``settings['seeds']``, each of R =
    steps / record_every + 1 (or R - 1) values; accuracies in [0, 1].
    Raises ValueError naming the first problem.
    """
    missing = [k for k in TOP_KEYS if k not in doc]
    if missing:
        raise ValueError(f"results: missing top-level keys {missing}")
    s = doc["settings"]
    lacking = [k for k in SETTING_KEYS if k not in s]
    if lacking:
        raise ValueError(f"results: settings lacks {lacking}")
    n_rec = s["steps"] // s["record_every"] + 1
    for variant, lr in s["lr"]:
        v = run_key(variant, lr)
        if variant not in VARIANTS:
            raise ValueError(f"results: network {variant!r} not in {VARIANTS}")
        run = doc["runs"].get(v)
        if run is None:
            raise ValueError(f"results: no run for network {v!r}")
        for key, size in RUN_KEYS:
            want = n_rec - (size == "R-1")
            try:
                a = np.asarray(run.get(key, []), dtype=float)
            except ValueError:
                raise ValueError(f"results: {v}: {key} is ragged (rows of "
                                 f"unequal length), expected {want} per "
                                 f"seed") from None
            if a.shape[:2] != (len(s["seeds"]), want):
                raise ValueError(f"results: {v}: {key} has shape {a.shape}, "
                                 f"expected ({len(s['seeds'])}, {want}, ...)")
            if key.endswith("acc") and not np.all((a >= 0) & (a <= 1)):
                raise ValueError(f"results: {v}: {key} outside [0, 1]")
    return doc


def full_length(out, seeds, steps, rates, command, record_every=250):
    """Train each ``(variant, lr)`` of ``rates`` for ``steps`` steps per seed.

    ``rates``: pairs such as ``[("plain", 1.0), ("bn", 3.0)]``. Writes
    ``out``; runs already there with the same settings are kept (resume).
    Returns the results document (see :func:`check_results`).
    """
    from .common import flat_mnist
    from .ics_fig1 import train_fig1
    if steps % record_every or steps < record_every:
        raise ValueError(f"steps ({steps}) must be a positive multiple of "
                         f"record_every ({record_every})")
    data = flat_mnist()
    s = dict(seeds=list(seeds), steps=steps, batch_size=60, probe_size=500,
             unit=0, record_every=record_every,
             lr=[[v, float(lr)] for v, lr in rates],
             n_train=len(data[0]), n_test=len(data[2]))
    old = json.loads(Path(out).read_text()) if Path(out).exists() else None
    runs = old["runs"] if old and old["settings"] == s else {}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    for variant, lr in s["lr"]:
        v = run_key(variant, lr)
        if v in runs:
            continue
        t0 = time.time()
        h = train_fig1(variant, steps, lr, data, seeds=tuple(seeds),
                       record_every=record_every, eval_every=record_every)
        runs[v] = summarize(h, record_every) | {"seconds": time.time() - t0}
        write_results(out, command, s, runs,
                      check=check_results if len(runs) == len(s["lr"]) else None,
                      separators=(",", ":"))
    return json.loads(Path(out).read_text())


def main(argv=None):
    """``python -m bnbook.experiments.ics_fig1``: the results file."""
    p = argparse.ArgumentParser(prog="python -m bnbook.experiments.ics_fig1",
                                description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=50_000)
    p.add_argument("--record-every", type=int, default=250)
    for v in VARIANTS:
        p.add_argument(f"--lr-{v}", type=float, nargs="+",
                       default=list(SHARED), help=f"rates for {v}")
    p.add_argument("--out", type=Path, required=True, help="JSON to write")
    a = p.parse_args(argv)
    command = " ".join(["python -m bnbook.experiments.ics_fig1",
                        *(argv if argv is not None else sys.argv[1:])])
    rates = [(v, lr) for v in VARIANTS for lr in getattr(a, f"lr_{v}")]
    full_length(a.out, a.seeds, a.steps, rates, command, a.record_every)
    print(f"wrote {a.out}")
    return 0
