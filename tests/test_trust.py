"""Runs a user can trust: bad or unusual input, run directories that never mix, resuming, seeds.

Each test is one case a user tried (issue "Runs a user can trust"); the real-data cases use a
small copy of the tire category (a few files, shrunk to 64 px) so that they stay fast.
"""

import dataclasses
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import cv2
import keras
import numpy as np
import pytest

from anomzoo import evaluation, rundir, runs, training
from anomzoo.cli import main
from anomzoo.data import DatasetError, load_dataset, load_mvtec
from anomzoo.models import build_model, loading

TINY_TRAIN = ["train", "sagan", "--config", "tiny", "--batch-size", "32"]


def _error(capsys):
    return capsys.readouterr().err


def _copy_shrunk(source, target):
    target.parent.mkdir(parents=True, exist_ok=True)
    image = cv2.imread(str(source), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(target), cv2.resize(image, (64, 64), interpolation=cv2.INTER_NEAREST))


@pytest.fixture
def small_tire(tire_root, tmp_path):
    """A small MVTec-layout copy of the tire: 6 train, 2 good and 2 cut test images, 2 masks."""
    root = tmp_path / "tire"
    for index in range(6):
        _copy_shrunk(tire_root / "train" / "good" / f"{index:03d}.png", root / "train" / "good" / f"{index:03d}.png")
    for index in range(2):
        name = f"{index:03d}.png"
        _copy_shrunk(tire_root / "test" / "good" / name, root / "test" / "good" / name)
        _copy_shrunk(tire_root / "test" / "cut" / name, root / "test" / "cut" / name)
        _copy_shrunk(tire_root / "ground_truth" / "cut" / f"{index:03d}_mask.png",
                     root / "ground_truth" / "cut" / f"{index:03d}_mask.png")
    return root


# -- the run directory ----------------------------------------------------------------------------


