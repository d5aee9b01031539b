"""The Whisper model through the one predictor: front end, timeline, adaptation, evaluate --adapt, LOCO report.

No Whisper weights needed: a tiny fake encoder (random projections of Whisper's real log-mel, the
encoder's frame rate) stands in, and a logistic-regression head is fitted on its embeddings of
synthetic speech. The real speech detector runs.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

import audio_factory
from ser_core.inference import artifacts
from ser_core.inference.adaptation import MIN_CLIPS, Adaptation
from ser_core.inference.embedding import embed_waveform
from ser_core.inference.embedding_head import head_input, standardise
from ser_core.inference.params import EMOTIONS, EmbeddingParams
from ser_core.inference.predictor import WHISPER_KIND, NotEnoughSpeech, Predictor
from ser_core.inference.whisper_encoder import EncoderOutput, log_mel_spectrogram
from ser_core.inference.whisper_front import embed_speech

LAYERS = (1, 2)


class FakeEncoder:
    """Whisper's log-mel, then one random tanh projection per "layer" at the encoder's 50 frames/s."""

    n_mels = 80

    def __init__(self, n_layers: int = 4, width: int = 8, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.weights = rng.normal(0, 0.3, (n_layers + 1, 80, width)).astype(np.float32)

    def log_mel(self, audio: np.ndarray, sr: int = 16_000) -> np.ndarray:
        return log_mel_spectrogram(audio, sr=sr, n_mels=80)

    def forward(self, mel: np.ndarray, n_blocks: int | None = None) -> EncoderOutput:
        frames = np.asarray(mel, np.float32)[:, ::2].T  # (frames - 1) // 2 + 1 output frames
        n_blocks = len(self.weights) - 1 if n_blocks is None else n_blocks
        hidden = np.stack([np.tanh(frames @ w) for w in self.weights[: n_blocks + 1]]).astype(np.float32)
        return EncoderOutput(hidden_states=hidden, final=hidden[-1])

    def encode(self, audio: np.ndarray, sr: int = 16_000) -> EncoderOutput:
        return self.forward(self.log_mel(audio, sr=sr))


@pytest.fixture(scope="module")
def encoder() -> FakeEncoder:
    return FakeEncoder()


def _clip(emotion: str, seed: int, gain: float = 1.0) -> np.ndarray:
    wave = audio_factory.emotional_speech(emotion, seconds=1.5, seed=seed, speaker_shift=1.0 + 0.05 * (seed % 3))
    return audio_factory.with_silence(wave * gain, 0.3, 0.3)


@pytest.fixture(scope="module")
def whisper_model(encoder):
    """A tiny Whisper-type model (head + config) fitted on the fake encoder's embeddings."""
    from sklearn.linear_model import LogisticRegression

    from ser_core.training.embedding_model import logistic_as_keras

    params = EmbeddingParams()
    emotions = ("angry", "neutral", "sad")
    pooled, labels = [], []
    for index, emotion in enumerate(emotions):
        for seed in range(4):
            pooled.append(embed_waveform(_clip(emotion, seed), params, encoder=encoder).pooled)
            labels.append(EMOTIONS.index(emotion))
    features = head_input(np.stack(pooled), LAYERS, "mean")
    mean, std = features.mean(axis=0), features.std(axis=0) + 1e-6
    fitted = LogisticRegression(C=1.0, max_iter=500).fit(standardise(features, mean, std), labels)
    model = logistic_as_keras(fitted.coef_, fitted.intercept_, fitted.classes_)
    config = {
        "kind": WHISPER_KIND, "front_end": params.to_dict(), "emotions": list(EMOTIONS), "temperature": 1.0,
        "recipe": {"layers": list(LAYERS), "statistics": "mean", "head": "lr"},
        "standardisation": {"default": {"mean": mean.tolist(), "std": std.tolist()}, "per_corpus": {}},
        "model_name": "tiny Whisper-type model", "threshold": 0.0,
    }
    return model, config


@pytest.fixture(scope="module")
def predictor(whisper_model, encoder) -> Predictor:
    model, config = whisper_model
    return Predictor(model, config, encoder=encoder)


