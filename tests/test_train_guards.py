"""train.py checks what it is given before any work, and never leaves the served model half replaced.

Bad numbers are refused by the argument parser; too little data gets one plain paragraph and exit
status 2; a run builds its files in its run folder and swaps them into the served folder only
when it has finished, keeping the model it replaced for ``train.py --restore-previous``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import audio_factory
from conftest import TINY_ACTORS, run_train

SERVED = ("model.keras", "config.json", "metrics.json", "history.json", "split.csv")


# ------------------------------------------------------------------------------- numbers


@pytest.mark.parametrize("argv, option, value", [
    (["--epochs", "0"], "--epochs", "0"),
    (["--epochs", "-3"], "--epochs", "-3"),
    (["--cv", "1"], "--cv", "1"),
    (["--cv", "0"], "--cv", "0"),
    (["--batch-size", "0"], "--batch-size", "0"),
    (["--patience", "-1"], "--patience", "-1"),
    (["--n-mels", "0"], "--n-mels", "0"),
    (["--workers", "0"], "--workers", "0"),
    (["--learning-rate", "nan"], "--learning-rate", "nan"),
    (["--learning-rate", "-0.001"], "--learning-rate", "-0.001"),
    (["--learning-rate", "inf"], "--learning-rate", "inf"),
    (["--top-db", "inf"], "--top-db", "inf"),
    (["--top-db", "-80"], "--top-db", "-80"),
    (["--test-fraction", "nan"], "--test-fraction", "nan"),
    (["--cv", "3", "--folds", "3"], "--folds", "3"),
    (["--cv", "3", "--folds", "-1"], "--folds", "-1"),
])
def test_a_bad_number_is_refused_with_its_value_before_any_work(argv, option, value, capsys, tmp_path):
    import train

    with pytest.raises(SystemExit) as exit_info:
        train.parse_args([*argv, "--artifacts", str(tmp_path / "out"), "--run-dir", str(tmp_path / "run")])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    after_option = error.split(f"argument {option}:", 1)[-1]
    assert f"argument {option}:" in error and f" {value} " in f"{after_option} ", error
    assert not (tmp_path / "out").exists() and not (tmp_path / "run").exists()


def test_folds_without_cv_are_refused(capsys):
    import train

    with pytest.raises(SystemExit):
        train.parse_args(["--folds", "0"])
    assert "--folds" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--cv", "corpus", "--folds", "0"], "--cv corpus holds out every corpus"),
    (["--cv", "5"], "--cv 5 goes with --front-end log_mel"),
    (["--front-end", "log_mel", "--folds", "1"], "give --cv K or --cv corpus too"),
])
def test_cross_validation_options_that_do_not_fit_the_front_end_are_refused(argv, message, capsys):
    import train

    with pytest.raises(SystemExit):
        train.parse_args(argv)
    assert message in capsys.readouterr().err


def test_the_cnn_can_hold_out_chosen_corpora():
    import train

    args = train.parse_args(["--front-end", "log_mel", "--cv", "corpus", "--folds", "1", "3"])
    assert args.cv == "corpus" and args.folds == [1, 3]


def test_the_default_numbers_are_accepted():
    import train

    args = train.parse_args([])
    assert args.epochs >= 1 and args.cv is None


# ------------------------------------------------------------------------------- too little data


def _train(data: Path, tmp_path: Path, *extra: str) -> int:
    return run_train(["--ravdess-dir", str(data), "--epochs", "1", "--members", "cosine:none",
                      "--artifacts", str(tmp_path / "out"), "--run-dir", str(tmp_path / "run"),
                      "--cache-dir", str(tmp_path / "cache"), "--verbose", "0", *extra])


def test_two_speakers_are_too_few_and_the_message_says_what_was_found(tmp_path, capsys):
    data = tmp_path / "ravdess"
    audio_factory.make_ravdess(data, (1, 2), clips_per_emotion=1, seconds=0.5)
    assert _train(data, tmp_path) == 2
    message = capsys.readouterr().err
    assert "2 speakers" in message and "at least 3" in message, message
    assert "angry 2" in message  # clips per emotion
    assert "Traceback" not in message
    assert not (tmp_path / "out").exists()


def test_audio_that_does_not_decode_is_named_and_counted(tmp_path, capsys):
    data = tmp_path / "ravdess"
    for actor in TINY_ACTORS[:4]:
        name = audio_factory.ravdess_name("angry", actor)
        path = data / f"Actor_{actor:02d}" / name
        path.parent.mkdir(parents=True)
        path.write_bytes(b"this is not audio")
    assert _train(data, tmp_path) == 2
    message = capsys.readouterr().err
    assert "4 files did not decode" in message and name in message, message
    assert "0 speakers" in message
    assert not (tmp_path / "out").exists()


def test_more_folds_than_speakers_is_refused(tmp_path, capsys):
    data = tmp_path / "ravdess"
    audio_factory.make_ravdess(data, TINY_ACTORS[:4], clips_per_emotion=1, seconds=0.5)
    assert _train(data, tmp_path, "--cv", "5") == 2
    message = capsys.readouterr().err
    assert "4 speakers" in message and "--cv 5" in message, message


def test_corpus_folds_beyond_the_corpora_found_are_named(tmp_path, capsys):
    data = tmp_path / "ravdess"
    audio_factory.make_ravdess(data, TINY_ACTORS, clips_per_emotion=1, seconds=0.5)
    audio_factory.make_crema(tmp_path / "crema", range(1001, 1005), seconds=0.5)
    assert _train(data, tmp_path, "--crema-dir", str(tmp_path / "crema"), "--cv", "corpus", "--folds", "2") == 2
    message = capsys.readouterr().err
    assert "--folds 2" in message and "0 crema, 1 ravdess" in message, message
    assert not (tmp_path / "out").exists()


def test_one_corpus_cannot_be_held_out_against_itself(tmp_path, capsys):
    data = tmp_path / "ravdess"
    audio_factory.make_ravdess(data, TINY_ACTORS, clips_per_emotion=1, seconds=0.5)
    assert _train(data, tmp_path, "--cv", "corpus") == 2
    assert "at least 2 corpora for --cv corpus" in capsys.readouterr().err


@pytest.mark.slow
def test_leave_one_corpus_out_trains_the_cnn_once_per_corpus(tmp_path):
    import json

    data = tmp_path / "ravdess"
    audio_factory.make_ravdess(data, TINY_ACTORS, clips_per_emotion=1, seconds=0.5)
    # like nEMO and TurEV-DB, one corpus lacks an emotion: its fold has no recall for it
    audio_factory.make_crema(tmp_path / "crema", range(1001, 1007), seconds=0.5,
                             emotions=[e for e in audio_factory.SIX_EMOTIONS if e != "disgust"])
    assert _train(data, tmp_path, "--crema-dir", str(tmp_path / "crema"), "--cv", "corpus") == 0
    report = json.loads((tmp_path / "run" / "loco_ser_cnn_lite.json").read_text())
    assert report["cv"] == "corpus" and report["n_folds"] == 2
    assert [fold["corpus"] for fold in report["folds"]] == ["crema", "ravdess"]
    assert report["folds"][0]["recall"]["disgust"] is None
    assert report["summary"]["recall"]["disgust"] == {"mean": report["folds"][1]["recall"]["disgust"], "std": 0.0,
                                                      "folds": 1}
    assert all(speaker.startswith(fold["corpus"] + "_") for fold in report["folds"] for speaker in fold["test_speakers"])
    assert (tmp_path / "run" / "oof_loco_ser_cnn_lite.json").is_file()
    assert not (tmp_path / "out").exists()  # a corpus hold-out is a measurement: nothing goes to the served folder


# ------------------------------------------------------------------------------- the served model


@pytest.mark.slow
def test_the_served_model_is_replaced_only_by_a_finished_run_and_can_be_restored(tiny_run, tiny_artifacts,
                                                                                   tmp_path, monkeypatch):
    from ser_core.inference import artifacts

    served = tmp_path / "artifacts"
    shutil.copytree(tiny_artifacts, served)
    before = {name: (served / name).read_bytes() for name in SERVED}
    argv = ["--ravdess-dir", str(tiny_run.data_dir), "--epochs", "1", "--batch-size", "16",
            "--members", "cosine:none", "--artifacts", str(served), "--run-dir", str(tmp_path / "run"),
            "--cache-dir", str(tiny_run.cache_dir), "--fresh", "--verbose", "0"]

    # A run that dies while writing its reports (killed, out of memory) leaves the served model alone.
    original = artifacts.write_json

    def dies_on_metrics(path, *arguments, **keywords):
        if Path(path).name == "metrics.json":
            raise KeyboardInterrupt
        return original(path, *arguments, **keywords)

    monkeypatch.setattr(artifacts, "write_json", dies_on_metrics)
    assert run_train(argv) == 130  # Ctrl-C: "interrupted, nothing was replaced" (issue 23)
    assert {name: (artifacts.served_model_dir(served) / name).read_bytes() for name in SERVED} == before
    monkeypatch.setattr(artifacts, "write_json", original)

    # A finished run replaces it and keeps the one it replaced.
    assert run_train(argv) == 0
    current = artifacts.served_model_dir(served)  # artifacts/current, switched in one step
    after = {name: (current / name).read_bytes() for name in SERVED}
    assert after["config.json"] != before["config.json"] and after["model.keras"] != before["model.keras"]
    assert {name: (served / "previous" / name).read_bytes() for name in SERVED} == before
    assert not [p.name for p in served.iterdir() if p.name.startswith(".") and p.name != ".train.lock"]

    # One command brings the previous model back (and keeps the newer one as the previous).
    assert run_train(["--restore-previous", "--artifacts", str(served)]) == 0
    assert {name: (artifacts.served_model_dir(served) / name).read_bytes() for name in SERVED} == before
    assert {name: (served / "previous" / name).read_bytes() for name in SERVED} == after


def test_restore_without_a_previous_model_says_so(tmp_path, capsys):
    assert run_train(["--restore-previous", "--artifacts", str(tmp_path)]) == 2
    assert "no previous model" in capsys.readouterr().err
