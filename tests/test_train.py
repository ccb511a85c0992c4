"""Real, tiny trainings on the embedded sample: presets, loop, checkpoint/resume, outputs, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from pipelines.training.config import TrainError, get_config

SAMPLE = "mnist-sample"


def _cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "mnist_data_cli", *args], capture_output=True, text=True
    )
    if check and result.returncode != 0:
        raise AssertionError(result.stderr)
    return result


def test_presets_are_the_documented_ones_and_overrides_apply():
    seed = get_config("mlp", "seed")
    assert (
        seed.batch_size,
        seed.learning_rate,
        seed.decay_rate,
        seed.l2,
        seed.ema_decay,
        seed.max_steps,
    ) == (200, 0.1, 0.99, 1e-4, 0.99, 10_000)
    assert get_config("softmax", "seed").learning_rate == 0.01
    assert get_config("lenet", "modern", epochs=3, batch_size=None).epochs == 3
    assert (
        get_config("lenet", "modern", batch_size=None).batch_size == get_config("lenet").batch_size
    )
    with pytest.raises(TrainError, match="unknown model/preset 'vgg'"):
        get_config("vgg", "modern")


@pytest.mark.parametrize(
    "model, epochs, floor", [("softmax", 3, 0.70), ("mlp", 3, 0.80), ("lenet", 4, 0.70)]
)
def test_each_model_learns_the_sample_far_above_chance(tmp_path, model, epochs, floor):
    summary = train_quiet(get_config(model, "modern", epochs=epochs), tmp_path / "run")
    assert summary["test_accuracy"] > floor, summary
    history = json.loads((tmp_path / "run" / "metrics.json").read_text())["epochs"]
    assert [r["epoch"] for r in history] == list(range(1, epochs + 1))
    assert history[-1]["loss"] < history[0]["loss"]
    for key in ("loss", "train_accuracy", "test_accuracy", "seconds", "examples_per_second"):
        assert all(np.isfinite(r[key]) and r[key] >= 0 for r in history), key


def train_quiet(config, out, data=SAMPLE, **kw):
    from pipelines.training.train import train

    return train(config, data, out, progress=False, **kw)


def _weights(run: Path) -> dict[str, np.ndarray]:
    reader = tf.train.load_checkpoint(str(run / "checkpoints"))
    return {
        name: reader.get_tensor(name)
        for name in reader.get_variable_to_shape_map()
        if "save_counter" not in name and not name.startswith("_CHECKPOINTABLE")
    }


@pytest.mark.parametrize(
    "model, preset, resident",
    [("mlp", "seed", False), ("mlp", "seed", True), ("lenet", "modern", False)],
)
def test_interrupted_and_resumed_run_ends_at_the_same_weights(tmp_path, model, preset, resident):
    # mlp/seed: staircase schedule, L2, moving averages in the checkpoint; lenet/modern: Adam
    # slots, cosine schedule and dropout's random stream.
    config = get_config(model, preset, epochs=3, resident=resident, steps_per_call=3)
    whole = train_quiet(config, tmp_path / "whole")

    def crash_after_first_epoch(record: dict) -> None:
        if record["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_quiet(config, tmp_path / "split", on_epoch=crash_after_first_epoch)
    assert not (tmp_path / "split" / "saved_model").exists()
    metrics = (
        tmp_path / "split" / "metrics.json"
    )  # as if killed after epoch 2's metrics, before its checkpoint
    written = json.loads(metrics.read_text())
    metrics.write_text(
        json.dumps(
            {"epochs": written["epochs"] + [{**written["epochs"][0], "epoch": 2, "loss": -1.0}]}
        )
    )
    resumed = train_quiet(config, tmp_path / "split", resume=True)
    assert [r["epoch"] for r in json.loads(metrics.read_text())["epochs"]] == [1, 2, 3]
    assert min(r["loss"] for r in json.loads(metrics.read_text())["epochs"]) > 0
    assert resumed["epochs"] == whole["epochs"] == 3
    a, b = _weights(tmp_path / "whole"), _weights(tmp_path / "split")
    assert a.keys() == b.keys() and len(a) > 4
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert resumed["test_accuracy"] == whole["test_accuracy"]


def test_stacked_batches_train_exactly_like_single_batches(tmp_path):
    # 12 batches of 128 per epoch: elements of 5 batches give 5, 5, then 2 and a skipped remainder.
    one = get_config("mlp", "modern", epochs=2, steps_per_call=1)
    stacked = one.replace(steps_per_call=5)
    a = train_quiet(one, tmp_path / "one")
    b = train_quiet(stacked, tmp_path / "stacked")
    assert a["steps"] == b["steps"] == 24
    wa, wb = _weights(tmp_path / "one"), _weights(tmp_path / "stacked")
    for name in wa:
        np.testing.assert_array_equal(wa[name], wb[name], err_msg=name)


def test_max_steps_stops_the_run_mid_epoch(tmp_path):
    summary = train_quiet(get_config("mlp", "seed", max_steps=5), tmp_path / "run")
    assert (summary["steps"], summary["epochs"]) == (5, 1)


def test_cli_train_evaluate_predict_and_outputs(tmp_path, capsys):
    from PIL import Image

    import mnist_data

    run = tmp_path / "run"
    _cli(
        "train",
        "lenet",
        "--data",
        SAMPLE,
        "--epochs",
        "2",
        "--out",
        str(run),
        "--json",
        str(tmp_path / "s.json"),
        "--quiet",
    )
    summary = json.loads((tmp_path / "s.json").read_text())
    assert {
        "model",
        "preset",
        "epochs",
        "test_accuracy",
        "train_seconds",
        "examples_per_second",
        "device",
    } <= set(summary)
    assert (summary["model"], summary["preset"], summary["epochs"]) == ("lenet", "modern", 2)
    evaluated = json.loads(_cli("evaluate", str(run), "--json").stdout)  # on the run's own data
    assert evaluated["test_accuracy"] == summary["test_accuracy"]
    assert (
        evaluated["data"]
        == summary["data"]
        == json.loads((run / "config.json").read_text())["data"]
        == SAMPLE
    )
    assert "format 'tfrecord' reads a directory" in _refused(
        capsys, "evaluate", str(run), "--format", "tfrecord"
    )
    for name, size in (("curves.png", (1000, 400)), ("predictions.png", None)):
        with Image.open(run / name) as image:
            assert image.format == "PNG" and (size is None or image.size == size)
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))

    images, labels = mnist_data.load(SAMPLE, "test")
    served = tf.saved_model.load(str(run / "saved_model")).signatures["serving_default"]
    probabilities = served(images=tf.constant(images[:100]))["probabilities"].numpy()
    assert probabilities.shape == (100, 10)
    np.testing.assert_allclose(probabilities.sum(1), 1.0, rtol=1e-5)
    assert (probabilities.argmax(1) == labels[:100]).mean() > 0.5

    pngs = []
    for i in range(3):
        Image.fromarray(images[i]).save(tmp_path / f"d{i}.png")
        pngs.append(str(tmp_path / f"d{i}.png"))
    lines = _cli("predict", str(run), *pngs).stdout.splitlines()
    assert [int(line.split("\t")[1]) for line in lines] == probabilities[:3].argmax(1).tolist()
    (tmp_path / "broken.png").write_bytes(b"not a png")
    mixed = _cli("predict", str(run), pngs[0], str(tmp_path / "broken.png"), pngs[1], check=False)
    assert (
        mixed.returncode == 1 and mixed.stdout.splitlines() == lines[:2]
    )  # the others still answered
    assert "broken.png: not a readable image" in mixed.stderr
    swallowed = _cli(
        "predict", str(run), "--json", pngs[0], pngs[1], check=False
    )  # --json took an image's name
    assert swallowed.returncode == 2 and "exists and does not hold JSON" in swallowed.stderr
    with Image.open(pngs[0]) as image:
        assert image.format == "PNG"  # not written over
    top = json.loads(
        _cli(
            "predict",
            str(run),
            pngs[0],
            str(tmp_path / "broken.png"),
            "--top",
            "3",
            "--json",
            check=False,
        ).stdout
    )
    assert [answer["image"] for answer in top] == [pngs[0], str(tmp_path / "broken.png")]
    assert "not a readable image" in top[1]["error"]
    chances = [p["probability"] for p in top[0]["predictions"]]
    assert len(chances) == 3 and chances == sorted(chances, reverse=True)
    assert top[0]["predictions"][0]["class"] == probabilities[0].argmax()
    np.testing.assert_allclose(chances[0], probabilities[0].max(), rtol=1e-6)
    from pipelines.training.export import predict  # the same answers, a path twice answered twice

    answers = predict(run, [pngs[1], str(tmp_path / "broken.png"), pngs[1]], top=2)
    with pytest.raises(TrainError, match="top must be a whole number >= 1, got 0"):
        predict(run, pngs[:1], top=0)
    assert [len(a.get("predictions", [])) for a in answers] == [2, 0, 2] and answers[0] == answers[
        2
    ]
    assert (
        answers[0]["predictions"][0]["class"] == probabilities[1].argmax() and "error" in answers[1]
    )
    assert predict(run, []) == []
    import shutil

    damaged = tmp_path / "damaged-run"
    shutil.copytree(run, damaged)
    for weights in (damaged / "saved_model" / "variables").glob("variables.data-*"):
        weights.write_bytes(weights.read_bytes()[:100])
    refused = _cli("predict", str(damaged), pngs[0], check=False)
    assert (
        refused.returncode == 1
        and refused.stderr.startswith(
            f"mnist-data: error: {damaged / 'saved_model'}: not a readable SavedModel"
        )
        and refused.stderr.count("\n") == 1
    )


def _refused(capsys, *args: str) -> str:
    """The one error line of a command that must fail before any work (run in this process)."""
    from mnist_data_cli import main

    capsys.readouterr()
    code = main(list(args))
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("mnist-data: error: ") and err.count("\n") == 1, err
    return err


def test_cli_refuses_to_overwrite_a_run_and_names_bad_images(tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    _cli("train", "softmax", "--data", SAMPLE, "--epochs", "1", "--out", str(run), "--quiet")
    assert "--resume" in _refused(
        capsys, "train", "softmax", "--data", SAMPLE, "--epochs", "1", "--out", str(run)
    )
    (tmp_path / "bad.png").write_bytes(b"not a png")
    assert "bad.png: not a readable image" in _refused(
        capsys, "predict", str(run), str(tmp_path / "bad.png")
    )
    assert "not a training run directory" in _refused(
        capsys, "evaluate", str(tmp_path / "nowhere"), "--data", SAMPLE
    )
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    assert "holds other files but no training run" in _refused(
        capsys, "train", "softmax", "--data", SAMPLE, "--out", str(tmp_path / "mine")
    )
    assert "not a directory" in _refused(
        capsys, "train", "softmax", "--data", SAMPLE, "--out", str(tmp_path / "mine" / "notes.txt")
    )
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]
    shutil.rmtree(run / "saved_model")
    assert "saved_model: no SavedModel yet: the run stopped before its end" in _refused(
        capsys, "predict", str(run), str(tmp_path / "bad.png")
    )
    shutil.rmtree(run / "checkpoints")
    assert "checkpoints: no checkpoint to evaluate" in _refused(
        capsys, "evaluate", str(run), "--data", SAMPLE
    )


def test_cli_resume_continues_the_run_it_finds_and_refuses_to_change_it(tmp_path, capsys):
    run = tmp_path / "run"

    def epochs_done() -> int:
        return len(json.loads((run / "metrics.json").read_text())["epochs"])

    _cli(
        "train", "softmax", *f"--preset seed --data {SAMPLE} --epochs 1 --out {run} --quiet".split()
    )
    _cli("train", "softmax", "--resume", "--out", str(run), "--quiet")  # not 25 epochs
    assert epochs_done() == 1 and json.loads((run / "config.json").read_text())["preset"] == "seed"
    resumed = _cli(
        "train",
        "softmax",
        "--data",
        SAMPLE,
        "--resume",
        "--epochs",
        "2",
        "--out",
        str(run),
    )
    assert "\r" not in resumed.stderr and "epoch" not in resumed.stderr  # no bar into a file
    assert epochs_done() == 2  # a constant learning rate: a longer run is a continuation
    for args, says in (
        (["mlp"], "model 'softmax' -> 'mlp'"),
        (["softmax", "--batch-size", "50"], "batch_size 100 -> 50"),
        (["softmax", "--preset", "modern"], "preset 'seed' -> 'modern'"),
    ):
        assert says in _refused(
            capsys, "train", *args, "--data", SAMPLE, "--resume", "--out", str(run)
        )
    assert "data 'mnist-sample' -> 'fashion-mnist'" in _refused(
        capsys, "train", "softmax", "--data", "fashion-mnist", "--resume", "--out", str(run)
    )
    assert "2 epochs are done already; --epochs 1 would end" in _refused(
        capsys, "train", "softmax", "--epochs", "1", "--resume", "--out", str(run)
    )
    assert "--data is required" in _refused(
        capsys, "train", "softmax", "--out", str(tmp_path / "new")
    )
    assert epochs_done() == 2


def test_resume_refuses_to_stretch_a_cosine_schedule(tmp_path):
    config = get_config("softmax", "modern", epochs=1)
    train_quiet(config, tmp_path / "run")
    with pytest.raises(TrainError, match="epochs 1 -> 2, under a cosine schedule"):
        train_quiet(config.replace(epochs=2), tmp_path / "run", resume=True)


def test_settings_no_run_can_use_are_refused_before_anything_is_written(tmp_path):
    for overrides, says in (
        (dict(epochs=0), "epochs must be >= 1"),
        (dict(batch_size=-5), "batch_size must be >= 1"),
        (dict(seed=-1), "seed must be in 0..2"),
        (dict(seed=2**32), "seed must be in 0..2"),
        (dict(learning_rate=-1.0), "learning_rate must be > 0"),
        (dict(ema_decay=1.5), r"ema_decay must be in \[0, 1\)"),
        (dict(l2=-1e-4), "l2 must be >= 0"),
        (dict(learning_rate=float("nan")), "learning_rate must be > 0"),
        (dict(decay_rate=float("inf")), "decay_rate must be > 0"),
    ):
        with pytest.raises(TrainError, match=says):
            get_config("softmax", "modern", **overrides)
    with pytest.raises(TrainError, match="batch size 5000 exceeds the 1600 training examples"):
        train_quiet(
            get_config("softmax", "modern", batch_size=5000), tmp_path / "new" / "deeper" / "run"
        )
    assert not (tmp_path / "new").exists()  # a failed start leaves no run, nor folders, behind
    (tmp_path / "mine").mkdir()
    with pytest.raises(TrainError, match="batch size 5000"):
        train_quiet(get_config("softmax", "modern", batch_size=5000), tmp_path / "mine")
    assert (tmp_path / "mine").is_dir()  # a folder that was there stays

    import pipelines.training.run_dir

    def fails_after_a_neighbour_arrived(
        *args,
    ):  # another run made its directory beside this one meanwhile
        (tmp_path / "shared" / "b").mkdir()
        (tmp_path / "shared" / "b" / "metrics.json").write_text("[]")
        raise TrainError("stopped")

    real = pipelines.training.run_dir.check_start
    pipelines.training.run_dir.check_start = fails_after_a_neighbour_arrived
    try:
        with pytest.raises(TrainError, match="stopped"):
            train_quiet(get_config("softmax", "modern"), tmp_path / "shared" / "a")
    finally:
        pipelines.training.run_dir.check_start = real
    assert (
        not (tmp_path / "shared" / "a").exists()
        and (tmp_path / "shared" / "b" / "metrics.json").exists()
    )
    for overrides, says in (
        (dict(epochs=10**20), "epochs must be <= 1000000"),
        (dict(op_threads=100_000), "op_threads must be <= 1024"),
    ):
        with pytest.raises(TrainError, match=says):
            get_config("softmax", "modern", **overrides)
    refused = _cli(
        "train",
        "softmax",
        "--data",
        SAMPLE,
        "--epochs",
        "0",
        "--out",
        str(tmp_path / "r"),
        check=False,
    )
    assert refused.returncode == 1 and "epochs must be >= 1, got 0" in refused.stderr
    assert not (tmp_path / "r").exists()


def test_the_cli_refuses_a_summary_over_the_runs_own_files(tmp_path, capsys):
    from mnist_data_cli import main

    for name in ("config.json", "metrics.json"):  # summary.json gets the same summary
        args = ["train", "softmax", "--data", SAMPLE, "--out", str(tmp_path / "r")]
        with pytest.raises(SystemExit) as stop:
            main([*args, "--json", str(tmp_path / "r" / name)])
        assert stop.value.code == 2
        assert "give the summary another name" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_a_bad_setting_stops_the_command_before_tensorflow_starts(tmp_path, capsys, monkeypatch):
    import mnist_data_cli

    def must_not_start() -> None:
        raise AssertionError("TensorFlow started before the settings were checked")

    monkeypatch.setattr(mnist_data_cli, "start_tensorflow_quietly", must_not_start)
    for flag, value, says in (
        ("--seed", "-1", "seed must be in 0..2**32-1"),
        ("--epochs", "2000000", "epochs must be <= 1000000"),
        ("--op-threads", "5000", "op_threads must be <= 1024"),
    ):
        assert says in _refused(
            capsys, "train", "softmax", "--data", SAMPLE, "--out", str(tmp_path / "r"), flag, value
        )
    assert not (tmp_path / "r").exists()


def test_a_damaged_run_configuration_is_named(tmp_path):
    from pipelines.training.export import evaluate

    (tmp_path / "config.json").write_text('{"model": ')
    with pytest.raises(TrainError, match="config.json: not readable"):
        evaluate(tmp_path, SAMPLE)
    for text in ("[1, 2]", '{"model": "softmax", "data": 5}'):
        (tmp_path / "config.json").write_text(text)
        with pytest.raises(
            TrainError, match="config.json: not a run configuration mnist-data wrote"
        ):
            evaluate(tmp_path)
    (tmp_path / "config.json").write_text('{"model": "softmax"}')
    with pytest.raises(TrainError, match="config.json: not a usable run configuration"):
        train_quiet(get_config("softmax", "modern"), tmp_path, resume=True)


def test_a_run_whose_configuration_names_a_setting_since_removed_still_evaluates(tmp_path):
    from pipelines.training.export import evaluate

    summary = train_quiet(get_config("softmax", "modern", epochs=1), tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps(config | {"batches_per_fetch": 8}))
    assert evaluate(tmp_path)["test_accuracy"] == summary["test_accuracy"]


def test_damaged_run_files_and_an_empty_test_split_are_named(tmp_path):
    import mnist_data
    from pipelines.training.export import evaluate

    run = tmp_path / "run"
    config = get_config("softmax", "modern", epochs=1)
    train_quiet(config, run)
    metrics = (run / "metrics.json").read_text()
    (run / "metrics.json").write_text(metrics[:20])
    with pytest.raises(TrainError, match="metrics.json: does not hold the 1 epoch the checkpoint"):
        train_quiet(config, run, resume=True)
    for shape in (
        '{"epochs": [1]}',
        '{"epochs": [{}]}',
        '{"epochs": []}',
    ):  # JSON, but not the run's epochs
        (run / "metrics.json").write_text(shape)
        with pytest.raises(
            TrainError, match="metrics.json: does not hold the 1 epoch the checkpoint has done"
        ):
            train_quiet(config, run, resume=True)
    (run / "metrics.json").write_text(metrics)
    pointer = (run / "checkpoints" / "checkpoint").read_text()
    (run / "checkpoints" / "checkpoint").write_text("garbage")
    with pytest.raises(
        TrainError, match="checkpoint: missing or damaged, so the run's checkpoints cannot be found"
    ):
        train_quiet(config, run, resume=True)
    assert (run / "checkpoints" / "ckpt-1.index").exists()  # kept, not trained over
    (run / "checkpoints" / "checkpoint").write_text(pointer)
    for data in (run / "checkpoints").glob("*.data-*"):
        data.write_bytes(data.read_bytes()[:100])
    with pytest.raises(
        TrainError, match="ckpt-1: cannot restore this run's checkpoint, damaged or another model's"
    ):
        evaluate(run)
    images, labels = mnist_data.load(SAMPLE, "train")
    source = tmp_path / "idx"
    source.mkdir()
    for prefix, count in (("train", 200), ("t10k", 0)):
        mnist_data.write_idx(source / f"{prefix}-images-idx3-ubyte.gz", images[:count])
        mnist_data.write_idx(source / f"{prefix}-labels-idx1-ubyte.gz", labels[:count])
    with pytest.raises(
        TrainError, match="the test split, on which a run reports its accuracy, holds no examples"
    ):
        train_quiet(config, tmp_path / "empty-test", data=source)


def test_a_file_size_limit_while_checkpointing_is_one_line(tmp_path):
    import resource

    limited = subprocess.run(
        [
            sys.executable,
            "-m",
            "mnist_data_cli",
            "train",
            "mlp",
            "--data",
            SAMPLE,
            "--epochs",
            "1",
            "--quiet",
            "--out",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000)),
    )
    assert limited.returncode == 1 and "Traceback" not in limited.stderr, limited.stderr
    assert (
        limited.stderr.strip()
        .splitlines()[-1]
        .startswith(f"mnist-data: error: {tmp_path / 'run' / 'checkpoints'}")
    )
    assert "File too large" in limited.stderr


def test_images_of_another_size_are_refused_by_name(tmp_path):
    import mnist_data

    rng = np.random.default_rng(0)
    for prefix, count in (("train", 300), ("t10k", 100)):
        mnist_data.write_idx(
            tmp_path / f"{prefix}-images-idx3-ubyte.gz",
            rng.integers(0, 256, (count, 20, 20), np.uint8),
        )
        mnist_data.write_idx(
            tmp_path / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, count, np.uint8)
        )
    with pytest.raises(
        mnist_data.DatasetError, match="images are 20x20; the reference models take 28x28"
    ):
        train_quiet(get_config("softmax", "modern", epochs=1), tmp_path / "run", data=str(tmp_path))


def test_op_threads_come_from_the_preset_or_the_flag_and_evaluate_matches(tmp_path):
    from pipelines.training.setup import local_devices, use_op_threads

    run = tmp_path / "run"
    args = f"--epochs 1 --op-threads 2 --out {run} --json {tmp_path / 's.json'} --quiet"
    _cli("train", "softmax", "--data", SAMPLE, *args.split())
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["device"].endswith("ops on 2 threads)"), summary["device"]
    assert json.loads((run / "config.json").read_text())["op_threads"] == 2
    evaluated = json.loads(_cli("evaluate", str(run), "--data", SAMPLE, "--json").stdout)
    assert evaluated["test_accuracy"] == summary["test_accuracy"]
    assert evaluated["device"] == summary["device"]  # evaluate took the run's thread count
    # Once TensorFlow has started, its thread pools stay as they are, and the device says so.
    float(tf.constant(1.0) + 1.0)
    before = local_devices()[1]
    assert use_op_threads(3) is False and local_devices()[1] == before


def test_xla_step_trains(tmp_path):
    summary = train_quiet(get_config("lenet", "modern", epochs=2, xla=True), tmp_path / "run")
    assert summary["xla"] is True and summary["test_accuracy"] > 0.5


def test_mixed_precision_path_trains_and_serves_float32(tmp_path):
    # The GPU default (bfloat16 compute, float32 variables, EMA and logits), forced on the CPU.
    summary = train_quiet(
        get_config("lenet", "modern", epochs=3, mixed_precision=True), tmp_path / "run"
    )
    assert summary["test_accuracy"] > 0.5
    served = tf.saved_model.load(str(tmp_path / "run" / "saved_model")).signatures[
        "serving_default"
    ]
    out = served(images=tf.zeros([2, 28, 28], tf.uint8))["probabilities"]
    assert out.dtype == tf.float32 and out.shape == (2, 10)
    assert served(images=tf.zeros([0, 28, 28], tf.uint8))["probabilities"].shape == (
        0,
        10,
    )  # none in, none out


def test_bench_train_reports_every_method_and_its_headline_ratios(tmp_path, capsys):
    import mnist_data

    mnist_data.to_tfrecord(SAMPLE, tmp_path / "tfr", progress=False)
    printed = _cli(
        "bench",
        "train",
        "softmax",
        "--data",
        str(tmp_path / "tfr"),
        "--format",
        "tfrecord",
        "--xla",
        "--steps",
        "20",
        "--repeat",
        "1",
        "--json",
        str(tmp_path / "b.json"),
    ).stdout
    result = json.loads((tmp_path / "b.json").read_text())
    assert result["xla"] is True and result["data"] == str(tmp_path / "tfr")
    assert "holds tfrecord output, not png" in _refused(
        capsys, "bench", "train", "softmax", "--data", str(tmp_path / "tfr"), "--format", "png"
    )
    methods = ("pipeline", "synthetic", "synthetic_fresh", "keras_fit", "resident")
    for name in methods:
        assert result[f"{name}_images_per_second"] > 0, name
    assert result["device"].endswith("ops on 1 thread)"), result["device"]  # the softmax preset's
    for name in methods[1:]:  # every ratio is (a) over the method's own measured figure
        assert result[f"pipeline_vs_{name}"] == pytest.approx(
            result["pipeline_images_per_second"] / result[f"{name}_images_per_second"]
        ), name
    # Judged against fresh batches, the resident split and Keras fit; one batch reused is not.
    assert result["headline_targets"] == {
        "pipeline_vs_synthetic_fresh": 0.85,
        "pipeline_vs_resident": 0.95,
        "pipeline_vs_keras_fit": 5.0,
    }
    headline, reference = printed.split("headline:\n")[1].split("reference only")
    lines = [" ".join(line.split()) for line in headline.splitlines() if line.strip()]
    assert len(lines) == len(result["headline_targets"]), lines
    for key, target in result["headline_targets"].items():
        name = key.removeprefix("pipeline_vs_").replace("_", " ")
        assert any(
            line.startswith(f"pipeline / {name} {result[key]:.3f} target >= {target:g}")
            for line in lines
        ), (key, lines)
    assert "L2 cache" in reference
    reused = result["pipeline_vs_synthetic"]
    assert f"pipeline / synthetic {reused:.3f}" in " ".join(reference.split())


MIRRORED = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from pipelines.training import setup
from pipelines.training.config import get_config
from pipelines.training.train import train
setup.local_devices = lambda: (
    tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]), "2 x CPU"
)
config = get_config("mlp", "seed", epochs=2, batch_size=201)  # shares of 101 and 100
print(json.dumps(train(config, "mnist-sample", sys.argv[1], progress=False)))
"""