@pytest.fixture()
def whisper_artifacts(whisper_model, encoder, tmp_path, monkeypatch) -> Path:
    model, config = whisper_model
    artifacts.save_model(model, tmp_path / artifacts.MODEL_FILE)
    artifacts.write_json(tmp_path / artifacts.CONFIG_FILE, config)
    monkeypatch.setattr(artifacts, "load_whisper_encoder", lambda config: encoder)
    return tmp_path


# ------------------------------------------------------------------------------- the front end


def test_the_predictors_front_end_computes_the_training_embedding(encoder):
    params = EmbeddingParams()
    wave = np.concatenate([_clip("angry", 1), np.zeros(16_000, np.float32), _clip("sad", 2)])
    embedded = embed_speech(wave, params, LAYERS, encoder=encoder)
    # the encoder stopped after the highest layer the head reads: the training embedding's rows up to it
    assert embedded.pooled.shape[0] == max(LAYERS) + 1
    np.testing.assert_allclose(embedded.pooled, embed_waveform(wave, params, encoder=encoder).pooled[: max(LAYERS) + 1],
                               rtol=1e-6)
    assert embedded.bin_sums.shape[1:] == (len(LAYERS), 8) and embedded.bin_squares.shape == embedded.bin_sums.shape
    assert len(embedded.bin_starts) == len(embedded.bin_sums) == len(embedded.bin_counts)
    # the bins hold every frame: their total is the pooled mean of the chosen layers
    n_frames = embedded.bin_counts.sum()
    np.testing.assert_allclose(embedded.bin_sums.sum(axis=0) / n_frames, embedded.pooled[list(LAYERS), :8], rtol=1e-4,
                               atol=1e-5)
    assert len(embedded.stream_regions) == 2  # two stretches of speech around the second of silence


# ------------------------------------------------------------------------------- predictions


def test_a_whisper_model_answers_with_a_timeline_and_the_log_mel_it_heard(predictor):
    wave = np.concatenate([_clip("angry", 5), np.zeros(24_000, np.float32), _clip("angry", 6)] * 2)
    result = predictor.predict_wave(wave, 16_000)
    assert set(result.probabilities) == set(EMOTIONS)
    assert sum(result.probabilities.values()) == pytest.approx(1.0)
    assert result.windows and len(result.segments) >= 2
    assert all(0 <= w.start_s < w.end_s <= result.duration_s + 1e-6 for w in result.windows)
    assert [s.start_s for s in result.segments] == sorted(s.start_s for s in result.segments)
    assert result.features.shape == (len(result.windows), 80, predictor.params.n_frames)
    assert result.speech_seconds > 0 and not result.adapted and result.adaptation_clips == 0
    document = result.to_dict()
    assert document["adapted"] is False and document["adaptation_clips"] == 0
    assert document["emotions"] == result.emotions and result.emotions[0] == result.top_emotion
    assert all(s.emotions and s.emotions[0] == s.top_emotion for s in result.segments)
    assert all(w.emotions for w in result.windows)
    wider = predictor.with_coverage(result, 0.95)  # another setting: no model call, never a smaller set
    assert set(result.emotions) <= set(wider.emotions) and wider.coverage == 0.95 and result.coverage == 0.9
    json.dumps(document)


def test_the_whisper_model_refuses_silence_like_the_cnn(predictor):
    with pytest.raises(NotEnoughSpeech) as refused:
        predictor.predict_wave(np.zeros(32_000, np.float32), 16_000)
    assert refused.value.kind == "no_speech"


def test_a_whisper_model_loads_from_its_artifacts_folder(whisper_artifacts):
    loaded = Predictor.from_artifacts(whisper_artifacts)
    assert loaded.kind == WHISPER_KIND and loaded.supports_adaptation
    assert loaded.predict_file(audio_factory.write_audio(whisper_artifacts / "a.wav", _clip("sad", 7))).windows


# ------------------------------------------------------------------------------- adaptation


