"""The command line ``python -m bnbook``: runs, writes its outputs, rejects bad input."""
import json
import math
import subprocess
import sys

import pytest

from bnbook import __main__ as cli

FASHION = "/usr/share/datasets/fashion-mnist"


def need_fashion():
    """Skip without Debian's dataset-fashion-mnist, unless CI demands the oracles."""
    import os
    if os.path.isdir(FASHION):
        return
    if os.environ.get("BNBOOK_REQUIRE_ORACLES") == "1":
        pytest.fail(f"{FASHION} is missing but BNBOOK_REQUIRE_ORACLES=1")
    pytest.skip(f"{FASHION} absent (Debian package dataset-fashion-mnist not installed)")


def run(argv, capsys):
    status = cli.main(argv)
    out = capsys.readouterr()
    return status, out.out, out.err


@pytest.mark.parametrize("bn", [False, True])
def test_lenet_run_writes_history_plot_and_weights(tmp_path, capsys, bn):
    out_dir = tmp_path / "run"
    argv = ["lenet", "--epochs", "2", "--lr", "0.1", "--limit", "256", "--out", str(out_dir)]
    status, out, err = run(argv + (["--bn"] if bn else []), capsys)
    assert status == 0, err
    assert err == ""                                   # no progress bar off a terminal
    assert out.count("epoch ") >= 2 and "final test accuracy" in out
    history = json.loads((out_dir / "history.json").read_text())
    assert history["bn"] is bn and history["n_train"] == 256 and history["n_test"] == 256
    assert len(history["test_acc"]) == 2 and history["lr"] == 0.1
    assert history["init"] == "pytorch" and history["standardized"] is True
    assert f"{history['test_acc'][-1]:.4f}" in out
    assert (out_dir / "curves.png").read_bytes()[:4] == b"\x89PNG"
    from bnbook.models import lenet
    model = lenet(bn=bn).load(out_dir / "model.npz")       # shapes and names match
    assert any(name.startswith("bn") for name in model.state_dict()) is bn


def test_lenet_on_idx_files(tmp_path, capsys):
    need_fashion()
    status, out, err = run(["lenet", "--data", str(FASHION), "--limit", "128", "--epochs", "1",
                            "--out", str(tmp_path), "--no-progress", "--raw-pixels",
                            "--init", "lecun"], capsys)
    assert status == 0, err
    history = json.loads((tmp_path / "history.json").read_text())
    assert history["data"] == FASHION and history["n_train"] == 128
    assert history["init"] == "lecun" and history["standardized"] is False


def test_bad_data_directory_is_a_clear_error(tmp_path, capsys):
    status, out, err = run(["lenet", "--data", str(tmp_path / "missing"), "--out",
                            str(tmp_path)], capsys)
    assert status == 1 and "IDX directory not found" in err and "missing" in err


@pytest.mark.parametrize("argv, message", [
    ([], "required: EXPERIMENT"),
    (["resnet"], "invalid choice: 'resnet'"),
    (["lenet", "--epochs", "0"], "must be a positive integer"),
    (["lenet", "--lr", "-1"], "must be a positive number"),
    (["lenet", "--lr", "nan"], "must be a positive number"),
    (["lenet", "--position", "middle"], "invalid choice: 'middle'"),
    (["lenet", "--init", "zeros"], "invalid choice: 'zeros'"),
])
def test_bad_arguments_exit_with_usage(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("flag, value, message", [
    ("--momentum", "1.5", "--momentum must lie in [0, 1)"),
    ("--weight-decay", "-1", "--weight-decay must be >= 0"),
])
def test_bad_optimizer_settings(flag, value, message, tmp_path, capsys):
    status, out, err = run(["lenet", flag, value, "--out", str(tmp_path)], capsys)
    assert status == 1 and message in err


def test_divergence_gives_exit_status_3_and_null_losses(tmp_path, capsys, monkeypatch):
    def diverging_fit(model, dataset, epochs, lr, **kwargs):
        return {"train_loss": [2.0], "train_acc": [0.1], "test_loss": [math.inf],
                "test_acc": [0.1], "seconds": [0.5], "diverged": True, "diverged_at": (2, 7)}
    monkeypatch.setattr("bnbook.train.fit", diverging_fit)
    status, out, err = run(["lenet", "--limit", "64", "--out", str(tmp_path)], capsys)
    assert status == 3 and "diverged" in out
    history = json.loads((tmp_path / "history.json").read_text())   # strict JSON, no NaN
    assert history["test_loss"] == [None] and history["diverged_at"] == [2, 7]


def test_module_entry_point_help():
    done = subprocess.run([sys.executable, "-m", "bnbook", "lenet", "--help"],
                          capture_output=True, text=True, check=True)
    assert "--bn" in done.stdout and "--data DIR" in done.stdout and "--out DIR" in done.stdout
