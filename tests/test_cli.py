"""The command line ``python -m bnbook``: real tiny runs, the files they keep, bad input.

Every run here trains for real (a few dozen images, one or two epochs); nothing
is mocked except the two failures a root account cannot provoke (an unreadable
data file, an unwritable directory).
"""
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from idx_files import write_idx_set

from bnbook import __main__ as cli
from bnbook import cli_outputs
from bnbook.cli_plots import RIGHT, WRONG, curves_figure, predictions_figure
from bnbook.plots import COLORS

FASHION = "/usr/share/datasets/fashion-mnist"
TINY = ["--limit", "64", "--epochs", "1", "--no-progress"]


def need_fashion():
    """Skip without Debian's dataset-fashion-mnist, unless CI demands the oracles."""
    if os.path.isdir(FASHION):
        return
    if os.environ.get("BNBOOK_REQUIRE_ORACLES") == "1":
        pytest.fail(f"{FASHION} is missing but BNBOOK_REQUIRE_ORACLES=1")
    pytest.skip(f"{FASHION} absent (Debian package dataset-fashion-mnist not installed)")


def run(argv, capsys):
    status = cli.main(argv)
    out = capsys.readouterr()
    return status, out.out, out.err


def history_of(directory):
    return json.loads((directory / "history.json").read_text())


