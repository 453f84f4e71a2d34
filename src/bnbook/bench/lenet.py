"""LeNet-5 training throughput: bnbook against the same network in PyTorch (CPU).

``python -m bnbook.bench lenet [--repeats R] [--steps S] [--batch B] [--threads T]``

One training step = forward, softmax cross-entropy, backward and an SGD update,
float32, on random 28 x 28 images (pixel values in [0, 1]) and random labels,
cycling through 16 fixed batches. bnbook's LeNet (batch-innermost layout) and a
PyTorch ``nn.Sequential`` with the same layers, biases and starting weights are
timed in interleaved rounds of S steps each, with and without BN; the table
gives the median images per second and the ratio bnbook / PyTorch (above 1:
bnbook is faster). Before timing, one step of each checks that both compute the
same loss and gradients.
"""
import argparse
import os
import resource
import time

import numpy as np

from ..losses import softmax_cross_entropy
from ..models import lenet, reference_lenet
from ..optim import SGD
from .timing import interleaved, print_table


def torch_lenet(model, torch):
    """A PyTorch twin of a bnbook LeNet-5, built from ``model.spec`` (same weights)."""
    nn = torch.nn
    modules = {"conv": nn.Conv2d, "linear": nn.Linear, "bn2d": nn.BatchNorm2d,
               "bn1d": nn.BatchNorm1d, "pool": nn.AvgPool2d, "flatten": nn.Flatten,
               "tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid}
    layers = []
    for name, kind, kwargs in model.spec:
        layers.append(modules[kind](**kwargs))
        if kind in ("bn2d", "bn1d"):
            ours = getattr(model, name)
            layers[-1].eps, layers[-1].momentum = ours.eps, ours.momentum
    net = nn.Sequential(*layers).to(getattr(torch, model.dtype.name))
    ours = [p.data for p in model.parameters()]
    theirs = list(net.parameters())
    if [tuple(a.shape) for a in ours] != [tuple(t.shape) for t in theirs]:
        raise RuntimeError("the PyTorch copy does not match bnbook's LeNet parameter shapes")
    with torch.no_grad():
        for a, t in zip(ours, theirs):
            t.copy_(torch.from_numpy(np.array(a)))
    return net


def _contenders(bn, batch, steps, lr, torch, seed=0, reference=False):
    gen = np.random.default_rng(seed)
    images = gen.random((16, batch, 1, 28, 28), dtype=np.float32)
    labels = gen.integers(0, 10, size=(16, batch))
    model = lenet(bn=bn, rng=seed)
    net = torch_lenet(model, torch)
    opt = SGD(model.parameters(), lr)
    topt = torch.optim.SGD(net.parameters(), lr=lr)
    timages, tlabels = torch.from_numpy(images), torch.from_numpy(labels)
    state = {"i": 0}

    def ours_step(i):
        logits = model.forward(images[i])
        loss, dlogits = softmax_cross_entropy(logits, labels[i])
        model.backward(dlogits)
        opt.step()
        return loss

    def torch_step(i):
        topt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(timages[i]), tlabels[i])
        loss.backward()
        topt.step()
        return loss.item()

    check = _check_step(model, net, ours_step, torch_step)
    funcs = {"bnbook": ours_step, "torch": torch_step}
    if reference:                                  # the readable NCHW layers
        ref = reference_lenet(model)
        ref_opt = SGD(ref.parameters(), lr)

        def ref_step(i):
            loss, dlogits = softmax_cross_entropy(ref.forward(images[i]), labels[i])
            ref.backward(dlogits)
            ref_opt.step()
        funcs["reference"] = ref_step

    def run(step):
        def go():
            for _ in range(steps):
                step(state["i"] % 16)
                state["i"] += 1
        return go
    return {name: run(step) for name, step in funcs.items()}, check