def test_adaptation_changes_the_answer_and_says_so(predictor):
    # Another "room": quieter and band-limited, so its statistics differ from the training default.
    room = lambda wave: np.convolve(wave, np.ones(6) / 6, mode="same").astype(np.float32)  # noqa: E731
    adaptation = Adaptation.empty()
    for seed in range(MIN_CLIPS):
        before = adaptation
        adaptation = adaptation.add(predictor.adaptation_sample(room(_clip(EMOTIONS[seed % 6], 20 + seed)), 16_000))
        assert before.n_clips == seed  # immutable: add returns a new one
    assert adaptation.ready and adaptation.n_clips == MIN_CLIPS and adaptation.speech_seconds > 0
    clip = room(_clip("neutral", 40))
    plain = predictor.predict_wave(clip, 16_000)
    adapted = predictor.predict_wave(clip, 16_000, adaptation=adaptation)
    assert adapted.adapted and adapted.adaptation_clips == MIN_CLIPS and not plain.adapted
    assert adapted.to_dict()["adapted"] is True
    assert max(abs(adapted.probabilities[e] - plain.probabilities[e]) for e in EMOTIONS) > 1e-4


def test_an_adapted_answer_uses_the_adapted_temperature(whisper_model, encoder):
    """Fitted on held-out speakers adapted as in the app; the strict temperature stays for the rest."""
    model, config = whisper_model
    sharp = Predictor(model, {**config, "temperature": 4.0, "temperature_adapted": 1.0}, encoder=encoder)
    soft = Predictor(model, {**config, "temperature": 4.0, "temperature_adapted": 4.0}, encoder=encoder)
    adaptation = Adaptation.empty()
    for seed in range(MIN_CLIPS):
        adaptation = adaptation.add(sharp.adaptation_sample(_clip(EMOTIONS[seed % 6], 80 + seed), 16_000))
    clip = _clip("angry", 90)
    assert sharp.predict_wave(clip, 16_000).probabilities == soft.predict_wave(clip, 16_000).probabilities
    sharp_answer = sharp.predict_wave(clip, 16_000, adaptation=adaptation)
    soft_answer = soft.predict_wave(clip, 16_000, adaptation=adaptation)
    assert sharp_answer.top_emotion == soft_answer.top_emotion
    assert sharp_answer.confidence > soft_answer.confidence + 0.05
    sample = sharp.adaptation_sample(clip, 16_000)  # evaluate --adapt's path
    assert sharp.probabilities_of(sample, adaptation) == pytest.approx(sharp_answer.probabilities, abs=1e-5)
    older = Predictor(model, {**config, "temperature": 4.0}, encoder=encoder)  # a config without it
    assert older.predict_wave(clip, 16_000, adaptation=adaptation).probabilities == soft_answer.probabilities


def test_too_few_adaptation_clips_are_not_used(predictor):
    adaptation = Adaptation.empty().add(predictor.adaptation_sample(_clip("happy", 50), 16_000))
    assert not adaptation.ready
    result = predictor.predict_wave(_clip("happy", 51), 16_000, adaptation=adaptation)
    assert not result.adapted and result.adaptation_clips == 0


def test_an_adaptation_survives_json_and_refuses_another_models_clips(predictor):
    adaptation = Adaptation.empty().add(predictor.adaptation_sample(_clip("sad", 60), 16_000))
    restored = Adaptation.from_dict(json.loads(json.dumps(adaptation.to_dict())))
    assert restored == adaptation and Adaptation.from_dict(Adaptation.empty().to_dict()) == Adaptation.empty()
    sample = predictor.adaptation_sample(_clip("sad", 61), 16_000)
    foreign = type(sample)(sample.features, sample.speech_seconds, "another model")
    with pytest.raises(ValueError, match="another model"):
        adaptation.add(foreign)


def test_an_adaptation_clip_without_speech_is_refused(predictor):
    with pytest.raises(NotEnoughSpeech):
        predictor.adaptation_sample(np.zeros(16_000, np.float32), 16_000)


def test_the_cnn_model_still_works_and_does_not_adapt(tiny_predictor):
    assert not tiny_predictor.supports_adaptation
    with pytest.raises(ValueError, match="adaptation"):
        tiny_predictor.adaptation_sample(_clip("sad", 70), 16_000)
    result = tiny_predictor.predict_wave(_clip("sad", 71), 16_000, adaptation=Adaptation.empty())
    assert not result.adapted and result.features.shape[1:] == tiny_predictor.params.input_shape[:2]