def start(argv):
    return subprocess.Popen([sys.executable, "-m", "bnbook", *argv], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def lines_until(proc, prefix):
    """Read the process's stdout up to and including the first line starting with prefix."""
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith(prefix):
            return lines
    raise AssertionError(f"no line starting {prefix!r}; got {lines}, {proc.stderr.read()}")


@pytest.mark.parametrize("bn", [False, True])
def test_run_writes_history_figures_and_weights(tmp_path, capsys, bn):
    out_dir = tmp_path / "new" / "run"                   # created, parents too
    status, out, err = run(["lenet", *TINY, "--lr", "0.1", "--out", str(out_dir)]
                           + (["--bn"] if bn else []), capsys)
    assert status == 0, err
    assert err == ""                                   # no progress bar off a terminal
    assert out.count("epoch   1") == 1 and "final test accuracy" in out
    history = history_of(out_dir)
    assert history["bn"] is bn and history["n_train"] == 64 and history["n_test"] == 64
    assert len(history["test_acc"]) == 1 and history["lr"] == 0.1
    assert history["status"] == "finished" and history["stopped"] is None
    assert f"{history['test_acc'][-1]:.4f}" in out
    for name in ("curves.png", "predictions.png"):
        assert (out_dir / name).read_bytes()[:4] == b"\x89PNG"
    assert not list(out_dir.glob(".*"))                # no temporary file left behind
    from bnbook.models import lenet
    model = lenet(bn=bn).load(out_dir / "model.npz")       # shapes and names match
    assert any(name.startswith("bn") for name in model.state_dict()) is bn


def test_lenet_on_idx_files(tmp_path, capsys):
    data = write_idx_set(tmp_path / "idx")
    status, out, err = run(["lenet", "--data", str(data), "--epochs", "1", "--no-progress",
                            "--out", str(tmp_path / "run"), "--raw-pixels",
                            "--init", "lecun"], capsys)
    assert status == 0, err
    history = history_of(tmp_path / "run")
    assert history["data"] == str(data) and history["n_train"] == 70
    assert history["n_test"] == 30
    assert history["init"] == "lecun" and history["standardized"] is False


def test_lenet_on_fashion_mnist(tmp_path, capsys):
    need_fashion()
    status, out, err = run(["lenet", "--data", FASHION, *TINY, "--out", str(tmp_path)],
                           capsys)
    assert status == 0, err
    assert history_of(tmp_path)["data"] == FASHION


@pytest.mark.parametrize("make_out, message", [
    (lambda d: (d / "a_file").write_text("x") and d / "a_file",
     "is a file, expected a directory"),
    (lambda d: (d / "a_file").write_text("x") and d / "a_file" / "sub",
     "cannot create the directory (Not a directory)"),
])
def test_bad_out_fails_before_training_in_one_line(tmp_path, make_out, message):
    out = make_out(tmp_path)
    done = subprocess.run([sys.executable, "-m", "bnbook", "lenet", *TINY, "--out", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stdout == ""                           # nothing trained, nothing printed
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert f"--out {out}" in done.stderr and message in done.stderr


def test_unwritable_out_fails_before_training(tmp_path, capsys, monkeypatch):
    # root may write anywhere, so the refusal is injected where the probe file is made
    def refuse(**kwargs):
        raise PermissionError(13, "Permission denied", kwargs.get("dir"))
    monkeypatch.setattr(cli_outputs.tempfile, "mkstemp", refuse)
    status, out, err = run(["lenet", *TINY, "--out", str(tmp_path)], capsys)
    assert status == 1 and out == ""
    assert f"--out {tmp_path}: cannot write in the directory (Permission denied)" in err


def test_history_and_figures_are_written_after_every_epoch(tmp_path):
    proc = start(["lenet", "--limit", "256", "--epochs", "100", "--no-progress",
                  "--out", str(tmp_path)])
    try:
        for epoch in (1, 2):
            lines_until(proc, f"epoch {epoch:3d}")
            history = history_of(tmp_path)
            assert len(history["train_loss"]) == epoch and history["status"] == "running"
            assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
            assert (tmp_path / "model.npz").is_file()
            assert not (tmp_path / "predictions.png").exists()     # drawn at the end
    finally:
        proc.kill()
        proc.communicate()


def test_replace_atomically_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "history.json"
    cli_outputs.write_json(path, {"epoch": 1})

    def half_then_fail(f):
        f.write(b'{"epo')
        raise OSError("disk full")
    with pytest.raises(OSError, match="disk full"):
        cli_outputs.replace_atomically(path, half_then_fail)
    assert json.loads(path.read_text()) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["history.json"]   # no temp file left


def test_ctrl_c_stops_saves_finished_epochs_and_exits_130(tmp_path):
    proc = start(["lenet", "--limit", "256", "--epochs", "100", "--no-progress",
                  "--out", str(tmp_path)])
    try:
        before = lines_until(proc, "epoch   1")
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert stderr == ""                                # no traceback, nothing else
    after = [line for line in stdout.splitlines() if not line.startswith("epoch ")]
    assert len(after) == 1 and after[0].startswith("stopped by Ctrl-C")
    assert str(tmp_path) in after[0] and "history.json" in after[0]
    history = history_of(tmp_path)
    epoch, steps = history["stopped"]
    finished = len(history["train_loss"])
    assert history["status"] == "stopped" and finished >= 1 and epoch < 100
    assert finished in (epoch - 1, epoch) and 0 <= steps <= 4     # 256 / 64 = 4 steps
    assert f"lenet {finished}" in after[0] and len(before) >= 2
    assert (tmp_path / "predictions.png").read_bytes()[:4] == b"\x89PNG"
    from bnbook.models import lenet
    lenet().load(tmp_path / "model.npz")


def test_second_ctrl_c_aborts_at_once_and_the_handler_is_restored():
    from bnbook.cli_lenet import CtrlC
    from bnbook.train import StopTraining
    def press_ctrl_c():                    # a real SIGINT to this process
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):              # Python runs the handler between bytecodes
            pass

    before = signal.getsignal(signal.SIGINT)
    with CtrlC() as ctrl_c:
        ctrl_c.step_callback(0, None, None, None)          # nothing pressed: no stop
        press_ctrl_c()
        assert ctrl_c.pressed
        with pytest.raises(StopTraining):
            ctrl_c.step_callback(1, None, None, None)
        with pytest.raises(KeyboardInterrupt):
            press_ctrl_c()
    assert signal.getsignal(signal.SIGINT) is before


def test_rerun_leaves_no_file_of_the_previous_run(tmp_path, capsys):
    old = "from the previous run"
    for name in (*cli_outputs.OUTPUT_NAMES, ".history.json.x1y2.tmp"):
        (tmp_path / name).write_text(old)
    (tmp_path / "notes.txt").write_text("the user's own file")
    status, out, err = run(["lenet", *TINY, "--out", str(tmp_path)], capsys)
    assert status == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "curves.png", "history.json", "model.npz", "notes.txt", "predictions.png"]
    assert history_of(tmp_path)["n_train"] == 64
    for name in ("curves.png", "predictions.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_divergence_exits_3_and_clears_the_previous_figures(tmp_path, capsys):
    for name in ("curves.png", "predictions.png", "model.npz"):
        (tmp_path / name).write_text("from the previous run")
    # ReLU at lr 1e30: the logits overflow at the second step, inside epoch 1
    status, out, err = run(["lenet", "--limit", "128", "--epochs", "1", "--no-progress",
                            "--activation", "relu", "--lr", "1e30", "--out", str(tmp_path)],
                           capsys)
    assert status == 3 and "diverged (loss not finite) at epoch, step (1, 2)" in out, err
    assert [p.name for p in tmp_path.iterdir()] == ["history.json"]
    history = history_of(tmp_path)                     # strict JSON
    assert history["status"] == "diverged" and history["diverged_at"] == [1, 2]
    assert history["train_loss"] == []


def test_curves_have_markers_and_integer_epoch_ticks():
    def history(epochs, bn):
        values = list(np.linspace(2.0, 1.0, epochs))
        return dict(train_loss=values, test_loss=values, train_acc=values,
                    test_acc=values, bn=bn)
    for epochs in (1, 3):
        fig = curves_figure({"lenet": history(epochs, False), "lenet-bn": history(epochs, True)})
        for ax in fig.axes:
            lines = ax.get_lines()
            assert len(lines) == 4
            assert all(line.get_marker() not in ("", "None", None) for line in lines)
            assert [line.get_color() for line in lines] == [COLORS["plain"]] * 2 + [COLORS["bn"]] * 2
            lo, hi = ax.get_xlim()
            assert [t for t in ax.get_xticks() if lo <= t <= hi] == list(range(1, epochs + 1))


def test_prediction_grid_is_green_where_right_red_where_wrong():
    labels = np.arange(30) % 10
    wrong = labels.copy()
    wrong[[2, 5]] = 9
    images = np.zeros((30, 1, 28, 28), np.float32)
    fig = predictions_figure({"lenet": labels, "lenet-bn": wrong}, images, labels)
    right_panel, wrong_panel = fig.subfigs
    assert right_panel._suptitle.get_text() == "lenet: 24 of 24 right"
    assert wrong_panel._suptitle.get_text() == "lenet-bn: 22 of 24 right"
    titles = [ax.title for ax in wrong_panel.axes]
    assert titles[2].get_text() == "9 (2)" and titles[2].get_color() == WRONG
    assert titles[3].get_text() == "3 (3)" and titles[3].get_color() == RIGHT
    assert [t.get_color() for t in titles].count(WRONG) == 2


def test_compare_trains_both_at_the_same_seed(tmp_path, capsys):
    argv = ["lenet", *TINY, "--seed", "3"]
    status, out, err = run(argv + ["--compare", "--out", str(tmp_path / "both")], capsys)
    assert status == 0, err
    document = history_of(tmp_path / "both")
    assert document["compare"] is True and list(document["runs"]) == ["lenet", "lenet-bn"]
    plain, with_bn = document["runs"]["lenet"], document["runs"]["lenet-bn"]
    assert plain["bn"] is False and with_bn["bn"] is True and plain["seed"] == with_bn["seed"] == 3
    for name in ("curves.png", "predictions.png", "model-lenet.npz", "model-lenet-bn.npz"):
        assert (tmp_path / "both" / name).is_file()
    status, out, err = run(argv + ["--out", str(tmp_path / "plain")], capsys)
    assert status == 0, err
    assert history_of(tmp_path / "plain")["train_loss"] == plain["train_loss"]  # same run


def test_help_shows_defaults():
    done = subprocess.run([sys.executable, "-m", "bnbook", "lenet", "--help"],
                          capture_output=True, text=True, check=True)
    text = " ".join(done.stdout.split())                 # argparse wraps lines
    for default in ("passes over the data (default: 10)", "learning rate (default: 0.1)",
                    "training batch (default: 64)", "draw (default: 0)",
                    "(default: pytorch)", "(default: before)"):
        assert default in text
    assert "--data DIR" in text and "--compare" in text and "(default: None)" not in text


@pytest.mark.parametrize("argv, message", [
    ([], "required: EXPERIMENT"),
    (["resnet"], "invalid choice: 'resnet'"),
    (["lenet", "--epochs", "0"], "argument --epochs: expected a positive integer, got '0'"),
    (["lenet", "--epochs", "ten"], "argument --epochs: expected a positive integer"),
    (["lenet", "--lr", "-1"], "argument --lr: expected a positive number"),
    (["lenet", "--lr", "nan"], "argument --lr: expected a positive number"),
    (["lenet", "--momentum", "1.5"], "argument --momentum: expected a number in [0, 1)"),
    (["lenet", "--weight-decay", "-1"], "argument --weight-decay: expected a finite number"),
    (["lenet", "--weight-decay", "nan"], "argument --weight-decay: expected a finite number"),
    (["lenet", "--weight-decay", "inf"], "argument --weight-decay: expected a finite number"),
    (["lenet", "--seed", "-1"], "argument --seed: expected a non-negative integer"),
    (["lenet", "--seed", "abc"], "argument --seed: expected a non-negative integer"),
    (["lenet", "--position", "middle"], "invalid choice: 'middle'"),
    (["lenet", "--init", "zeros"], "invalid choice: 'zeros'"),
    (["lenet", "--bn", "--compare"], "argument --compare: not allowed with argument --bn"),
])
def test_bad_arguments_exit_with_usage(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_bn_batch_of_one_image_is_dropped_with_a_note(tmp_path, capsys):
    status, out, err = run(["lenet", "--bn", "--limit", "65", "--epochs", "1",
                            "--no-progress", "--out", str(tmp_path)], capsys)
    assert status == 0, err
    assert "leave a last batch of 1 image" in out and "training on 64" in out
    assert history_of(tmp_path)["n_train"] == 64


def test_without_bn_a_batch_of_one_image_is_kept(tmp_path, capsys):
    status, out, err = run(["lenet", "--limit", "65", "--epochs", "1", "--no-progress",
                            "--out", str(tmp_path)], capsys)
    assert status == 0, err
    assert "note:" not in out and history_of(tmp_path)["n_train"] == 65


def test_bn_with_one_training_image_is_a_clear_error(tmp_path, capsys):
    status, out, err = run(["lenet", "--bn", "--limit", "1", "--out", str(tmp_path)], capsys)
    assert status == 1 and "at least 2 training images per batch" in err
    assert "--limit" in err


def test_bad_data_directory_is_a_clear_error(tmp_path, capsys):
    status, out, err = run(["lenet", "--data", str(tmp_path / "missing"), "--out",
                            str(tmp_path)], capsys)
    assert status == 1 and "IDX directory not found" in err and "missing" in err


def test_unreadable_data_file_is_a_permission_error(tmp_path, capsys, monkeypatch):
    data = write_idx_set(tmp_path / "idx")
    locked = data / "train-images-idx3-ubyte.gz"
    read_bytes = type(locked).read_bytes

    def refuse(self):       # chmod 000 does not stop root, so the refusal is injected
        if self.name == locked.name:
            raise PermissionError(13, "Permission denied", str(self))
        return read_bytes(self)
    monkeypatch.setattr(type(locked), "read_bytes", refuse)
    status, out, err = run(["lenet", "--data", str(data), "--out", str(tmp_path / "run")],
                           capsys)
    assert status == 1
    assert f"error: Permission denied: {locked}" in err
    assert "corrupt" not in err and "decompress" not in err


def test_damaged_gzip_data_is_one_line_error(tmp_path, capsys):
    data = write_idx_set(tmp_path / "idx")
    damaged = bytearray((data / "train-images-idx3-ubyte.gz").read_bytes())
    damaged[10:20] = b"\xff" * 10         # the first deflate block header: zlib.error
    (data / "train-images-idx3-ubyte.gz").write_bytes(bytes(damaged))
    status, out, err = run(["lenet", "--data", str(data), "--out", str(tmp_path / "run")],
                           capsys)
    assert status == 1 and err.count("\n") == 1
    assert "train-images-idx3-ubyte.gz: cannot decompress" in err and "corrupt" in err