def _check_step(model, net, ours_step, torch_step):
    """Loss and largest gradient difference after one step of each from equal weights."""
    loss_ours, loss_torch = ours_step(0), torch_step(0)
    grads = [(p.grad, t.grad.numpy()) for p, t in zip(model.parameters(), net.parameters())]
    gdiff = max(float(np.max(np.abs(a - b))) for a, b in grads)
    return abs(loss_ours - loss_torch), gdiff


def _cpu_timed(func, record, faults):
    """``func`` that appends its process CPU time (all threads) to ``record`` and its
    minor page faults (fresh memory touched: costly in a virtual machine) to ``faults``."""
    def timed():
        f0, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.process_time()
        func()
        record.append(time.process_time() - t0)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
    return timed


def _measure(args, torch, threads):
    """Rows (plain, with BN) of the table for one thread count."""
    from threadpoolctl import threadpool_limits
    torch.set_num_threads(threads)
    rows = []
    with threadpool_limits(limits=threads, user_api="blas"):
        for bn in (False, True):
            funcs, (dloss, dgrad) = _contenders(bn, args.batch, args.steps, args.lr, torch,
                                                reference=args.reference)
            cpu = {name: [] for name in funcs}
            faults = {name: [] for name in funcs}
            wall = interleaved({name: _cpu_timed(f, cpu[name], faults[name])
                                for name, f in funcs.items()}, repeats=args.repeats, warmup=1)
            images = args.batch * args.steps
            ips = {k: images / np.median(v) for k, v in wall.items()}
            cpu_ips = {k: images / np.median(v[1:]) for k, v in cpu.items()}  # v[0]: warm-up
            per_step = {k: np.median(v[1:]) / args.steps for k, v in faults.items()}
            rows.append([threads, "with BN" if bn else "plain", ips["bnbook"], ips["torch"],
                         ips["bnbook"] / ips["torch"], cpu_ips["bnbook"] / cpu_ips["torch"],
                         f"{per_step['bnbook']:.0f} / {per_step['torch']:.0f}", dloss, dgrad]
                        + ([ips["reference"] / ips["torch"]] if args.reference else []))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bnbook.bench lenet",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="interleaved rounds")
    parser.add_argument("--steps", type=int, default=20, help="training steps per round")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--threads", type=int, nargs="+", default=None,
                        help="thread counts for PyTorch and NumPy's BLAS (default: the "
                             "CPUs this process may use, then 1)")
    parser.add_argument("--reference", action="store_true",
                        help="also time the readable NCHW layers (reference_lenet)")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.steps < 1 or args.batch < 2:
        parser.error("need --repeats >= 1, --steps >= 1 and --batch >= 2")
    if args.threads and min(args.threads) < 1:
        parser.error("--threads must be >= 1")
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed (pip install torch): nothing to compare against")
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    counts = args.threads or sorted({cpus, 1}, reverse=True)
    print(f"LeNet-5 training step (forward + loss + backward + SGD), batch {args.batch}, "
          f"float32; {cpus} CPUs (load average {os.getloadavg()[0]:.1f}); "
          f"torch {torch.__version__}, numpy {np.__version__}; PyTorch and NumPy's BLAS "
          f"use the same thread count (first column).")
    print(f"Median over {args.repeats} interleaved rounds of {args.steps} steps. "
          "ratio = bnbook / PyTorch images per second of wall-clock time; 'CPU ratio' uses "
          "the process CPU time instead (the work done, less sensitive to other load; "
          "with several threads it also counts threads that spin while waiting). Page "
          "faults/step: bnbook / PyTorch. On a shared machine absolute numbers vary with "
          "its load.")
    rows = []
    for threads in counts:
        rows += _measure(args, torch, threads)
    print_table(["threads", "LeNet-5", "bnbook img/s", "torch img/s", "ratio", "CPU ratio",
                 "page faults/step", "|loss diff|", "max|grad diff|"]
                + (["NCHW ref ratio"] if args.reference else []), rows)
    return 0