# ------------------------------------------------------------------------------- evaluate --adapt


def test_evaluate_adapt_reports_adapted_figures(whisper_artifacts, tmp_path, capsys):
    from ser_core.evaluation import evaluate_cli

    folder = tmp_path / "labelled"
    for emotion in ("angry", "neutral", "sad"):
        for seed in range(3):
            audio_factory.write_audio(folder / emotion / f"{seed}.wav", _clip(emotion, 80 + seed))
    assert evaluate_cli.main(["--data", str(folder), "--adapt", "--json", "--artifacts", str(whisper_artifacts)]) == 0
    out = capsys.readouterr().out
    report = json.loads(out.strip().splitlines()[-1])
    assert report["protocol"] == "adapted" and report["adaptation_clips"] == 9 and report["n"] == 9
    assert "adapted:" in out
    assert 0 <= report["set_coverage"] <= 1 and 1 <= report["mean_set_size"] <= 6 and 0 <= report["single_rate"] <= 1
    assert len(report["clips"]) == 9 and all(clip["emotions"] for clip in report["clips"])
    in_set = [clip["emotion"] in clip["emotions"] for clip in report["clips"]]
    assert report["set_coverage"] == pytest.approx(sum(in_set) / 9)
    assert "answer sets at 90%" in out
    assert evaluate_cli.main(["--data", str(folder), "--json", "--artifacts", str(whisper_artifacts)]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["protocol"] == "strict"


@pytest.fixture()
def ridge_artifacts(whisper_model, encoder, tmp_path, monkeypatch) -> Path:
    """The tiny model's data with the shipped kind of head: least squares on +-1 targets."""
    from sklearn.linear_model import RidgeClassifier

    from ser_core.training.embedding_model import logistic_as_keras

    _, config = whisper_model
    pooled, labels = [], []
    for emotion in ("angry", "neutral", "sad", "happy", "fear", "disgust"):
        for seed in range(3):
            pooled.append(embed_waveform(_clip(emotion, seed), EmbeddingParams(), encoder=encoder).pooled)
            labels.append(EMOTIONS.index(emotion))
    features = head_input(np.stack(pooled), LAYERS, "mean")
    mean, std = features.mean(axis=0), features.std(axis=0) + 1e-6
    fitted = RidgeClassifier(alpha=1.0).fit(standardise(features, mean, std), labels)
    config = {**config, "recipe": {**config["recipe"], "head": "ridge"},
              "standardisation": {"default": {"mean": mean.tolist(), "std": std.tolist()}, "per_corpus": {}}}
    folder = tmp_path / "ridge_model"
    artifacts.save_model(logistic_as_keras(fitted.coef_, fitted.intercept_, fitted.classes_), folder / artifacts.MODEL_FILE)
    artifacts.write_json(folder / artifacts.CONFIG_FILE, config)
    monkeypatch.setattr(artifacts, "load_whisper_encoder", lambda config: encoder)
    return folder


def test_evaluate_self_trains_on_a_big_enough_folder_per_speaker(ridge_artifacts, whisper_artifacts, tmp_path, capsys):
    from ser_core.evaluation import evaluate_cli
    from ser_core.inference.self_training import MIN_SELF_TRAINING_CLIPS

    folder = tmp_path / "labelled"
    for emotion in ("angry", "neutral", "sad"):
        for seed in range(MIN_SELF_TRAINING_CLIPS // 3):
            audio_factory.write_audio(folder / emotion / f"{seed}.wav", _clip(emotion, 90 + seed))
    command = ["--data", str(folder), "--json", "--artifacts", str(ridge_artifacts)]
    assert evaluate_cli.main([*command, "--adapt", "speaker", "--self-train"]) == 0
    out = capsys.readouterr().out
    trained = json.loads(out.strip().splitlines()[-1])
    assert trained["self_trained"] is True and trained["adaptation"] == "speaker"
    assert trained["n"] == MIN_SELF_TRAINING_CLIPS and "then self-trained on them" in out
    assert evaluate_cli.main([*command, "--adapt", "speaker"]) == 0
    plain = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert plain["self_trained"] is False
    assert plain["confusion_matrix"] != trained["confusion_matrix"]  # the re-fitted head answers differently
    # a logistic-regression head has no least-squares targets to re-fit: refused by name
    assert evaluate_cli.main(["--data", str(folder), "--adapt", "--self-train",
                              "--artifacts", str(whisper_artifacts)]) == 2
    assert "ridge" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        evaluate_cli.main([*command, "--self-train"])
    assert "use it with --adapt" in capsys.readouterr().err


def test_predict_adapts_to_a_batch_of_files_and_self_trains_on_it(ridge_artifacts, tmp_path, capsys):
    from ser_core.inference import predict_cli
    from ser_core.inference.self_training import MIN_SELF_TRAINING_CLIPS

    files = []
    for emotion in ("angry", "neutral", "sad"):
        for seed in range(MIN_SELF_TRAINING_CLIPS // 3):
            files.append(tmp_path / f"{emotion}_{seed}.wav")
            audio_factory.write_audio(files[-1], _clip(emotion, 140 + seed))
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"not audio")
    command = [*map(str, files), str(broken), "--json", "--artifacts", str(ridge_artifacts)]

    assert predict_cli.main([*command, "--adapt", "--self-train"]) == 1  # the broken file; the others answered
    captured = capsys.readouterr()
    trained = [json.loads(line) for line in captured.out.strip().splitlines()]
    assert [row["file"] for row in trained] == [str(path) for path in files]
    assert all(row["adapted"] and row["self_trained"] and row["adaptation_clips"] == len(files) for row in trained)
    assert "broken.wav" in captured.err and "then self-trained on them" in captured.err
    assert predict_cli.main([*command, "--adapt"]) == 1
    adapted = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert not any(row["self_trained"] for row in adapted)
    assert any(a["probabilities"] != pytest.approx(b["probabilities"], abs=1e-4) for a, b in zip(adapted, trained))

    assert predict_cli.main([*map(str, files[:3]), "--adapt", "--json", "--artifacts", str(ridge_artifacts)]) == 0
    captured = capsys.readouterr()
    assert "too few to adapt" in captured.err
    assert not any(json.loads(line)["adapted"] for line in captured.out.strip().splitlines())
    with pytest.raises(SystemExit):
        predict_cli.main([str(files[0]), "--self-train"])
    assert "use it with --adapt" in capsys.readouterr().err


def test_a_small_batch_is_answered_clip_by_clip(predictor):
    clips = [_clip(emotion, 120 + seed) for emotion in ("angry", "sad") for seed in range(3)]
    samples = [predictor.adaptation_sample(clip, 16_000) for clip in clips]
    adaptation = Adaptation.empty()
    for sample in samples:
        adaptation = adaptation.add(sample)
    batch = predictor.batch_probabilities(samples, adaptation, self_train=True)  # too few, and an LR head
    for sample, answer in zip(samples, batch):
        expected = predictor.probabilities_of(sample, adaptation)
        assert answer == pytest.approx(expected, abs=1e-6)
    assert not predictor.supports_self_training


# ------------------------------------------------------------------------------- train.py --cv corpus


def test_the_leave_one_corpus_out_report_has_the_agreed_schema():
    from ser_core.data.embedding_cache import EmbeddingSet
    from ser_core.training.embedding_model import EmbeddingRecipe
    from ser_core.training.whisper_run import loco_report

    rng = np.random.default_rng(0)
    rows = []
    for corpus, emotions in (("a", EMOTIONS), ("b", EMOTIONS[:4]), ("c", ("angry", "happy", "neutral", "sad"))):
        for emotion in emotions:
            for speaker in range(2):
                for _ in range(3):
                    rows.append((corpus, f"{corpus}{speaker}", EMOTIONS.index(emotion)))
    labels = np.array([label for _, _, label in rows])
    embeddings = rng.normal(0, 1, (len(rows), 7, 16)).astype(np.float32)
    embeddings[:, 1:5, 0] += labels[:, None]  # something to learn
    as_str = lambda values: np.array(values, dtype=str)  # noqa: E731
    data = EmbeddingSet(embeddings, labels, as_str([r[0] for r in rows]), as_str([r[1] for r in rows]),
                        as_str([""] * len(rows)), as_str([EMOTIONS[i] for i in labels]), as_str(range(len(rows))))
    report = loco_report(data, EmbeddingRecipe(layers=(1, 2, 3, 4), statistics="mean"), "tiny")
    json.dumps(report)
    assert report["kind"] == "leave_one_corpus_out" and report["model_name"] == "tiny"
    assert set(report["recipe"]) >= {"layers", "statistics", "C"} and report["created"]
    assert set(report["corpora"]) == {"a", "b", "c"}
    for name, figures in report["corpora"].items():
        assert figures["clips"] == int((data.corpus == name).sum()) and figures["speakers"] == 2
        for protocol in ("strict", "adapted"):
            assert set(figures[protocol]) == {"accuracy", "uar", "recall"}
            assert 0 <= figures[protocol]["uar"] <= 1 and set(figures[protocol]["recall"]) == set(EMOTIONS)
    assert report["corpora"]["c"]["strict"]["recall"]["disgust"] is None
    assert set(report["mean"]) == {"strict_uar", "adapted_uar", "strict_accuracy", "adapted_accuracy"}


def test_train_py_cross_validates_each_front_end_its_own_way(capsys, tmp_path):
    import train

    args = train.parse_args(["--cv", "corpus"])
    assert args.front_end == "whisper" and args.calm_as == "neutral"
    assert train.parse_args(["--front-end", "log_mel"]).calm_as == "drop"
    # the CNN can be held out by corpus too (to compare it with the Whisper model), and by speaker folds
    assert train.parse_args(["--front-end", "log_mel", "--cv", "corpus"]).cv == "corpus"
    assert train.parse_args(["--front-end", "log_mel", "--cv", "5"]).cv == 5
    with pytest.raises(SystemExit):  # the Whisper model has no speaker-fold cross-validation
        train.parse_args(["--cv", "5"])
    assert "--cv 5 goes with --front-end log_mel" in capsys.readouterr().err


def test_a_head_on_frame_means_and_stds_gets_the_same_pooling_per_window(encoder):
    from ser_core.training.embedding_model import logistic_as_keras

    params = EmbeddingParams()
    wave = _clip("happy", 90)
    pooled = embed_waveform(wave, params, encoder=encoder).pooled
    features = head_input(pooled, LAYERS, "mean_std")
    rng = np.random.default_rng(0)
    model = logistic_as_keras(rng.normal(0, 0.1, (6, features.size)), np.zeros(6), range(6))
    config = {"kind": WHISPER_KIND, "front_end": params.to_dict(), "emotions": list(EMOTIONS), "temperature": 1.0,
              "recipe": {"layers": list(LAYERS), "statistics": "mean_std", "head": "lr"},
              "standardisation": {"default": {"mean": [0.0] * features.size, "std": [1.0] * features.size}}}
    result = Predictor(model, config, encoder=encoder).predict_wave(wave, 16_000)
    # one speech region shorter than a window: the window, the segment and the clip pool the same frames
    assert len(result.windows) == 1 and len(result.segments) == 1
    for emotion in EMOTIONS:
        assert result.windows[0].probabilities[emotion] == pytest.approx(result.probabilities[emotion], abs=1e-4)


def test_train_py_whisper_path_end_to_end_with_a_fake_encoder(encoder, tmp_path, monkeypatch):
    """--cv corpus writes loco_whisper.json with the agreed schema; training publishes a model the predictor serves."""
    from conftest import run_train

    from ser_core.inference import embedding

    monkeypatch.setattr(embedding, "load_encoder", lambda *args, **kwargs: encoder)
    monkeypatch.setattr(artifacts, "load_whisper_encoder", lambda config: encoder)
    # training reaches load_encoder through whisper_front's per-process caches, which an earlier test
    # may have filled with the real encoder (it then trained on real embeddings, served fake ones)
    from ser_core.inference import whisper_front

    for cached in (whisper_front.front_end_encoder, whisper_front.serving_encoder):
        monkeypatch.setattr(whisper_front, cached.__name__, lru_cache(maxsize=4)(cached.__wrapped__))
    data = tmp_path / "data"
    audio_factory.make_tess(data / "tess", seconds=0.5)
    audio_factory.make_nemo(data / "nemo", seconds=0.5)
    audio_factory.make_turev(data / "turev", seconds=0.5)
    audio_factory.make_banglaser(data / "banglaser", seconds=0.5)  # read, then left out by the recipe
    served = tmp_path / "artifacts"
    common = ["--front-end", "whisper", "--data",
              *(f"{name}={data / name}" for name in ("tess", "nemo", "turev", "banglaser")),
              "--workers", "1", "--cache-dir", str(tmp_path / "cache"), "--artifacts", str(served),
              "--run-dir", str(tmp_path / "run")]
    assert run_train([*common, "--cv", "corpus"]) == 0
    report = json.loads((tmp_path / "run" / "loco_whisper.json").read_text())
    assert report["kind"] == "leave_one_corpus_out" and set(report["corpora"]) == {"tess", "nemo", "turev"}
    assert report["corpora"]["turev"]["clips"] == 16 and report["corpora"]["turev"]["strict"]["recall"]["fear"] is None
    # the ridge alone on the same folds, what the shipped ridge + logistic head is measured against
    baseline = report["baseline"]
    assert baseline["recipe"]["head"] == "ridge" and report["recipe"]["head"] == "ridge+lr"
    assert set(baseline["corpora"]) == set(report["corpora"]) and "ridge regression" in baseline["model_name"]
    assert not (served / "model.keras").exists()  # a cross-validation serves no model
    assert not (served / "loco_whisper.json").exists()  # nor a report of a model that is not served

    assert run_train(common) == 0
    current = artifacts.served_model_dir(served)
    config = json.loads((current / "config.json").read_text())
    assert set(config["training"]) == {"tess", "nemo", "turev"} and "banglaser" not in config["data"]
    served_report = json.loads((current / "loco_whisper.json").read_text())  # the model's own, written with it
    assert served_report["model_name"] == config["model_name"] and "speaker_cv" in served_report
    assert config["kind"] == WHISPER_KIND and config["recipe"]["layers"] == [1, 2, 3, 4]
    assert config["recipe"]["calm_as"] == "neutral" and config["model_name"].startswith("Whisper base")
    assert json.loads((current / "metrics.json").read_text())["split"]["test"]["clips"] == 0
    sets = config["emotion_sets"]  # calibrated on the held-out scores, each corpus measured held out
    assert set(sets["thresholds"]) == set(sets["adapted_thresholds"]) == {"0.8", "0.9", "0.95"}
    assert set(sets["held_out"]["strict"][sets["method"]]) == {"tess", "nemo", "turev"}
    served_predictor = Predictor.from_artifacts(served)
    assert served_predictor.emotion_sets.calibrated and served_predictor.emotion_sets.method == sets["method"]
    result = served_predictor.predict_wave(_clip("sad", 95), 16_000)
    assert sum(result.probabilities.values()) == pytest.approx(1.0)
    assert result.emotions and result.emotions[0] == result.top_emotion


def test_live_answers_carry_the_same_sets_whether_learning_or_not(predictor):
    """The Live page's answer, learning the voice or not, is made with the clip's sets and calibration."""
    from ser_core.app import adapt

    wave = _clip("sad", 97)
    plain = adapt.classify_live(predictor, wave, 16_000, 0.5, collect=False, stream_seconds=3.0,
                                window_seconds=3.0, session={}, coverage=0.95)
    learning = adapt.classify_live(predictor, wave, 16_000, 0.5, collect=True, stream_seconds=3.0,
                                   window_seconds=3.0, session={}, coverage=0.95)
    assert learning.collected and plain.coverage == learning.coverage == 0.95
    assert learning.emotions == predictor.emotion_set(learning.probabilities, coverage=0.95)
    assert plain.emotions == predictor.emotion_set(plain.probabilities, coverage=0.95)
    assert learning.emotions[0] == learning.top_emotion