def test_mirrored_strategy_over_two_devices_matches_one_device(tmp_path):
    # Two logical CPUs stand in for two GPUs: same code path (each replica's share of a batch,
    # uneven here, per-replica loss scaling, cross-replica EMA update), and the same result as
    # one device.
    out = subprocess.run(
        [sys.executable, "-c", MIRRORED, str(tmp_path / "mirrored")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()[-1]
    mirrored = json.loads(out)
    single = train_quiet(get_config("mlp", "seed", epochs=2, batch_size=201), tmp_path / "single")
    assert mirrored["device"] == "2 x CPU" and mirrored["steps"] == single["steps"]
    assert mirrored["loss"] == pytest.approx(single["loss"], rel=1e-4)
    assert mirrored["test_accuracy"] == pytest.approx(single["test_accuracy"], abs=0.006)


def test_trains_from_converted_tfrecords(tmp_path):
    import mnist_data

    mnist_data.to_tfrecord(SAMPLE, tmp_path / "tfrecord", progress=False)
    summary = train_quiet(
        get_config("softmax", "modern", epochs=3), tmp_path / "run", data=str(tmp_path / "tfrecord")
    )
    assert summary["test_accuracy"] > 0.7


def test_a_run_records_a_catalog_name_even_beside_a_folder_of_that_name(tmp_path, monkeypatch):
    from mnist_data import resolve_source
    from pipelines.training.run_dir import portable_data

    monkeypatch.chdir(tmp_path)
    (tmp_path / "fashion-mnist").mkdir()  # loading takes the catalog's data, so the run must say so
    (tmp_path / "mine").mkdir()
    assert portable_data(resolve_source("fashion-mnist")) == "fashion-mnist"
    assert portable_data(resolve_source("mine")) == str(tmp_path / "mine")


def test_a_run_directory_in_use_is_refused(tmp_path):
    import fcntl

    from pipelines.training.run_dir import LOCK_FILE

    run = tmp_path / "run"
    run.mkdir()
    with open(run / LOCK_FILE, "a") as held:  # as a training run in another process holds it
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        refused = _cli(
            "train", "softmax", "--data", SAMPLE, "--epochs", "1", "--out", str(run), check=False
        )
    assert refused.returncode == 1 and f"{run} is in use by another training run" in refused.stderr
    assert [p.name for p in run.iterdir()] == [LOCK_FILE]
    summary = train_quiet(get_config("softmax", "modern", epochs=1), run)  # free again
    assert summary["epochs"] == 1


def test_a_run_whose_data_moved_resumes_from_the_new_place(tmp_path, capsys):
    import mnist_data

    mnist_data.to_tfrecord(SAMPLE, tmp_path / "tfr", progress=False)
    run = tmp_path / "run"
    _cli(
        "train",
        "softmax",
        "--preset",
        "seed",
        "--data",
        str(tmp_path / "tfr"),
        "--epochs",
        "1",
        "--out",
        str(run),
        "--quiet",
    )
    (tmp_path / "tfr").rename(tmp_path / "moved")
    assert f"the run's data {tmp_path / 'tfr'} is no longer there; give --data" in _refused(
        capsys, "train", "softmax", "--resume", "--epochs", "2", "--out", str(run)
    )
    _cli(
        "train",
        "softmax",
        "--resume",
        "--epochs",
        "2",
        "--data",
        str(tmp_path / "moved"),
        "--out",
        str(run),
        "--quiet",
    )
    recorded = json.loads((run / "config.json").read_text())
    assert (recorded["epochs"], recorded["data"]) == (2, str(tmp_path / "moved"))


def test_a_run_on_mnist_records_the_sample_when_the_sample_stood_in(
    tmp_path, monkeypatch, sample_dir
):
    import importlib
    import shutil

    from mnist_data import FetchError, resolve_source
    from pipelines.training.run_dir import portable_data

    def offline(*args, **kwargs):
        raise FetchError("offline")

    monkeypatch.setattr(importlib.import_module("mnist_data.sources.source"), "fetch", offline)
    with pytest.warns(UserWarning, match="using the embedded 2,000-digit sample"):
        first = train_quiet(get_config("softmax", "seed", epochs=1), tmp_path / "run", data="mnist")
        resumed = train_quiet(
            get_config("softmax", "seed", epochs=2), tmp_path / "run", data="mnist", resume=True
        )
    assert first["data"] == resumed["data"] == "mnist-sample" and resumed["epochs"] == 2
    shutil.copytree(sample_dir, tmp_path / "data" / "mnist")
    monkeypatch.setenv("MNIST_DATA_DIR", str(tmp_path / "data"))
    assert portable_data(resolve_source("mnist")) == "mnist"


def test_a_run_whose_data_was_replaced_under_its_path_neither_resumes_nor_evaluates_on_it(
    tmp_path, capsys
):
    import mnist_data

    data = tmp_path / "tfr"
    mnist_data.to_tfrecord(SAMPLE, data, progress=False)
    run = tmp_path / "run"
    first = train_quiet(get_config("softmax", "modern", epochs=2), run, data=str(data))
    _cli("evaluate", str(run))  # unchanged: fine
    images, labels = mnist_data.load(SAMPLE, "train")
    other = tmp_path / "relabelled"
    other.mkdir()
    for prefix, (x, y) in (("train", (images, labels)), ("t10k", mnist_data.load(SAMPLE, "test"))):
        mnist_data.write_idx(other / f"{prefix}-images-idx3-ubyte.gz", x)
        mnist_data.write_idx(
            other / f"{prefix}-labels-idx1-ubyte.gz", ((y + 1) % 10).astype(np.uint8)
        )
    mnist_data.to_tfrecord(
        other, data, overwrite=True, progress=False
    )  # the same path, other examples
    refused = _cli("train", "softmax", "--out", str(run), "--resume", check=False)
    assert refused.returncode == 1 and "its files changed since the run" in refused.stderr
    refused = _cli("evaluate", str(run), check=False)
    assert (
        refused.returncode == 1
        and f"give --data {data} to evaluate on them as they are now" in refused.stderr
    )
    relabelled = json.loads(_cli("evaluate", str(run), "--data", str(data), "--json").stdout)
    assert (
        relabelled["test_accuracy"] < first["test_accuracy"] / 2
    )  # the same weights, other labels