def test_an_out_that_is_a_file_is_refused_before_any_data_is_loaded(tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("precious")
    started = time.time()
    assert main([*TINY_TRAIN, "--out", str(target)]) == 2
    assert str(target) in _error(capsys) and target.read_text() == "precious"
    assert time.time() - started < 5, "the check must come before data loading and training"


def test_export_checks_its_out_before_loading_the_model(tmp_path, capsys):
    """A used --out is named at once, before the (here missing) model would be loaded."""
    used = tmp_path / "exports"
    (used / "old").mkdir(parents=True)
    assert main(["export", str(tmp_path / "no-model.keras"), "--out", str(used)]) == 2
    assert f"--out {used} is not empty" in _error(capsys) and (used / "old").is_dir()


def test_an_out_under_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert main([*TINY_TRAIN, "--out", str(tmp_path / "file" / "run")]) == 2
    assert "cannot write the run directory" in _error(capsys)


def test_a_finished_run_is_never_overwritten_nor_mixed(tmp_path, capsys):
    run = tmp_path / "run"
    assert main([*TINY_TRAIN, "--epochs", "1", "--out", str(run)]) == 0
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    assert not (run / rundir.CHECKPOINT_DIR).exists(), "the checkpoint goes once the run has finished"
    capsys.readouterr()
    assert main([*TINY_TRAIN, "--epochs", "1", "--out", str(run)]) == 2
    assert "holds a finished run" in _error(capsys)
    assert main(["evaluate", str(run), "--dataset", "digits", "--out", str(run)]) == 2
    assert "not empty" in _error(capsys)
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


def test_a_foreign_non_empty_directory_is_refused(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main([*TINY_TRAIN, "--out", str(tmp_path)]) == 2
    assert "not empty" in _error(capsys)


def test_an_unfinished_run_of_another_command_is_not_continued(tmp_path, capsys):
    run = tmp_path / "run"
    rundir.open_run_dir(run, runs.train_request("sagan", epochs=3, config="tiny", batch_size=32))
    assert main([*TINY_TRAIN, "--epochs", "5", "--out", str(run)]) == 2
    assert "epochs: 3 there, 5 now" in _error(capsys)


def test_a_run_failing_before_training_leaves_nothing_behind(tmp_path, capsys):
    run = tmp_path / "run"
    assert main([*TINY_TRAIN, "--dataset", str(tmp_path / "missing"), "--out", str(run)]) == 2
    assert not run.exists()


# -- resume, Ctrl-C and seeds ----------------------------------------------------------------------


def _cli(*argv):
    return [sys.executable, "-m", "anomzoo.cli", *argv]


def _wait_for_checkpoint(process, run, timeout=120):
    state = run / rundir.CHECKPOINT_DIR / "state.json"
    deadline = time.time() + timeout
    while not state.is_file():
        assert process.poll() is None, process.communicate()
        assert time.time() < deadline, "no checkpoint was written"
        time.sleep(0.1)


def test_a_killed_run_resumes_and_ends_as_an_uninterrupted_one(tmp_path):
    argv = [*TINY_TRAIN, "--epochs", "12", "--seed", "3"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    killed = tmp_path / "killed"
    process = subprocess.Popen(_cli(*argv, "--out", str(killed)), env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    _wait_for_checkpoint(process, killed)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert not (killed / "metrics.json").exists(), "the run finished before it could be killed"
    subprocess.run(_cli(*argv, "--out", str(killed)), env=env, check=True, capture_output=True, timeout=600)
    subprocess.run(_cli(*argv, "--out", str(tmp_path / "whole")), env=env, check=True, capture_output=True,
                   timeout=600)
    resumed = json.loads((killed / "metrics.json").read_text())
    whole = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    assert resumed["provenance"]["resumed_at_epoch"] >= 1
    for key in ("image_auroc", "detection_accuracy", "score_threshold"):
        assert resumed[key] == whole[key], key
    assert resumed["provenance"]["final_train_losses"] == whole["provenance"]["final_train_losses"]


def test_ctrl_c_stops_cleanly_and_keeps_the_last_epoch(tmp_path):
    run = tmp_path / "run"
    # A background job (nohup, CI runners) inherits SIGINT ignored, and Python keeps it so: restore
    # the default in the child, as in a terminal.
    process = subprocess.Popen(_cli(*TINY_TRAIN, "--epochs", "200", "--out", str(run)), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    _wait_for_checkpoint(process, run)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "Traceback" not in err and "interrupted" in err and f"--out {run}" in err
    assert (run / rundir.CHECKPOINT_DIR / "state.json").is_file()


@pytest.mark.parametrize("name, options", [("sagan", {}), ("anoseg", {}), ("anoseg", {"weight_averaging": 0.9}),
                                           ("attention_adgan", {}), ("cavga", {})])
def test_training_resumed_in_a_new_model_equals_an_uninterrupted_one(name, options, tmp_path):
    """Interrupted after epoch 2 of 3 (for AnoSeg at the start of its second stage, for the attention
    network inside ADGAN's; with selection on the synthetic validation set; and with AnoSeg's weight
    averaging, whose averages live in the optimizers' state): a freshly built model continues from
    the checkpoint to the same weights."""
    data = load_dataset("digits", seed=0)

    def build():
        keras.utils.set_random_seed(0)
        return build_model(name, "tiny", image_shape=data.image_shape, **options)

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    run = dict(epochs=3, batch_size=32, seed=0, selection="val_syn_auroc", verbose=0)
    whole = build()
    training.train(whole, data, **run)
    with pytest.raises(KeyboardInterrupt):
        training.train(build(), data, **run, checkpoint_dir=tmp_path, callbacks=[Interrupt()])
    resumed = build()
    result = training.train(resumed, data, **run, checkpoint_dir=tmp_path)
    assert len(result.history.history["loss"]) == 3
    for a, b in zip(whole.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(result.selector.last_weights, resumed.get_weights()):
        assert a.shape == b.shape


@pytest.mark.parametrize("name, options", [("sagan", {}), ("anoseg", {}), ("attention_adgan", {}), ("cavga", {}),
                                           ("sagan", {"precision": "bfloat16"})])
def test_the_same_seed_gives_the_same_run(name, options, tmp_path):
    run = dict(config="tiny", epochs=2, batch_size=32, seed=5, model_options=options, verbose=0)
    first = runs.train_run(name, tmp_path / "a", **run)
    second = runs.train_run(name, tmp_path / "b", **run)
    for key in ("image_auroc", "score_threshold"):
        assert first[key] == second[key]
    # The logged epoch losses agree to float32 rounding, not always bit for bit: when TensorFlow runs two
    # ops at once, oneDNN may compute a reduction single-threaded, in another order (seen once in AnoSeg's
    # detector_d_loss under load: 1.98539841 against 1.98539829, with identical metrics).
    assert first["provenance"]["final_train_losses"] == pytest.approx(second["provenance"]["final_train_losses"],
                                                                       rel=1e-6)


# -- the command line --------------------------------------------------------------------------------


@pytest.mark.parametrize("argv, flag", [
    (["evaluate", "run", "--dataset", "digits", "--batch-size", "0"], "--batch-size"),
    (["train", "sagan", "--seed", "-1"], "--seed"),
    (["train", "sagan", "--epochs", "0"], "--epochs"),
    (["train", "sagan", "--image-size", "many"], "--image-size"),
    (["train", "sagan", "--labelled-validation", "1.5"], "--labelled-validation"),
    (["serve", "export", "--port", "70000"], "--port"),
    (["serve", "export", "--port", "0"], "--port"),
])
def test_bad_numbers_name_their_flag(argv, flag, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2 and f"argument {flag}" in _error(capsys)


def test_help_answers_without_importing_tensorflow():
    code = ("import sys; from anomzoo.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('tensorflow', 'keras', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# -- evaluate -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("trust") / "run"
    runs.train_run("sagan", run, config="tiny", epochs=1, batch_size=32, verbose=0)
    return run


def test_evaluate_accepts_the_models_own_image_size_and_refuses_another(tiny_run, tmp_path, capsys):
    assert main(["evaluate", str(tiny_run), "--dataset", "digits", "--image-size", "32",
                 "--out", str(tmp_path / "same")]) == 0
    assert main(["evaluate", str(tiny_run), "--dataset", "digits", "--image-size", "64",
                 "--out", str(tmp_path / "other")]) == 2
    assert "trained on 32 px" in _error(capsys)


def test_a_corrupt_model_file_is_named_as_such(tmp_path):
    broken = tmp_path / "model.keras"
    broken.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ValueError, match="not a .keras file"):
        loading.load_run_model(broken)
    with pytest.raises(FileNotFoundError):
        loading.load_run_model(tmp_path / "absent.keras")


def test_a_plain_keras_model_is_refused_clearly(tmp_path):
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    plain.save(tmp_path / "plain.keras")
    with pytest.raises(ValueError, match="not an anomzoo model"):
        loading.load_run_model(tmp_path / "plain.keras")


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"provenance": 3}'])
def test_a_damaged_metrics_file_does_not_stop_evaluate(tiny_run, tmp_path, content):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(tiny_run / loading.MODEL_FILE, run / loading.MODEL_FILE)
    (run / "metrics.json").write_text(content)
    with pytest.warns(UserWarning, match="metrics.json"):
        model, facts = loading.load_run_model(run)
    assert facts == {} and model.image_shape == (32, 32, 1)


def test_without_validation_images_the_recorded_rule_says_what_was_done(tiny_run):
    model, _ = loading.load_run_model(tiny_run)
    data = load_dataset("digits", seed=0)
    empty = dataclasses.replace(data.validation, **{f.name: (getattr(data.validation, f.name)
                                                    if getattr(data.validation, f.name) is None
                                                    else getattr(data.validation, f.name)[:0])
                                                    for f in dataclasses.fields(data.validation)})
    data = dataclasses.replace(data, validation=empty)
    results, _ = evaluation.evaluate_model(model, data, batch_size=64)
    assert "detection_accuracy" not in results and "score_threshold" not in results
    assert evaluation.threshold_rule(data) == evaluation.NO_VALIDATION_RULE


# -- the loaders ---------------------------------------------------------------------------------------


def test_a_test_folder_without_defects_is_refused_before_training(small_tire):
    shutil.rmtree(small_tire / "test" / "cut")
    with pytest.raises(DatasetError, match="no defect folder"):
        load_mvtec(small_tire, image_size=32)


def test_an_empty_mask_file_is_named(small_tire):
    mask = small_tire / "ground_truth" / "cut" / "001_mask.png"
    mask.write_bytes(b"")
    with pytest.raises(DatasetError, match=str(mask)):
        load_mvtec(small_tire, image_size=32)


def test_one_grey_image_among_colour_ones_is_converted(small_tire):
    path = small_tire / "train" / "good" / "002.png"
    grey = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2GRAY)
    cv2.imwrite(str(path), grey)
    data = load_mvtec(small_tire, image_size=32)
    assert data.image_shape == (32, 32, 3)
    converted = [i for i, p in enumerate(data.train.paths) if p.endswith("002.png")] + \
                [i for i, p in enumerate(data.validation.paths) if p.endswith("002.png")]
    assert converted, "the grey image is loaded"


def test_images_of_different_sizes_name_the_odd_file(small_tire):
    path = small_tire / "test" / "good" / "001.png"
    cv2.imwrite(str(path), np.zeros((40, 50, 3), np.uint8))
    with pytest.raises(DatasetError, match=str(path)):
        load_mvtec(small_tire, image_size=None)


# -- the inference contract -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model():
    return build_model("sagan", "tiny", image_shape=(32, 32, 1))


@pytest.mark.parametrize("images, message", [
    (np.full((2, 32, 32, 1), 200.0, np.float32), r"\[0, 1\].*divide 0-255 images by 255"),
    (np.zeros((2, 64, 64, 1), np.float32), r"\(N, 32, 32, 1\)"),
    (np.zeros((2, 32, 32, 3), np.float32), r"\(N, 32, 32, 1\)"),
    (np.zeros((32, 32, 1), np.float32), r"\(N, 32, 32, 1\)"),
    (np.zeros((2, 32, 32, 1), np.int64), "dtype int64"),
    (np.full((2, 32, 32, 1), np.nan, np.float32), "NaN"),
])
def test_predict_refuses_images_outside_the_contract(tiny_model, images, message):
    with pytest.raises(ValueError, match=message):
        tiny_model.predict(images, verbose=0)


def test_predict_converts_uint8_images_explicitly(tiny_model):
    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 1), dtype=np.uint8)
    as_uint8 = tiny_model.predict(images, verbose=0)["score"]
    as_float = tiny_model.predict(images.astype(np.float32) / 255.0, verbose=0)["score"]
    np.testing.assert_allclose(as_uint8, as_float, rtol=1e-6)


def test_a_failed_evaluation_leaves_no_directory(tmp_path, capsys):
    out = tmp_path / "evaluation"
    assert main(["evaluate", str(tmp_path / "no-model"), "--dataset", "digits", "--out", str(out)]) == 2
    assert not out.exists() and "no trained model" in _error(capsys)


# -- files that tools leave beside the data, and other image formats ---------------------------------


APPLE_DOUBLE = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        "  # the header of macOS' ._name files


def test_hidden_files_and_folders_are_not_data(small_tire):
    """A folder copied from a Mac or zipped there, or opened in Jupyter, loads as the bare one does."""
    bare = load_mvtec(small_tire, image_size=32)
    (small_tire / "train" / "good" / "._000.png").write_bytes(APPLE_DOUBLE)
    (small_tire / "test" / "cut" / "._001.png").write_bytes(APPLE_DOUBLE)  # would need a mask if it were data
    for hidden in (".ipynb_checkpoints", "__MACOSX"):
        shutil.copytree(small_tire / "test" / "good", small_tire / "test" / hidden)
    data = load_mvtec(small_tire, image_size=32)
    assert sorted(set(data.test.defect_types)) == ["cut", "good"]
    for split in ("train", "validation", "test"):
        np.testing.assert_array_equal(getattr(data, split).paths, getattr(bare, split).paths)
        np.testing.assert_array_equal(getattr(data, split).images, getattr(bare, split).images)


def test_tiff_and_webp_images_and_masks_load_as_png_ones_do(small_tire):
    bare = load_mvtec(small_tire, image_size=32)
    converted = {"train/good/000.png": ".tif", "train/good/001.png": ".webp", "test/cut/000.png": ".tiff",
                 "test/cut/001.png": ".TIF", "ground_truth/cut/000_mask.png": ".tif",
                 "ground_truth/cut/001_mask.png": ".webp"}
    for name, extension in converted.items():
        png = small_tire / name
        image = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
        target = png.with_suffix(extension)
        # WebP at quality above 100 is lossless, so the loaded pixels can be compared with the PNG's
        assert cv2.imwrite(str(target), image, [cv2.IMWRITE_WEBP_QUALITY, 101]), target
        png.unlink()
    data = load_mvtec(small_tire, image_size=32)
    for split in ("train", "validation", "test"):
        np.testing.assert_array_equal(getattr(data, split).images, getattr(bare, split).images)
        np.testing.assert_array_equal(getattr(data, split).masks, getattr(bare, split).masks)
    assert any(path.endswith("000.tif") for path in data.train.paths) or \
        any(path.endswith("000.tif") for path in data.validation.paths)


def test_one_live_process_per_run_directory(tmp_path):
    """A run directory held by a live process (training, or stopped with kill -STOP) is refused to a
    second one (--resume would have taken it over and both would write the model); a lock whose
    process has ended is stale and taken over."""
    run = tmp_path / "run"
    request = runs.train_request("sagan", config="tiny", epochs=1)
    assert rundir.open_run_dir(run, request) is False
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (run / rundir.LOCK_FILE).write_text(str(holder.pid))
        assert rundir.open_run_dir(run, request) is True  # the lock file alone does not make it foreign
        with pytest.raises(rundir.RunDirectoryError, match=f"in use by process {holder.pid}"):
            runs.train_run("sagan", run, config="tiny", epochs=1)
    finally:
        holder.kill()
        holder.wait()
    with rundir.run_lock(run):  # the holder has ended: its lock is stale
        assert (run / rundir.LOCK_FILE).read_text() == str(os.getpid())
    assert not (run / rundir.LOCK_FILE).exists()


def test_weak_fraction_is_refused_for_a_model_that_reads_no_labels(tmp_path):
    """SAGAN would learn the anomalous images --weak-fraction moves into training as normal ones."""
    with pytest.raises(ValueError, match="reads no labels"):
        runs.train_run("sagan", tmp_path / "run", config="tiny", epochs=1, weak_fraction=0.5)
    assert not (tmp_path / "run").exists()


def test_a_damaged_checkpoint_and_a_full_disk_are_one_clear_error(tmp_path, monkeypatch):
    """Truncated checkpoint weights or a deleted random.npz: a message naming the checkpoint and how to
    start over (were h5py / numpy tracebacks). A checkpoint that cannot be written (a full disk is an
    h5py RuntimeError): an OSError saying the previous epoch's checkpoint is kept, and the next run
    continues from it."""
    from anomzoo import checkpoint

    data = load_dataset("digits", seed=0)
    run = dict(epochs=2, batch_size=32, seed=0, verbose=0)

    def build():
        keras.utils.set_random_seed(0)
        return build_model("sagan", "tiny", image_shape=data.image_shape)

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        training.train(build(), data, **run, checkpoint_dir=tmp_path / "ck", callbacks=[Interrupt()])
    saved = next((tmp_path / "ck").glob("epoch-*"))
    weights = saved / checkpoint.WEIGHTS_FILE
    intact = weights.read_bytes()
    weights.write_bytes(intact[:1000])
    with pytest.raises(ValueError, match=f"the checkpoint in {saved} cannot be read.*delete"):
        training.train(build(), data, **run, checkpoint_dir=tmp_path / "ck")
    weights.write_bytes(intact)
    (saved / checkpoint.RANDOM_FILE).rename(tmp_path / "random.npz")
    with pytest.raises(ValueError, match="cannot be read"):
        training.train(build(), data, **run, checkpoint_dir=tmp_path / "ck")
    (tmp_path / "random.npz").rename(saved / checkpoint.RANDOM_FILE)

    def full_disk(self, path, *args, **kwargs):
        raise RuntimeError("Can't synchronously write data (file write failed: No space left on device)")

    monkeypatch.setattr(keras.Model, "save_weights", full_disk)
    with pytest.raises(OSError, match="cannot write the checkpoint of epoch 2.*previous epoch's checkpoint is kept"):
        training.train(build(), data, **run, checkpoint_dir=tmp_path / "ck")
    monkeypatch.undo()
    assert json.loads((tmp_path / "ck" / "state.json").read_text())["epoch"] == 1
    assert len(training.train(build(), data, **run, checkpoint_dir=tmp_path / "ck").history.history["loss"]) == 2


def test_a_full_disk_at_the_final_save_is_one_line_and_the_run_then_finishes(tmp_path, monkeypatch, capsys):
    """The final model.keras cannot be written (a full disk): one line, no model file half-written, the
    checkpoint kept; the same command then finishes the run without training again."""
    run = tmp_path / "run"
    argv = ["train", "sagan", "--config", "tiny", "--epochs", "1", "--batch-size", "32", "--out", str(run)]

    def full_disk(model, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(runs, "save_model", full_disk)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "Traceback" not in err
    assert not (run / loading.MODEL_FILE).exists() and (run / rundir.CHECKPOINT_DIR / "state.json").is_file()
    monkeypatch.undo()
    assert main(argv) == 0
    assert (run / loading.MODEL_FILE).is_file() and not (run / rundir.LOCK_FILE).exists()
