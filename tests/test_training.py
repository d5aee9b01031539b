"""End-to-end: train.main on synthetic speech, the artifacts it writes, and the predictor on them."""

from __future__ import annotations

import csv
import json
import zipfile
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import audio_factory
from conftest import TINY_ACTORS, TINY_CLIPS_PER_EMOTION, run_train
from ser_core.training.models import DEFAULT_ARCH
from ser_core.inference.params import EMOTIONS, FeatureParams

pytestmark = pytest.mark.slow

N_TINY_CLIPS = len(TINY_ACTORS) * len(EMOTIONS) * TINY_CLIPS_PER_EMOTION


# --------------------------------------------------------------------------------- the artifacts


def test_training_exits_zero_and_writes_every_artifact(tiny_run, tiny_artifacts):
    assert tiny_run.exit_code == 0
    for name in ("model.keras", "config.json", "metrics.json", "history.json", "split.csv"):
        assert (tiny_artifacts / name).is_file(), name
        assert (tiny_artifacts / name).stat().st_size > 0, name
    # Written atomically: no temporary files left behind.
    assert not [p.name for p in tiny_artifacts.iterdir() if p.name.startswith(".")]


def test_config_has_the_documented_keys(tiny_artifacts):
    config = json.loads((tiny_artifacts / "config.json").read_text())
    for key in ("model_name", "arch", "parameters", "emotions", "feature_params", "temperature",
                "threshold", "trained_at", "training_seconds", "seed", "data"):
        assert key in config, key
    assert config["emotions"] == list(EMOTIONS)
    assert FeatureParams.from_dict(config["feature_params"]) == FeatureParams()
    assert 0.05 <= config["temperature"] <= 20.0
    assert 0.0 < config["threshold"] < 1.0
    assert config["parameters"] > 1000
    assert config["data"]["ravdess"]["clips"] == N_TINY_CLIPS
    assert config["data"]["ravdess"]["duplicates_dropped"] == 0


def test_metrics_have_the_documented_keys(tiny_artifacts):
    metrics = json.loads((tiny_artifacts / "metrics.json").read_text())
    assert set(metrics) >= {"test", "validation", "calibration", "split"}
    for part in ("test", "validation"):
        report = metrics[part]
        assert set(report) >= {"n", "accuracy", "uar", "macro_f1", "labels", "confusion_matrix", "per_class"}
        assert 0.0 <= report["accuracy"] <= 1.0
        assert np.asarray(report["confusion_matrix"]).sum() == report["n"] > 0
        assert set(report["per_class"]) == set(EMOTIONS)
    calibration = metrics["calibration"]
    assert set(calibration) >= {"temperature", "ece_before", "ece_after", "reliability", "validation"}
    assert (calibration["fitted_on"], calibration["measured_on"]) == ("validation speakers", "test speakers")
    assert calibration["ece_before"] == calibration["reliability"]["before"]["ece"]
    assert calibration["ece_after"] == calibration["reliability"]["after"]["ece"]
    assert sum(calibration["reliability"]["after"]["count"]) == metrics["test"]["n"]
    split = metrics["split"]
    assert set(split) == {"train", "validation", "test"}
    assert sum(s["clips"] for s in split.values()) == N_TINY_CLIPS
    assert metrics["test"]["n"] == split["test"]["clips"]


def test_history_has_one_row_per_epoch_for_every_member(tiny_artifacts):
    from ser_core.training.recipes import DEFAULT_MEMBERS

    members = json.loads((tiny_artifacts / "history.json").read_text())["members"]  # the default ensemble
    assert [history["member"] for history in members] == list(DEFAULT_MEMBERS)
    for history in members:
        assert history["epoch"] == [1, 2]
        for key in ("accuracy", "val_accuracy", "loss", "val_loss", "learning_rate"):
            assert len(history[key]) == 2, key
            assert all(np.isfinite(history[key])), key
        assert history["best_epoch"] in (1, 2)


