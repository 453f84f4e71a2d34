"""LeNet chapter: seed summaries, the learning-rate range, the full-scale results file.

The full-scale result (LeNet with and without BN on a whole IDX data set, several
seeds) is too slow to compute while the book builds, so :func:`main` produces it
from the command line and the chapter plots the committed file::

    python -m bnbook.experiments.lenet --data DIR --epochs 3 --lr 0.9 \\
        --seeds 0 1 2 --out results/lenet_fashion_mnist.json

For each seed it runs ``python -m bnbook lenet --compare`` (:func:`bnbook.__main__.main`)
into a temporary directory and gathers every run's ``history.json`` into one JSON
document (:data:`RUN_KEYS` per model and seed), with the command, the date, the
library version and facts about the machine. :func:`check_results` is the schema
the chapter and the tests read.
"""
import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from .results_file import write_results

#: per-epoch lists every run of the results file holds (one value per epoch)
RUN_KEYS = ("train_loss", "train_acc", "test_loss", "test_acc", "seconds")
#: the two models of a ``--compare`` run
MODELS = ("lenet", "lenet-bn")
#: the top-level keys of a results file
TOP_KEYS = ("command", "date", "bnbook_version", "numpy_version", "machine",
            "settings", "runs")


def seed_spread(values):
    """Mean, minimum and maximum over seeds.

    Parameters
    ----------
    values : array_like, shape (S, ...)
        One row per seed (S >= 1), e.g. per-epoch accuracies of shape (S, E).

    Returns
    -------
    mean, lo, hi : ndarray, shape (...)
        Taken along the seed axis 0.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim < 1 or len(values) == 0:
        raise ValueError(f"values: expected one row per seed (shape (S, ...) with "
                         f"S >= 1), got shape {values.shape}")
    return values.mean(axis=0), values.min(axis=0), values.max(axis=0)


def trained_range(rates, accs, threshold):
    """The rates at which every seed reaches ``threshold``, checked to lie inside the grid.

    Parameters
    ----------
    rates : sequence of float, increasing
        The learning-rate grid.
    accs : array_like, shape (len(rates), S)
        Final test accuracy per rate and seed (0 for a diverged run).
    threshold : float
        A rate "trains" if all S seeds reach at least this accuracy.

    Returns
    -------
    list of float
        The rates that train. Raises ValueError if none does, or if the smallest
        or the largest rate of the grid trains: the grid must then be extended,
        since it does not show where training stops on that side.
    """
    rates, accs = np.asarray(rates, dtype=float), np.asarray(accs, dtype=float)
    if accs.ndim != 2 or len(accs) != len(rates) or np.any(np.diff(rates) <= 0):
        raise ValueError(f"expected increasing rates and accs of shape "
                         f"(len(rates), seeds); got {len(rates)} rates, "
                         f"accs of shape {accs.shape}")
    ok = accs.min(axis=1) >= threshold
    if not ok.any():
        raise ValueError(f"no rate of the grid trains (threshold {threshold})")
    if ok[0] or ok[-1]:
        side = "smallest" if ok[0] else "largest"
        raise ValueError(f"the {side} rate of the grid trains; extend the grid past it")
    return [float(r) for r in rates[ok]]


def check_results(doc):
    """Check a results document against the schema the chapter reads; return it.

    ``doc['runs'][model][str(seed)]`` holds, for each model in :data:`MODELS` and
    each seed in ``doc['settings']['seeds']``, the per-epoch lists of
    :data:`RUN_KEYS`, all of length ``settings['epochs']`` (unless the run
    diverged), accuracies in [0, 1], losses and seconds non-negative.
    Raises ValueError naming the first problem.
    """
    missing = [key for key in TOP_KEYS if key not in doc]
    if missing:
        raise ValueError(f"results: missing top-level keys {missing}")
    settings = doc["settings"]
    for key in ("seeds", "epochs", "lr", "n_train", "n_test", "data"):
        if key not in settings:
            raise ValueError(f"results: settings lacks {key!r}")
    for model in MODELS:
        for seed in settings["seeds"]:
            run = doc["runs"].get(model, {}).get(str(seed))
            if run is None:
                raise ValueError(f"results: no run for model {model}, seed {seed}")
            _check_run(run, settings["epochs"], f"{model} seed {seed}")
    return doc


def _check_run(run, epochs, where):
    for key in RUN_KEYS:
        values = np.asarray(run.get(key, []), dtype=float)
        if len(values) != epochs and not run.get("diverged"):
            raise ValueError(f"results: {where}: {key} has {len(values)} "
                             f"values, expected {epochs} (one per epoch)")
        if np.any(values < 0) or (key.endswith("acc") and np.any(values > 1)):
            raise ValueError(f"results: {where}: {key} out of range: {values}")


def _train_one(data, model, seed, epochs, lr):
    """One ``python -m bnbook lenet`` run; return its history.json."""
    from .. import __main__ as cli
    with tempfile.TemporaryDirectory() as tmp:
        argv = ["lenet", "--data", str(data), "--epochs", str(epochs), "--lr",
                str(lr), "--seed", str(seed), "--out", tmp, "--no-progress"]
        status = cli.main(argv + ["--bn"] * (model == "lenet-bn"))
        if status not in (0, 3):      # 3: the run diverged, still a result
            raise RuntimeError(f"python -m bnbook lenet failed ({status})")
        return json.loads((Path(tmp) / "history.json").read_text())


def full_scale(data, out, seeds, epochs, lr, command):
    """Train LeNet without and with BN once per seed with the CLI; write ``out``.

    Each run is ``python -m bnbook lenet [--bn]`` on the IDX directory ``data``
    (standardized pixels, PyTorch initialization, batch 64: the CLI's defaults).
    ``out`` is rewritten after every run, listing in ``settings['seeds']`` the
    seeds finished for both models; runs already in ``out`` with the same data,
    epochs and rate are kept, not repeated (a stopped command resumes).
    Returns the results document (see :func:`check_results`).
    """
    key = dict(data=str(data), epochs=epochs, lr=lr)
    old = json.loads(Path(out).read_text()) if Path(out).exists() else None
    same = old is not None and all(old["settings"].get(k) == v
                                   for k, v in key.items())
    runs = old["runs"] if same else {model: {} for model in MODELS}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        for model in MODELS:
            if str(seed) in runs[model]:
                continue
            run = _train_one(data, model, seed, epochs, lr)
            runs[model][str(seed)] = {k: run[k] for k in (*RUN_KEYS, "diverged")}
            done = [s for s in seeds if all(str(s) in runs[m] for m in MODELS)]
            settings = dict(key, n_train=run["n_train"], n_test=run["n_test"],
                            standardized=run["standardized"], init=run["init"],
                            batch_size=64, seeds=done, seeds_planned=list(seeds))
            write_results(out, command, settings, runs, check=check_results,
                          indent=1)
    return json.loads(Path(out).read_text())


def main(argv=None):
    """``python -m bnbook.experiments.lenet``: the full-scale results file."""
    p = argparse.ArgumentParser(prog="python -m bnbook.experiments.lenet",
                                description=full_scale.__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="IDX directory")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--lr", type=float, default=0.9)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", type=Path, required=True, help="the JSON file to write")
    args = p.parse_args(argv)
    command = " ".join(["python -m bnbook.experiments.lenet",
                        *(argv if argv is not None else sys.argv[1:])])
    full_scale(args.data, args.out, args.seeds, args.epochs, args.lr, command)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