def _split_rows(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_split_csv_keeps_every_speaker_in_one_split(tiny_artifacts):
    rows = _split_rows(tiny_artifacts / "split.csv")
    assert len(rows) == N_TINY_CLIPS
    splits_of = defaultdict(set)
    for row in rows:
        splits_of[row["speaker"]].add(row["split"])
    assert len(splits_of) == len(TINY_ACTORS)
    assert all(len(splits) == 1 for splits in splits_of.values()), dict(splits_of)
    assert {row["split"] for row in rows} == {"train", "validation", "test"}
    for row in rows:  # labels and genders come from the file names
        actor = int(Path(row["path"]).stem.split("-")[-1])
        assert row["speaker"] == f"ravdess_{actor:02d}"
        assert row["gender"] == ("male" if actor % 2 else "female")


def test_no_pickle_anywhere(tiny_run, tiny_artifacts):
    pickle_suffixes = (".pkl", ".pickle", ".joblib", ".p")
    for folder in (tiny_artifacts, tiny_run.run_dir, tiny_run.cache_dir):
        for path in folder.rglob("*"):
            assert path.suffix not in pickle_suffixes, path
    with zipfile.ZipFile(tiny_artifacts / "model.keras") as archive:
        names = archive.namelist()
        assert "config.json" in names
        assert not [n for n in names if n.endswith(pickle_suffixes)], names
        config = archive.read("config.json").decode()
    # Built-in layers only, so safe-mode loading never has to run stored code.
    assert "Lambda" not in config and "__lambda__" not in config
    # The feature cache loads without allow_pickle.
    cached = sorted(tiny_run.cache_dir.glob("*.npy"))
    assert len(cached) == N_TINY_CLIPS
    for path in cached:
        features = np.load(path, allow_pickle=False)
        assert features.dtype == np.float32 and features.shape[1:] == (64, 301)


def test_train_log_is_kept_in_the_run_dir(tiny_run):
    """train.py logs to <run-dir>/train.log; --fresh must not delete the log of the run it starts."""
    log = tiny_run.run_dir / "train.log"
    assert log.is_file(), f"{log} is missing after a --fresh run"
    assert "artifacts written" in log.read_text()


# --------------------------------------------------------------------------------- the predictor


def test_model_loads_in_safe_mode(tiny_artifacts):
    from ser_core.inference.artifacts import load_model

    model = load_model(tiny_artifacts / "model.keras")
    params = FeatureParams()
    logits = np.asarray(model(np.zeros((2, *params.input_shape), np.float32) - 40.0, training=False))
    assert logits.shape == (2, len(EMOTIONS))
    assert np.all(np.isfinite(logits))


def _check_prediction(prediction, emotions=EMOTIONS):
    assert list(prediction.probabilities) == list(emotions)
    values = np.array(list(prediction.probabilities.values()))
    assert np.all((values >= 0) & (values <= 1))
    assert values.sum() == pytest.approx(1.0, abs=1e-6)
    assert prediction.top_emotion == max(prediction.probabilities, key=prediction.probabilities.get)
    assert prediction.confidence == pytest.approx(values.max())
    for window in prediction.windows:
        assert sum(window.probabilities.values()) == pytest.approx(1.0, abs=1e-6)
    assert prediction.features.shape[1:] == (64, 301)
    assert len(prediction.windows) == len(prediction.features) == len(prediction.window_starts)


def test_predictor_predicts_a_file(tiny_predictor, tmp_path):
    wave = audio_factory.emotional_speech("angry", 2.0, 44_100, seed=7)
    stereo = np.stack([wave, 0.5 * wave], axis=1)
    path = audio_factory.write_audio(tmp_path / "clip.flac", stereo, 44_100)
    prediction = tiny_predictor.predict_file(path)
    _check_prediction(prediction)
    assert prediction.duration_s == pytest.approx(2.0, abs=0.01)
    assert len(prediction.windows) == 1
    as_dict = json.loads(json.dumps(prediction.to_dict()))  # JSON-serialisable
    assert as_dict["label"] in (*EMOTIONS, "uncertain")


def test_predictor_predicts_a_mono_waveform_at_44k(tiny_predictor):
    wave = audio_factory.emotional_speech("sad", 2.0, 44_100, seed=8)
    prediction = tiny_predictor.predict_wave(wave, 44_100)
    _check_prediction(prediction)
    assert prediction.duration_s == pytest.approx(2.0, abs=0.01)


def test_predictor_predicts_a_stereo_waveform_at_44k(tiny_predictor):
    """A [samples, channels] waveform, as soundfile and most audio APIs deliver it."""
    wave = audio_factory.emotional_speech("happy", 2.0, 44_100, seed=9)
    stereo = np.stack([wave, wave], axis=1)
    prediction = tiny_predictor.predict_wave(stereo, 44_100)
    _check_prediction(prediction)
    assert prediction.duration_s == pytest.approx(2.0, abs=0.01)
    mono = tiny_predictor.predict_wave(wave, 44_100)
    assert prediction.probabilities == pytest.approx(mono.probabilities, abs=1e-4)


def test_uncertain_follows_the_threshold(tiny_predictor):
    wave = audio_factory.emotional_speech("neutral", 2.0, 16_000, seed=10)
    sure = tiny_predictor.predict_wave(wave, 16_000, threshold=0.0)
    unsure = tiny_predictor.predict_wave(wave, 16_000, threshold=1.0)
    assert not sure.uncertain and sure.label == sure.top_emotion
    assert unsure.uncertain and unsure.label == "uncertain"
    assert unsure.to_dict()["label"] == "uncertain"
    at_confidence = tiny_predictor.predict_wave(wave, 16_000, threshold=sure.confidence)
    assert not at_confidence.uncertain  # confidence >= threshold is not uncertain
    default = tiny_predictor.predict_wave(wave, 16_000)
    assert default.threshold == tiny_predictor.threshold == 0.55
    assert default.uncertain == (default.confidence < 0.55)


def test_long_audio_gives_a_timeline_of_windows(tiny_predictor):
    wave = np.concatenate([audio_factory.emotional_speech(e, 2.5, 16_000, seed=i)
                           for i, e in enumerate(("angry", "sad", "happy", "neutral"))])  # 10 s
    prediction = tiny_predictor.predict_wave(wave, 16_000)
    _check_prediction(prediction)
    starts = [w.start_s for w in prediction.windows]
    assert len(starts) >= 4
    assert starts == sorted(starts) and starts[0] < 0.5
    assert np.allclose(np.diff(starts[:-1]), 1.5, atol=1e-6)  # 50 % overlap of 3 s windows
    assert prediction.windows[-1].end_s == pytest.approx(prediction.duration_s, abs=0.1)
    assert all(w.end_s - w.start_s <= 3.0 + 1e-6 for w in prediction.windows)


def test_silent_waveform_is_refused(tiny_predictor):
    from ser_core.inference.audio import AudioError

    with pytest.raises(AudioError, match="silent"):
        tiny_predictor.predict_wave(np.zeros(32_000, np.float32), 16_000)


def test_missing_artifacts_say_how_to_train(tmp_path):
    from ser_core.inference.predictor import ModelNotFoundError, Predictor

    with pytest.raises(ModelNotFoundError, match="train.py"):
        Predictor.from_artifacts(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.keras").write_bytes(b"not a zip file")
    with pytest.raises(ModelNotFoundError, match="could not be loaded"):
        Predictor.from_artifacts(tmp_path)


# ------------------------------------------------------------------ cross-validation and resuming


def test_cross_validation_one_fold_with_cosine_schedule_and_ema(tiny_run, tmp_path):
    run_dir = tmp_path / "cv"
    code = run_train(["--ravdess-dir", str(tiny_run.data_dir), "--cv", "2", "--folds", "0", "--epochs", "5",
                      "--batch-size", "16", "--members", "cosine+ema:acoustic",
                      "--artifacts", str(tmp_path / "unused"), "--run-dir", str(run_dir),
                      "--cache-dir", str(tiny_run.cache_dir), "--fresh", "--verbose", "0"])
    assert code == 0
    result = json.loads((run_dir / f"cv_{DEFAULT_ARCH}.json").read_text())
    assert [fold["fold"] for fold in result["folds"]] == [0]
    fold = result["folds"][0]
    assert len(fold["test_speakers"]) == len(TINY_ACTORS) // 2
    assert np.asarray(fold["confusion_matrix"]).sum() == len(TINY_ACTORS) // 2 * 6 * TINY_CLIPS_PER_EMOTION
    assert set(fold["robustness"]) == {"snr_20db", "snr_10db", "snr_5db", "reverb_rt60_0.6s"}
    # a cosine member keeps its last weights; the best ones are scored too, for comparison
    assert set(fold["best_checkpoint"]) == {"accuracy", "uar", "macro_f1"} and "last_checkpoint" not in fold
    assert result["members"] == ["cosine+ema:acoustic@last"]
    assert (run_dir / "fold0" / "last.keras").is_file() and (run_dir / "fold0" / "best.keras").is_file()
    assert set(result["summary"]) >= {"accuracy", "uar", "macro_f1", "recall", "pooled_calibration"}
    pooled = result["summary"]["pooled_calibration"]
    assert pooled["clips"] == np.asarray(fold["confusion_matrix"]).sum()
    assert 0 < pooled["ece_floor"] < 1 and 0 <= pooled["ece_after"] <= 1
    assert pooled["scaled_with"] == "validation speakers"  # one fold: no other folds to fit a temperature on
    with open(run_dir / "fold0" / "history.csv") as f:
        rates = [float(row["learning_rate"]) for row in csv.DictReader(f)]
    assert len(rates) == 5 and rates[0] < rates[1] < rates[2]  # three warm-up epochs to the peak,
    assert rates[2] > rates[3] > rates[4] and rates[4] < 1e-3 * rates[2]  # then cosine decay to ~0
    assert not (tmp_path / "unused").exists()  # cross-validation leaves the shipped artifacts alone


def test_training_on_every_speaker_but_validation_calibrated_by_the_cross_validation(tiny_run, tmp_path):
    from ser_core.training.recipes import DEFAULT_MEMBERS

    from ser_core.training.recipes import ensemble_arch

    import train

    args = train.parse_args([])
    arch = ensemble_arch(args.members, args.arch)
    out, cv_json = tmp_path / "artifacts", tmp_path / f"cv_{arch}.json"
    cv_json.write_text(json.dumps({  # as train.py --cv 5 of the same recipe writes it, less what is not read
        "arch": arch, "members": list(DEFAULT_MEMBERS), "feature_params": FeatureParams().to_dict(),
        "epochs": 1,
        "speakers": 20, "summary": {"pooled_calibration": {"clips": 880, "cv_temperature": 0.77}}}))
    code = run_train(["--ravdess-dir", str(tiny_run.data_dir), "--test-fraction", "0", "--epochs", "1",
                      "--batch-size", "16", "--artifacts", str(out), "--run-dir", str(tmp_path / "run"),
                      "--temperature-from", str(cv_json),
                      "--cache-dir", str(tiny_run.cache_dir), "--fresh", "--verbose", "0"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert "test" not in metrics and metrics["split"]["test"]["clips"] == 0
    assert metrics["split"]["train"]["clips"] + metrics["split"]["validation"]["clips"] == N_TINY_CLIPS
    calibration = metrics["calibration"]
    assert calibration["measured_on"] == "validation speakers" and calibration["temperature"] == 0.77
    assert calibration["fitted_on"].startswith("cross-validation's out-of-fold test clips (880 clips of 20 speakers")
    config = json.loads((out / "config.json").read_text())
    assert config["recipe"]["test_fraction"] == 0 and config["temperature"] == 0.77
    assert (out / "model.keras").is_file()


def record_train_model_calls(monkeypatch) -> list[tuple]:
    """The positional arguments of every ``train_model`` call, recorded as the real one runs:
    ``(training, validation, params, args, run_dir, member, seed)``."""
    from ser_core.training import fit

    calls = []
    original = fit.train_model

    def recording(*arguments):
        calls.append(arguments)
        return original(*arguments)

    monkeypatch.setattr(fit, "train_model", recording)
    return calls


def test_a_recipe_repeated_in_members_trains_with_the_next_seed_each_time(tiny_run, tmp_path, monkeypatch):
    calls = record_train_model_calls(monkeypatch)
    code = run_train(["--ravdess-dir", str(tiny_run.data_dir), "--cv", "2", "--folds", "0", "--epochs", "1",
                      "--batch-size", "16", "--members", "cosine:none", "plateau:none", "cosine:none", "--seed", "5",
                      "--artifacts", str(tmp_path / "unused"), "--run-dir", str(tmp_path / "cv"),
                      "--cache-dir", str(tiny_run.cache_dir), "--fresh", "--verbose", "0"])
    assert code == 0
    seeds = [(str(call[-2]), call[-1]) for call in calls]  # (member, seed)
    assert seeds == [("cosine:none@last", 5), ("plateau:none@best", 5), ("cosine:none@last", 6)]
    assert json.loads((tmp_path / "cv" / f"cv_{DEFAULT_ARCH}.json").read_text())["member_seeds"] == [5, 5, 6]


def test_member_seed_moves_the_members_seeds_but_not_the_folds(tiny_run, tmp_path, monkeypatch):
    calls = record_train_model_calls(monkeypatch)
    speakers = []
    for extra in ([], ["--member-seed", "6"]):
        code = run_train(["--ravdess-dir", str(tiny_run.data_dir), "--cv", "2", "--folds", "0", "--epochs", "1",
                          "--batch-size", "16", "--members", "cosine:none", "--seed", "5", *extra,
                          "--artifacts", str(tmp_path / "unused"), "--run-dir", str(tmp_path / "cv"),
                          "--cache-dir", str(tiny_run.cache_dir), "--fresh", "--verbose", "0"])
        assert code == 0
        speakers.append([{c.speaker for c in data.clips} for data in calls[-1][:2]])
    assert [call[-1] for call in calls] == [5, 6]
    assert speakers[0] == speakers[1]  # same training and validation speakers: the folds follow --seed
    assert json.loads((tmp_path / "cv" / f"oof_{DEFAULT_ARCH}.json").read_text())["member_seeds"] == [6]


def test_pool_validation_trains_only_the_members_that_need_no_validation_on_those_speakers(tiny_run, tmp_path,
                                                                                             monkeypatch):
    calls = record_train_model_calls(monkeypatch)
    run_dir = tmp_path / "cv"
    code = run_train(["--ravdess-dir", str(tiny_run.data_dir), "--cv", "2", "--folds", "0", "--epochs", "2",
                      "--batch-size", "16", "--members", "plateau:none", "cosine:none", "--pool-validation",
                      "--artifacts", str(tmp_path / "unused"), "--run-dir", str(run_dir),
                      "--cache-dir", str(tiny_run.cache_dir), "--fresh", "--verbose", "0"])
    assert code == 0
    seen = [(len(training.x), {c.speaker for c in training.clips},
             None if validation is None else {c.speaker for c in validation.clips})
            for training, validation, *_ in calls]
    (plateau_size, plateau_speakers, validation_speakers), (cosine_size, cosine_speakers, cosine_validation) = seen
    assert validation_speakers and not plateau_speakers & validation_speakers  # plateau still holds them out
    assert cosine_validation is None and cosine_speakers == plateau_speakers | validation_speakers
    assert cosine_size == plateau_size + len(validation_speakers) * len(EMOTIONS) * TINY_CLIPS_PER_EMOTION
    fold = run_dir / "fold0"
    assert (fold / "member0" / "best.keras").is_file() and not (fold / "member1" / "best.keras").exists()
    result = json.loads((run_dir / f"cv_{DEFAULT_ARCH}.json").read_text())
    assert result["pool_validation"] is True
    assert result["folds"][0]["best_epoch"][1] is None  # nothing validated: no best epoch
    assert "best_checkpoint" not in result["folds"][0]  # member1 has no best weights to score


def test_auxiliary_emotions_are_trained_on_but_never_validated_tested_or_predicted(tmp_path, monkeypatch):
    from ser_core.inference.params import TRAINING_LABELS

    data = tmp_path / "ravdess"
    audio_factory.make_ravdess(data, TINY_ACTORS, emotions=(*EMOTIONS, "calm", "surprised"),
                               clips_per_emotion=TINY_CLIPS_PER_EMOTION, seconds=1.2)
    calls = record_train_model_calls(monkeypatch)
    out = tmp_path / "artifacts"
    code = run_train(["--ravdess-dir", str(data), "--epochs", "1", "--batch-size", "16",
                      "--members", "cosine:none", "--auxiliary-emotions", "--artifacts", str(out),
                      "--run-dir", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache"), "--fresh",
                      "--verbose", "0"])
    assert code == 0
    (training, validation, *_), = calls
    training_speakers = {clip.speaker for clip in training.clips}
    assert sorted(set(training.labels)) == list(range(len(TRAINING_LABELS)))  # the six, calm and surprised
    auxiliary = [clip for clip in training.clips if clip.emotion not in EMOTIONS]
    assert len(auxiliary) == len(training_speakers) * 2 * TINY_CLIPS_PER_EMOTION
    assert sorted(set(validation.labels)) == list(range(len(EMOTIONS)))
    assert artifacts_model_outputs(out) == len(EMOTIONS)
    config = json.loads((out / "config.json").read_text())
    assert config["recipe"]["auxiliary_emotions"] == ["calm", "surprised"]
    assert config["data"]["ravdess"]["clips"] == N_TINY_CLIPS
    assert config["data"]["ravdess"]["auxiliary_clips"] == len(TINY_ACTORS) * 2 * TINY_CLIPS_PER_EMOTION
    metrics = json.loads((out / "metrics.json").read_text())
    assert sum(split["clips"] for split in metrics["split"].values()) == N_TINY_CLIPS
    assert set(metrics["test"]["per_class"]) == set(EMOTIONS)
    assert {row["emotion"] for row in _split_rows(out / "split.csv")} == set(EMOTIONS)


def artifacts_model_outputs(folder: Path) -> int:
    from ser_core.inference.artifacts import load_model

    return load_model(folder / "model.keras").output_shape[-1]


def test_out_of_fold_logits_score_exactly_as_the_run_did(tiny_run, tmp_path):
    from ser_core.evaluation.fold_scoring import pooled_calibration, score_fold

    run_dir = tmp_path / "cv"
    code = run_train(["--ravdess-dir", str(tiny_run.data_dir), "--cv", "3", "--folds", "0", "1", "--epochs", "2",
                      "--batch-size", "16", "--members", "cosine:none",
                      "--artifacts", str(tmp_path / "unused"), "--run-dir", str(run_dir),
                      "--cache-dir", str(tiny_run.cache_dir), "--fresh", "--verbose", "0"])
    assert code == 0
    report = json.loads((run_dir / f"cv_{DEFAULT_ARCH}.json").read_text())
    oof = run_dir / f"oof_{DEFAULT_ARCH}.json"
    recorded = json.loads(oof.read_text())
    assert [f["fold"] for f in recorded["folds"]] == [0, 1] and recorded["members"] == ["cosine:none@last"]
    conditions = recorded["folds"][0]["test"]["conditions"]
    assert set(conditions) == {"clean", "snr_20db", "snr_10db", "snr_5db", "reverb_rt60_0.6s"}
    assert len(conditions["clean"]["logits"]) == len(conditions["clean"]["clip_index"])

    # Each fold re-scored from the saved logits by the run's own code gives the run's figures.
    parts = []
    for saved, theirs in zip(recorded["folds"], report["folds"]):
        mine, part = score_fold(saved)
        parts.append(part)
        assert mine["confusion_matrix"] == theirs["confusion_matrix"]
        assert mine["accuracy"] == theirs["accuracy"]
        for condition, figures in theirs["robustness"].items():
            assert mine["robustness"][condition]["accuracy"] == figures["accuracy"]
        assert mine["temperature"] == pytest.approx(theirs["temperature"], rel=1e-3)  # logits kept to 4 decimals
    assert pooled_calibration(parts)["clips"] == report["summary"]["pooled_calibration"]["clips"]
    # described as train.py --cv describes a run (one recipe record for both files)
    for key in ("arch", "seed", "epochs", "feature_params", "n_folds", "speakers", "clips", "auxiliary_emotions",
                "members", "member_seeds", "pool_validation"):
        assert recorded[key] == report[key], key
    assert recorded["pool_validation"] is False and recorded["member_seeds"] == [0]


class _Interrupt(Exception):
    pass


def test_interrupted_cross_validation_keeps_its_finished_folds(tiny_run, tmp_path, monkeypatch):
    import keras

    run_dir = tmp_path / "cv"
    argv = ["--ravdess-dir", str(tiny_run.data_dir), "--cv", "2", "--epochs", "2", "--batch-size", "16",
            "--members", "cosine:none", "--artifacts", str(tmp_path / "unused"), "--run-dir", str(run_dir),
            "--cache-dir", str(tiny_run.cache_dir), "--verbose", "0"]
    original_logger = keras.callbacks.CSVLogger
    started = []

    class InterruptSecondFold(original_logger):
        def on_train_begin(self, logs=None):
            started.append(self)
            if len(started) == 2:
                raise _Interrupt
            super().on_train_begin(logs)

    monkeypatch.setattr(keras.callbacks, "CSVLogger", InterruptSecondFold)
    with pytest.raises(_Interrupt):
        run_train(argv)
    finished = run_dir / "fold0" / "finished.json"
    first_finished = finished.stat().st_mtime_ns

    monkeypatch.setattr(keras.callbacks, "CSVLogger", original_logger)
    assert run_train(argv) == 0
    assert finished.stat().st_mtime_ns == first_finished  # fold 0 loaded, not trained again
    assert (run_dir / "fold1" / "finished.json").is_file()
    assert [fold["fold"] for fold in json.loads((run_dir / f"cv_{DEFAULT_ARCH}.json").read_text())["folds"]] == [0, 1]
    assert run_train(argv) == 0  # a finished cross-validation started again is a new one: trained again
    assert finished.stat().st_mtime_ns != first_finished
    # finished.json names the recipe it finished: another recipe in the same folder never reuses it
    assert '"cosine:none@last"' in finished.read_text()


def test_a_finished_member_counts_only_for_its_own_recipe(tmp_path):
    from ser_core.training import fit
    from ser_core.training.recipes import MemberRecipe

    (tmp_path / "finished.json").write_text('{"member": "cosine:none@last", "seconds": 1.0}')
    assert fit._finished_as(tmp_path, MemberRecipe.parse("cosine:none"))
    assert not fit._finished_as(tmp_path, MemberRecipe.parse("cosine:acoustic"))
    assert not fit._finished_as(tmp_path / "elsewhere", MemberRecipe.parse("cosine:none"))
    (tmp_path / "finished.json").write_text("not json")
    assert not fit._finished_as(tmp_path, MemberRecipe.parse("cosine:none"))


def test_interrupted_ensemble_resumes_where_it_stopped(tiny_run, tmp_path, monkeypatch):
    import keras

    run_dir, out = tmp_path / "run", tmp_path / "artifacts"
    argv = ["--ravdess-dir", str(tiny_run.data_dir), "--epochs", "3", "--artifacts", str(out),
            "--members", "plateau:none", "cosine:none", "--run-dir", str(run_dir),
            "--cache-dir", str(tiny_run.cache_dir), "--verbose", "0"]
    original_logger = keras.callbacks.CSVLogger
    members_started = []

    class InterruptSecondMember(original_logger):  # last callback: the backup is already written
        def on_train_begin(self, logs=None):
            members_started.append(self)
            super().on_train_begin(logs)

        def on_epoch_end(self, epoch, logs=None):
            super().on_epoch_end(epoch, logs)
            if len(members_started) == 2 and epoch == 1:
                raise _Interrupt

    monkeypatch.setattr(keras.callbacks, "CSVLogger", InterruptSecondMember)
    with pytest.raises(_Interrupt):
        run_train(argv)
    first, second = run_dir / "member0", run_dir / "member1"
    assert (first / "finished.json").is_file() and (second / "backup").is_dir()
    assert not (out / "model.keras").exists()
    first_finished = (first / "finished.json").stat().st_mtime_ns

    monkeypatch.setattr(keras.callbacks, "CSVLogger", original_logger)
    assert run_train(argv) == 0
    assert (first / "finished.json").stat().st_mtime_ns == first_finished  # not trained again
    history = json.loads((out / "history.json").read_text())
    assert [h["member"] for h in history["members"]] == ["plateau:none@best", "cosine:none@last"]
    assert [h["epoch"] for h in history["members"]] == [[1, 2, 3], [1, 2, 3]]  # the second resumed at epoch 3
    assert not (second / "backup").exists()  # a finished run leaves no backup behind
    config = json.loads((out / "config.json").read_text())
    assert config["recipe"]["members"] == ["plateau:none@best", "cosine:none@last"] and "× 2" in config["model_name"]

    # The shipped model averages the logits of each member's kept weights: best of the first, last of the second.
    from ser_core.inference import artifacts

    x = np.random.default_rng(0).normal(size=(4, *artifacts.load_model(first / "best.keras").input_shape[1:]))
    kept = [artifacts.load_model(first / "best.keras"), artifacts.load_model(second / "last.keras")]
    expected = np.mean([m.predict(x, verbose=0) for m in kept], axis=0)
    np.testing.assert_allclose(artifacts.load_model(out / "model.keras").predict(x, verbose=0), expected, atol=1e-4)


def test_a_bad_member_spec_is_refused_with_the_choices(capsys):
    import train

    with pytest.raises(SystemExit) as exit_info:
        train.parse_args(["--members", "cosine+swa:acoustic"])
    assert exit_info.value.code == 2
    assert "[ARCH/]SCHEDULE[+ema]:PRESET[@KEEP]" in capsys.readouterr().err


@pytest.mark.parametrize("spec, keep", [("plateau:acoustic", "best"), ("cosine+ema:acoustic", "last"),
                                        ("cosine:none@best", "best"), ("plateau:acoustic_vtlp@last", "last")])
def test_member_spec_keeps_its_schedule_default_unless_told(spec, keep):
    from ser_core.evaluation.member_specs import kept_checkpoint
    from ser_core.training.recipes import MemberRecipe

    recipe = MemberRecipe.parse(spec)
    assert recipe.keep == keep == kept_checkpoint(spec)
    assert MemberRecipe.parse(str(recipe)) == recipe and str(recipe).endswith(f"@{keep}")


@pytest.mark.parametrize("spec, needs", [("plateau:acoustic@last", True), ("cosine+ema:acoustic@best", True),
                                         ("cosine+ema:acoustic_vtlp", False)])
def test_only_a_cosine_member_keeping_its_last_weights_can_do_without_validation(spec, needs):
    from ser_core.training.recipes import MemberRecipe

    assert MemberRecipe.parse(spec).needs_validation is needs


def test_a_member_may_name_its_own_network():
    from ser_core.evaluation.member_specs import ensemble_label, kept_checkpoint
    from ser_core.training.recipes import MemberRecipe, ensemble_arch

    tdnn = MemberRecipe.parse("ser_tdnn/cosine+ema:acoustic_vtlp")
    assert (tdnn.arch, tdnn.keep, tdnn.network("ser_cnn_lite")) == ("ser_tdnn", "last", "ser_tdnn")
    assert str(tdnn) == "ser_tdnn/cosine+ema:acoustic_vtlp@last" and MemberRecipe.parse(str(tdnn)) == tdnn
    assert kept_checkpoint("ser_tdnn/plateau:acoustic") == "best"
    lite = MemberRecipe.parse("cosine+ema:acoustic")
    assert lite.network("ser_cnn_lite") == "ser_cnn_lite" and tdnn.on("ser_tdnn") == replace(tdnn, arch=None)
    assert ensemble_arch([lite, lite], "ser_cnn_lite") == "ser_cnn_lite"
    assert ensemble_arch([tdnn, lite, tdnn], "ser_cnn_lite") == "ser_cnn_lite+ser_tdnn"  # --arch's first
    assert ensemble_label([str(lite), str(lite), str(tdnn)], "ser_cnn_lite+ser_tdnn") == \
        "ser_cnn_lite × 2 + ser_tdnn, averaged"
    assert ensemble_label([str(lite)] * 3, "ser_cnn_lite") == "ser_cnn_lite × 3 averaged"
    with pytest.raises(ValueError, match="bad member architecture 'resnet'"):
        MemberRecipe.parse("resnet/cosine:acoustic")


def test_an_ensemble_of_two_networks_is_reported_under_both_names(tiny_run, tmp_path, monkeypatch):
    calls = record_train_model_calls(monkeypatch)
    run_dir = tmp_path / "cv"
    code = run_train(["--ravdess-dir", str(tiny_run.data_dir), "--cv", "2", "--folds", "0", "--epochs", "1",
                      "--batch-size", "16", "--members", "cosine:none", "ser_tdnn/cosine:none",
                      "ser_cnn_lite/cosine:none", "--arch", "ser_cnn_lite",
                      "--artifacts", str(tmp_path / "unused"), "--run-dir", str(run_dir),
                      "--cache-dir", str(tiny_run.cache_dir), "--fresh", "--verbose", "0"])
    assert code == 0
    assert [call[-2].network("ser_cnn_lite") for call in calls] == ["ser_cnn_lite", "ser_tdnn", "ser_cnn_lite"]
    assert [call[-1] for call in calls] == [0, 0, 1]  # the third is the first's recipe again: the next seed
    report = json.loads((run_dir / "cv_ser_cnn_lite+ser_tdnn.json").read_text())
    assert report["arch"] == "ser_cnn_lite+ser_tdnn"
    assert report["members"] == ["cosine:none@last", "ser_tdnn/cosine:none@last", "cosine:none@last"]
    assert (run_dir / "oof_ser_cnn_lite+ser_tdnn.json").is_file()
    from ser_core.inference.artifacts import load_model

    names = [load_model(run_dir / "fold0" / f"member{i}" / "last.keras").name for i in range(3)]
    assert names == ["ser_cnn_lite", "ser_tdnn", "ser_cnn_lite"]


@pytest.mark.parametrize("spec", ["cosine:acoustic@first", "cosine:acoustic@", "plateau@best:acoustic"])
def test_a_bad_keep_is_refused(spec):
    from ser_core.training.recipes import MemberRecipe

    with pytest.raises(ValueError, match="KEEP in best, last"):
        MemberRecipe.parse(spec)


@pytest.mark.parametrize("value", ["1.0", "-0.1", "half"])
def test_a_bad_test_fraction_is_refused(value, capsys):
    import train

    with pytest.raises(SystemExit) as exit_info:
        train.parse_args(["--test-fraction", value])
    assert exit_info.value.code == 2 and "--test-fraction" in capsys.readouterr().err


def test_a_resumed_run_keeps_counting_its_patience(tmp_path):
    import keras

    from ser_core.training import callbacks

    history = tmp_path / "history.csv"
    assert callbacks.logged_progress(history, "val_accuracy") == (None, 0)
    history.write_text("epoch,val_accuracy\n0,0.30\n1,0.50\n2,0.45\n3,0.40\n")
    assert callbacks.logged_progress(history, "val_accuracy") == (0.5, 2)

    stopping = callbacks.resumable_early_stopping(patience=3, best=0.5, epochs_since_best=2)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    stopping.set_model(model)
    stopping.on_train_begin()
    stopping.on_epoch_end(4, {"val_accuracy": 0.49})  # the third epoch without a gain: stop
    assert model.stop_training

    fresh = callbacks.resumable_early_stopping(patience=3, best=None, epochs_since_best=0)
    fresh.set_model(model := keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]))
    fresh.on_train_begin()
    for epoch, value in enumerate([0.3, 0.2, 0.2]):
        fresh.on_epoch_end(epoch, {"val_accuracy": value})
    assert not getattr(model, "stop_training", False)  # a new run has its full patience


def test_a_resumed_run_keeps_counting_towards_its_next_rate_cut(tmp_path):
    """Replaying the log of an interrupted run puts the rate-halving rule where an uninterrupted run has it."""
    import keras

    from ser_core.training import callbacks

    losses = [1.0, 0.9, 0.95, 0.93, 0.92, 0.91, 0.94, 0.90, 0.89, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]

    def run(plateau, epochs, rate=1e-3):
        model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.Adam(rate))
        plateau.set_model(model)
        plateau.on_train_begin()
        rates = []
        for epoch in epochs:
            plateau.on_epoch_end(epoch, {"val_loss": losses[epoch]})
            rates.append(float(model.optimizer.learning_rate.numpy()))  # logged after the cut, as in training
        return rates

    whole = run(callbacks.resumable_lr_plateau(None, 0), range(len(losses)))
    cuts = [epoch for epoch in range(1, len(whole)) if whole[epoch] < whole[epoch - 1]]
    assert cuts == [6, 13]  # five epochs without a gain after 0.9 (0.90 is no gain), then after 0.89

    assert callbacks.logged_plateau(tmp_path / "history.csv") == (None, 0)
    for stop in (4, 7, 10):  # interrupted before, just after and between the cuts
        history = tmp_path / "history.csv"
        history.write_text("epoch,val_loss,learning_rate\n" + "".join(
            f"{epoch},{losses[epoch]},{rate}\n" for epoch, rate in enumerate(whole[:stop])))
        resumed = run(callbacks.resumable_lr_plateau(*callbacks.logged_plateau(history)), range(stop, len(losses)),
                      rate=whole[stop - 1])
        assert resumed == whole[stop:], stop
    fresh = run(keras.callbacks.ReduceLROnPlateau(factor=0.5, patience=5, min_lr=1e-5), range(10, len(losses)),
                rate=whole[9])
    assert fresh != whole[10:]  # what a resumed run did before: a new count of five epochs, no cut at 13
