"""Every page of the Streamlit app under ``streamlit.testing.v1.AppTest`` (no browser).

The Analyse page is fed wav bytes through ``st.audio_input`` and ``st.file_uploader`` and must show
exactly what :meth:`Predictor.predict_file` says about the same bytes. Pages must render, without a
traceback, with a model, with reports only, and with an empty artifacts folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from app_helpers import (
    APP_FILE, EMOTIONS, fake_cv_report, fake_reports, real_or_synthetic_wav, speech_like, wav_bytes,
)
from ser_core.app import intake, views, webrtc_setup
from ser_core.evaluation import cv_report
from ser_core.inference.artifacts import ARTIFACTS_DIR, TRAIN_COMMAND

TIMEOUT = 90  # the first run loads TensorFlow and the model
PAGES = ("pages/analyse.py", "pages/live.py", "pages/test_results.py", "pages/training_curves.py")


def open_app(monkeypatch: pytest.MonkeyPatch, artifacts: Path, page: str | None = None) -> AppTest:
    monkeypatch.setenv("SER_ARTIFACTS_DIR", str(artifacts))
    monkeypatch.delenv("SER_ICE_SERVERS", raising=False)
    app = AppTest.from_file(str(APP_FILE), default_timeout=TIMEOUT).run()
    if page and page != "pages/analyse.py":
        app.switch_page(page).run()
    return app


def assert_clean(app: AppTest) -> None:
    assert not app.exception, [e.value for e in app.exception]


def alert_texts(app: AppTest) -> str:
    return "\n".join(e.value for e in [*app.error, *app.warning, *app.success, *app.info])


@pytest.fixture(scope="module")
def predictor(model_artifacts: Path):
    from ser_core.inference.predictor import Predictor

    return Predictor.from_artifacts(directory=model_artifacts)


# ---------------------------------------------------------------- Analyse


@pytest.mark.parametrize("widget", ["audio_input", "file_uploader"])
def test_analyse_shows_what_the_predictor_says(
    monkeypatch: pytest.MonkeyPatch, model_artifacts: Path, predictor, widget: str
) -> None:
    data = real_or_synthetic_wav()
    expected = predictor.predict_file(data)
    app = open_app(monkeypatch, model_artifacts)
    assert_clean(app)
    getattr(app, widget)[0].set_value(("clip.wav", data, "audio/wav"))
    app.run()
    assert_clean(app)
    assert not app.error, [e.value for e in app.error]

    table = app.dataframe[0].value
    assert list(table["Emotion"]) == list(expected.probabilities)
    np.testing.assert_allclose(table["Probability"], list(expected.probabilities.values()), atol=1e-5)
    # the answer: the set of emotions in words, as one emotion, two, or "Can't tell" past that
    from ser_core.app import words

    answer = words.answer_text(expected.emotions)
    alerts = [a.value for a in {1: app.success, 2: app.info}.get(len(expected.emotions), app.warning)]
    assert any(answer.partition(": ")[2 if len(expected.emotions) > 2 else 0] in a for a in alerts), (answer, alerts)
    assert "Uncertain" not in page_text(app) and "threshold" not in page_text(app)
    assert any("What “9 in 10” means" in c.value for c in app.caption)
    assert len(app.get("download_button")) == 2
    assert app.get("image"), "the spectrogram is missing"


def test_analyse_long_clip_has_timeline_and_window_picker(
    monkeypatch: pytest.MonkeyPatch, model_artifacts: Path, predictor
) -> None:
    data = real_or_synthetic_wav(seconds=8.0)
    expected = predictor.predict_file(data)
    assert len(expected.windows) > 1
    app = open_app(monkeypatch, model_artifacts)
    app.file_uploader[0].set_value(("long.wav", data, "audio/wav"))
    app.run()
    assert_clean(app)
    assert "Emotion over time" in [s.value for s in app.subheader]
    bands = views.timeline_bands(expected)  # one labelled band per speech segment (or window), each a set
    assert bands and all(names for _, _, names in bands)
    assert all(a < b for a, b, _ in bands) and bands[0][0] >= 0 and bands[-1][1] <= expected.duration_s + 1e-6
    assert len(app.select_slider) == 1  # which window's spectrogram to show
    text = page_text(app)  # the spectrogram in plain words; the jargon only in brackets at the end
    assert "The sound as the Whisper speech model hears it" in text and "loudest bin" not in text
    from ser_core.app import front_end, plots

    figure = plots.spectrogram_figure(np.zeros((80, 300)), predictor.params, floor_db=front_end.WHISPER_FLOOR_DB)
    assert figure.axes[0].get_ylabel() == "Frequency (Hz)" and "Mel" not in figure.axes[0].get_ylabel()
    np.testing.assert_allclose(
        app.dataframe[0].value["Probability"], list(expected.probabilities.values()), atol=1e-5
    )
    app.select_slider[0].set_value(len(expected.windows) - 1).run()
    assert_clean(app)


def test_the_coverage_setting_changes_the_answer_without_running_the_model_again(
    monkeypatch: pytest.MonkeyPatch, model_artifacts: Path, predictor
) -> None:
    from ser_core.app import words

    data = wav_bytes(speech_like(2.0, seed=3))
    expected = predictor.predict_file(data)
    app = open_app(monkeypatch, model_artifacts)
    app.audio_input[0].set_value(("rec.wav", data, "audio/wav"))
    shown = {}
    for coverage in (0.8, 0.95):
        app.radio(key="coverage").set_value(coverage).run()
        assert_clean(app)
        wanted = predictor.with_coverage(expected, coverage).emotions
        text = words.answer_text(wanted)
        assert any(text.partition(": ")[2 if len(wanted) > 2 else 0] in a.value
                   for a in [*app.success, *app.info, *app.warning]), text
        assert any(f"What “{words.coverage_name(coverage)}” means" in c.value for c in app.caption)
        shown[coverage] = wanted
    assert set(shown[0.8]) <= set(shown[0.95])


@pytest.mark.parametrize(
    "name, data, message",
    [
        ("notes.wav", b"this is not audio" * 20, "could not be decoded"),
        ("empty.wav", b"", "empty"),
        ("long.wav", wav_bytes(speech_like(61.0)), "limit"),
        ("broken.mp3", b"ID3" + b"\x00" * 200, "could not be decoded"),
    ],
    ids=["not-audio", "empty", "too-long", "corrupt-mp3"],
)
def test_analyse_bad_input_shows_an_error(
    monkeypatch: pytest.MonkeyPatch, model_artifacts: Path, name: str, data: bytes, message: str
) -> None:
    app = open_app(monkeypatch, model_artifacts)
    app.file_uploader[0].set_value((name, data, "application/octet-stream"))
    app.run()
    assert_clean(app)
    assert app.error, "no error message for a bad file"
    assert message in app.error[0].value.lower()
    if message == "could not be decoded":  # the formats it reads, named once (the message was doubled)
        assert app.error[0].value.count("webm") == 1 and "opus" in app.error[0].value, app.error[0].value
    assert not app.dataframe  # no result shown


# ---------------------------------------------------------------- navigation, sidebar, no model


def test_sidebar_names_the_model_in_plain_words_and_offers_the_coverage(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, model_artifacts: Path
) -> None:
    reports = fake_reports()
    for name, content in reports.items():
        (tmp_path / name).write_text(json.dumps(content))
    (tmp_path / "model.keras").write_bytes(b"")  # present (the sidebar only reads the reports)
    app = open_app(monkeypatch, tmp_path, "pages/test_results.py")
    assert_clean(app)
    sidebar = app.sidebar
    assert any("names one of six emotions" in m.value for m in sidebar.markdown)
    assert any("ser_cnn test model" in c.value for c in sidebar.caption)  # the technical name, in the expander
    assert any("Test accuracy on unseen speakers: 62.0%" in c.value for c in sidebar.caption)
    assert not sidebar.metric and not app.get("slider")
    assert app.radio(key="coverage").value == 0.9 and list(app.radio(key="coverage").options) == [
        "8 in 10", "9 in 10", "19 in 20"]

    shipped = open_app(monkeypatch, model_artifacts)  # a model with calibrated sets says how often it holds
    text = "\n".join(m.value for m in shipped.sidebar.markdown)
    assert "OpenAI's Whisper speech model" in text and "English" in text
    assert "held the true emotion" in text and "named a single emotion for" in text
    assert "Accuracy on a new recording setup" not in text


@pytest.mark.parametrize("page", PAGES)
def test_every_page_without_artifacts_says_how_to_train(
    monkeypatch: pytest.MonkeyPatch, empty_artifacts: Path, page: str
) -> None:
    app = open_app(monkeypatch, empty_artifacts, page)
    assert_clean(app)
    assert any("No model available" in e.value for e in app.error)
    commands = [c.value for c in app.code]
    assert commands.count(TRAIN_COMMAND) == 1 and TRAIN_COMMAND == ".venv/bin/python train.py"
    assert any("--restore-previous" in c.value for c in app.caption)
    assert any("No trained model" in w.value for w in app.sidebar.warning)


def test_broken_model_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(fake_reports()["config.json"]))
    (tmp_path / "model.keras").write_bytes(b"not a keras archive")
    app = open_app(monkeypatch, tmp_path)
    assert_clean(app)
    assert "could not be loaded" in app.error[0].value
    assert TRAIN_COMMAND in [c.value for c in app.code]


def test_loading_the_model_freezes_the_heap_out_of_later_garbage_collections(model_artifacts: Path) -> None:
    # Streamlit collects garbage after every script run (the Live page reruns each second); with
    # TensorFlow's objects in the young generations that stalled the WebRTC threads (audio dropped).
    import gc
    import time

    from ser_core.app import support

    gc.unfreeze()
    support._load_predictor.clear()
    try:
        support._load_predictor(str(model_artifacts.resolve()), (0.0, 0.0))
        assert gc.get_freeze_count() > 100_000  # TensorFlow and the model, not a handful of objects
        started = time.perf_counter()
        gc.collect()
        assert time.perf_counter() - started < 0.05
    finally:
        support._load_predictor.clear()
        gc.unfreeze()


def test_live_page_is_guarded_under_apptest(monkeypatch: pytest.MonkeyPatch, model_artifacts: Path) -> None:
    app = open_app(monkeypatch, model_artifacts, "pages/live.py")
    assert_clean(app)
    assert "Analyse" in alert_texts(app)  # points to the recorder
    assert app.get("page_link")


def test_live_page_rejects_bad_ice_configuration(
    monkeypatch: pytest.MonkeyPatch, model_artifacts: Path
) -> None:
    monkeypatch.setenv("SER_ARTIFACTS_DIR", str(model_artifacts))
    monkeypatch.setenv("SER_ICE_SERVERS", "{not json")
    app = AppTest.from_file(str(APP_FILE), default_timeout=TIMEOUT).run()
    app.switch_page("pages/live.py").run()
    assert_clean(app)
    assert "SER_ICE_SERVERS" in app.error[0].value


# ---------------------------------------------------------------- evaluation pages


def evaluation_dirs() -> list:
    committed = pytest.param(
        ARTIFACTS_DIR, id="committed",
        marks=pytest.mark.skipif(not (ARTIFACTS_DIR / "metrics.json").is_file(),
                                 reason="no committed metrics.json yet"),
    )
    return [committed, pytest.param(None, id="generated")]


@pytest.mark.parametrize("directory", evaluation_dirs())
def test_test_results_page(monkeypatch: pytest.MonkeyPatch, fake_artifacts: Path,
                           directory: Path | None) -> None:
    directory = directory or fake_artifacts
    metrics = json.loads((directory / "metrics.json").read_text())
    app = open_app(monkeypatch, directory, "pages/test_results.py")
    assert_clean(app)
    frames = [frame.value for frame in app.dataframe]
    config = json.loads((directory / "config.json").read_text())
    if config.get("kind") == "whisper_embedding_head":  # figures on new setups: leave one corpus out
        assert [s.value for s in app.subheader][0] == "On a recording setup and language it never heard"
        assert "What it was trained on" in [s.value for s in app.subheader]
        assert not any("speaker ids" in f.columns for f in frames)  # no "test 0 0" split table
        assert any("Language" in f.columns for f in frames) or (directory / "loco_whisper.json").exists() is False
        return
    split = next(f for f in frames if "speaker ids" in f.columns)
    if "test" not in metrics:  # trained on every speaker: the unseen-speaker figures are the CV's
        assert any("trained on every speaker" in i.value for i in app.info)
        # the CNN held validation speakers out; the Whisper model trains on every clip
        assert "train" in set(split["split"])
        shipped_arch = json.loads((directory / "config.json").read_text())["arch"]
        if (directory / f"cv_{shipped_arch}.json").is_file():
            assert any("Confusion matrix** of all" in m.value for m in app.markdown)
            assert len(app.get("image")) >= 3  # pooled confusion matrices and reliability diagram
        return
    shown = {m.label: m.value for m in app.main.metric}
    assert shown["Accuracy"] == f"{metrics['test']['accuracy']:.1%}"
    assert shown["UAR (mean recall)"] == f"{metrics['test']['uar']:.1%}"
    assert shown["Macro-F1"] == f"{metrics['test']['macro_f1']:.3f}"
    assert "ECE before" in shown and "ECE after" in shown
    per_class = next(f for f in frames if "emotion" in f.columns and "f1" in f.columns)
    assert set(per_class["emotion"]) == set(metrics["test"]["per_class"])
    assert set(split["split"]) >= {"train", "test"}
    assert len(app.get("image")) >= 3  # two confusion matrices and the reliability diagram


@pytest.mark.parametrize("directory", evaluation_dirs())
def test_training_curves_page(monkeypatch: pytest.MonkeyPatch, fake_artifacts: Path,
                              directory: Path | None) -> None:
    directory = directory or fake_artifacts
    history = json.loads((directory / "history.json").read_text())
    members = history.get("members") or [history]
    app = open_app(monkeypatch, directory, "pages/training_curves.py")
    assert_clean(app)
    if not any(h.get("accuracy") or h.get("loss") for h in members):  # the Whisper model's head: no epochs
        assert any("no training curves, and that is expected" in i.value for i in app.info)
        return
    shown = [m.value for m in app.main.metric if m.label == "Best epoch (validation)"]
    assert shown == [str(h["best_epoch"]) for h in members]
    assert [m.value for m in app.main.metric if m.label == "Epochs run"] == [str(len(h["epoch"])) for h in members]
    assert len(app.get("image")) == len(members)
    if len(members) > 1:
        assert [t.label for t in app.tabs] == [f"{i + 1}: {h['member']}" for i, h in enumerate(members)]


def test_training_curves_page_shows_each_member(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    write_reports(tmp_path)
    single = fake_reports()["history.json"]
    members = [{**single, "member": "plateau:acoustic@best"},
               {**single, "member": "cosine+ema:acoustic@last", "best_epoch": 10}]
    (tmp_path / "history.json").write_text(json.dumps({"members": members}))
    (tmp_path / "model.keras").write_bytes(b"")
    app = open_app(monkeypatch, tmp_path, "pages/training_curves.py")
    assert_clean(app)
    assert [t.label for t in app.tabs] == ["1: plateau:acoustic@best", "2: cosine+ema:acoustic@last"]
    assert [m.value for m in app.main.metric if m.label == "Best epoch (validation)"] == ["9", "10"]
    last_epoch = single["epoch"][-1]
    assert [m.value for m in app.main.metric if m.label == "Weights kept"] == ["epoch 9 (best)",
                                                                              f"epoch {last_epoch} (last)"]
    assert len(app.get("image")) == 2


def test_training_curves_page_explains_a_member_without_validation(monkeypatch: pytest.MonkeyPatch,
                                                                    tmp_path: Path) -> None:
    write_reports(tmp_path)
    single = fake_reports()["history.json"]
    pooled = {**single, "member": "cosine+ema:acoustic_vtlp@last", "best_epoch": None}
    (tmp_path / "history.json").write_text(json.dumps({"members": [pooled, pooled]}))
    (tmp_path / "model.keras").write_bytes(b"")
    app = open_app(monkeypatch, tmp_path, "pages/training_curves.py")
    assert_clean(app)
    best = [m for m in app.main.metric if m.label == "Best epoch (validation)"]
    assert [m.value for m in best] == ["n/a", "n/a"] and all("--pool-validation" in m.proto.help for m in best)
    assert [m.value for m in app.main.metric if m.label == "Weights kept"] == [f"epoch {single['epoch'][-1]} (last)"] * 2


def test_training_curves_page_reads_the_older_single_keep_setting(monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    write_reports(tmp_path)
    single = fake_reports()["history.json"]
    members = [{**single, "member": "plateau:acoustic"}, {**single, "member": "cosine+ema:acoustic"}]
    (tmp_path / "history.json").write_text(json.dumps({"members": members}))
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "recipe": {"keep": "best"}}))
    (tmp_path / "model.keras").write_bytes(b"")
    app = open_app(monkeypatch, tmp_path, "pages/training_curves.py")
    assert_clean(app)
    assert [m.value for m in app.main.metric if m.label == "Weights kept"] == ["epoch 9 (best)"] * 2


def test_evaluation_pages_degrade_with_partial_reports(
    monkeypatch: pytest.MonkeyPatch, fake_artifacts: Path, tmp_path: Path
) -> None:
    """Reports with sections missing: pages say what is missing instead of failing."""
    metrics = json.loads((fake_artifacts / "metrics.json").read_text())
    del metrics["calibration"], metrics["split"]
    metrics["test"].pop("confusion_matrix")
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    (tmp_path / "history.json").write_text(json.dumps({"loss": [1.0, 0.8]}))
    (tmp_path / "config.json").write_text("{broken json")
    app = open_app(monkeypatch, tmp_path, "pages/test_results.py")
    assert_clean(app)
    infos = " ".join(i.value for i in app.info)
    assert "No confusion matrix" in infos and "No calibration" in infos and "No split" in infos
    app.switch_page("pages/training_curves.py").run()
    assert_clean(app)
    assert app.get("image")


def frame_with(app: AppTest, *columns: str):
    """The first table on the page with these columns (AppTest does not expose a table's key)."""
    return next(f.value for f in app.dataframe if set(columns) <= set(f.value.columns))


def write_reports(directory: Path) -> Path:
    for name, content in fake_reports().items():
        (directory / name).write_text(json.dumps(content))
    return directory


def test_test_results_page_shows_cross_validation(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    write_reports(tmp_path)
    (tmp_path / "cv_ser_cnn.json").write_text(json.dumps(fake_cv_report("ser_cnn")))
    (tmp_path / "cv_vgg_baseline.json").write_text(
        json.dumps(fake_cv_report("vgg_baseline", folds=1, base=0.4)))
    app = open_app(monkeypatch, tmp_path, "pages/test_results.py")
    assert_clean(app)
    assert "Cross-validation on unseen speakers" in [s.value for s in app.subheader]
    summary = frame_with(app, "Architecture", "Folds")
    assert summary.to_dict("records") == [
        {"Architecture": "ser_cnn (shipped)", "Folds": "5 folds", "Partition": "seed 0", "Accuracy": "64.0% ± 2.8%",
         "UAR": "65.0% ± 2.8%", "Macro-F1": "0.630 ± 0.028"},
        {"Architecture": "vgg_baseline", "Folds": "1 of 5 folds", "Partition": "seed 0", "Accuracy": "40.0%",
         "UAR": "41.0%", "Macro-F1": "0.390"},
    ]
    folds = frame_with(app, "Architecture", "Fold", "Test speakers")
    assert len(folds) == 6 and list(folds["Accuracy"])[:2] == pytest.approx([0.60, 0.62])
    recall = frame_with(app, "Emotion", "Recall (mean)")
    assert list(recall["Emotion"]) == list(EMOTIONS)
    np.testing.assert_allclose(recall["Recall (mean)"], [42 + 10 * k for k in range(6)])  # percent
    robustness = frame_with(app, "Condition")
    assert dict(zip(robustness["Condition"], robustness["Accuracy"])) == {
        "Clean": "64.0% ± 2.8%", "White noise, 20 dB SNR": "59.0% ± 2.8%",
        "White noise, 10 dB SNR": "54.0% ± 2.8%", "White noise, 5 dB SNR": "49.0% ± 2.8%",
        "Reverberation, RT60 0.6 s": "44.0% ± 2.8%",
    }
    assert not any("not available" in i.value for i in app.info)
    assert any("Calibration over all 880 test clips" in m.value for m in app.markdown)
    shown = {m.label: m.value for m in app.main.metric}
    assert shown["ECE noise floor"] == "0.031" and shown["ECE after"] == "0.047"  # CV metrics come last
    # The folds' confusion matrices summed (5 folds of eye*10 + 2: 132 clips each), and the per-class table from it.
    assert any("Confusion matrix** of all 660 test clips" in m.value for m in app.markdown)
    per_class = [f.value for f in app.dataframe if {"emotion", "precision"} <= set(f.value.columns)]
    assert len(per_class) == 2  # the shipped model's test speakers, then the pooled folds
    np.testing.assert_allclose(per_class[1]["recall"], 12 / 22)
    assert list(per_class[1]["support"]) == [110] * 6


def test_test_results_page_for_a_model_trained_on_every_speaker(monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:
    write_reports(tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    del metrics["test"]
    metrics["calibration"].update(measured_on="validation speakers", temperature=0.77,
                                  fitted_on="cross-validation's out-of-fold test clips (880 clips of 20 speakers)")
    metrics["split"]["test"] = {"clips": 0, "speakers": []}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    (tmp_path / "cv_ser_cnn.json").write_text(json.dumps(fake_cv_report("ser_cnn")))
    (tmp_path / "model.keras").write_bytes(b"")  # present (the sidebar only reads the reports)
    app = open_app(monkeypatch, tmp_path, "pages/test_results.py")
    assert_clean(app)
    assert any("trained on every speaker" in i.value for i in app.info)
    assert not any("No test metrics" in i.value for i in app.info)
    assert any("Confusion matrix** of all 660 test clips" in m.value for m in app.markdown)
    assert any("T = 0.77, fitted on the cross-validation's out-of-fold test clips" in c.value for c in app.caption)
    pooled = next(m.value for m in app.markdown if "Calibration over all 880 test clips" in m.value)
    assert "fitted on the other folds' test clips" in pooled and "the ECE is 0.069" in pooled
    assert frame_with(app, "split", "speaker ids") is not None
    assert any("Cross-validated accuracy on unseen speakers: 64.0%" in c.value for c in app.sidebar.caption)


def test_test_results_page_without_cross_validation(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    app = open_app(monkeypatch, write_reports(tmp_path), "pages/test_results.py")
    assert_clean(app)
    assert "Cross-validation on unseen speakers" in [s.value for s in app.subheader]
    assert any("Cross-validation results are not available" in i.value for i in app.info)
    assert cv_report.CV_COMMAND in [c.value for c in app.code]
    assert not any("Architecture" in f.value.columns for f in app.dataframe)


# ---------------------------------------------------------------- helpers behind the pages


def test_rtc_configuration_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SER_ICE_SERVERS", raising=False)
    assert webrtc_setup.rtc_configuration()[0] == {"iceServers": []}
    servers = [{"urls": ["stun:stun.example.org:3478"]},
               {"urls": "turn:turn.example.org", "username": "u", "credential": "p"}]
    monkeypatch.setenv("SER_ICE_SERVERS", json.dumps(servers))
    config, source = webrtc_setup.rtc_configuration()
    assert config == {"iceServers": servers} and "SER_ICE_SERVERS" in source
    monkeypatch.setenv("SER_ICE_SERVERS", json.dumps([{"username": "no urls"}]))
    with pytest.raises(ValueError):
        webrtc_setup.rtc_configuration()


def test_check_upload_rejects_before_decoding() -> None:
    from ser_core.inference.audio import AudioError

    assert intake.probe_duration(wav_bytes(np.zeros(8_000, np.float32))) == pytest.approx(0.5)
    assert intake.probe_duration(b"garbage") is None
    with pytest.raises(AudioError, match="limit"):
        intake.check_upload("long.wav", wav_bytes(np.zeros(16_000 * 61, np.float32)), 60)
    with pytest.raises(AudioError, match="25 MB"):
        intake.check_upload("big.wav", b"\x00" * (25_000_001), 60, 25_000_000)
    intake.check_upload("doc.pdf", b"%PDF", 60)  # the name decides nothing; decoding will
    with pytest.raises(AudioError, match="empty"):
        intake.check_upload("x.wav", b"", 60)


def test_result_downloads(predictor) -> None:
    prediction = predictor.predict_file(real_or_synthetic_wav(seconds=7.0))
    record = json.loads(views.prediction_json(prediction, "clip.wav", "model"))
    assert record["file"] == "clip.wav" and record["label"] == prediction.label
    assert "features" not in record
    lines = views.prediction_csv(prediction).strip().splitlines()
    assert lines[0].split(",") == ["segment", "start_s", "end_s", "answer", "label", *EMOTIONS]
    assert lines[1].split(",")[3] == " or ".join(prediction.emotions) and record["emotions"] == prediction.emotions
    assert len(lines) == 2 + len(prediction.windows)
    shifted = intake.with_threshold(prediction, 0.0)
    assert not shifted.uncertain and shifted.probabilities == prediction.probabilities


def dotted_lines(ax) -> list:
    return [line for line in ax.get_lines() if line.get_linestyle() == ":"]


def test_plots_build_without_pyplot(predictor) -> None:
    from ser_core.app import plots

    reports = fake_reports()
    prediction = predictor.predict_file(real_or_synthetic_wav())
    figures = [
        plots.spectrogram_figure(prediction.features[0], predictor.params),
        plots.confusion_matrix_figure(reports["metrics.json"]["test"]["confusion_matrix"], EMOTIONS, True),
        plots.reliability_figure(reports["metrics.json"]["calibration"]),
        plots.reliability_figure({}),
        plots.training_curves_figure(reports["history.json"]),
        plots.training_curves_figure({"loss": [1.0, 0.5]}),
    ]
    assert all(figure.axes for figure in figures)
    spectrogram_axes = figures[0].axes[0]
    assert spectrogram_axes.get_xlabel() == "Time (s)" and "Hz" in spectrogram_axes.get_ylabel()
    assert "dB" in figures[0].axes[1].get_ylabel()  # the colour bar
    assert plots._learning_rate_changes([1, 2, 3, 4], [1e-3, 1e-3, 5e-4, 5e-4]) == [(3.0, 5e-4)]
    stepped = figures[4].axes
    assert stepped[2].get_yscale() == "log" and len(dotted_lines(stepped[0])) == 1  # one halving at epoch 7
    epochs = list(range(1, 41))
    cosine = {"epoch": epochs, "loss": [1.0] * 40, "accuracy": [0.5] * 40,
              "learning_rate": [2e-3 * min(e / 3, 0.5 * (1 + np.cos(np.pi * (e - 3) / 37))) for e in epochs]}
    smooth = plots.training_curves_figure(cosine).axes
    assert smooth[2].get_yscale() == "linear" and not dotted_lines(smooth[0])  # a curve, not 40 markers
    chart = plots.probability_chart(prediction.probabilities, 0.55).to_dict()
    assert chart["layer"]
    assert not plots.timeline_frame([(1.5, prediction.probabilities)], EMOTIONS).empty


# ---------------------------------------------------------------- issue 15: rejected input, faults, small things


class FakeNotEnoughSpeech(Exception):
    """Stands in for ``ser_core.inference.speech.NotEnoughSpeech`` (an AudioError with these
    attributes) until that class exists in this branch."""

    def __init__(self, kind: str, speech_seconds: float, needed_seconds: float) -> None:
        super().__init__(f"{speech_seconds:.1f} s of speech heard; {needed_seconds:.1f} s needed.")
        self.kind, self.speech_seconds, self.needed_seconds = kind, speech_seconds, needed_seconds


def fake_not_enough_speech(kind: str, speech_seconds: float, needed_seconds: float = 1.0) -> Exception:
    from ser_core.inference.audio import AudioError

    error_class = type("NotEnoughSpeech", (FakeNotEnoughSpeech, AudioError), {})
    return error_class(kind, speech_seconds, needed_seconds)


def page_text(app: AppTest) -> str:
    """Every alert, caption, markdown and code block of the page, in one string."""
    parts = [*app.error, *app.warning, *app.success, *app.info, *app.caption, *app.markdown, *app.code]
    return "\n".join(str(p.value) for p in parts)


def test_uploader_takes_any_file_and_states_formats_and_limits(
    monkeypatch: pytest.MonkeyPatch, model_artifacts: Path
) -> None:
    app = open_app(monkeypatch, model_artifacts)
    assert_clean(app)
    # Streamlit's own type check only turns the file chip red; the app checks and says why itself.
    assert list(app.file_uploader[0].proto.type) == []
    stated = page_text(app) + app.file_uploader[0].label
    for fact in ("wav", "flac", "mp3", "ogg", "m4a", "webm", "60 s"):
        assert fact in stated, fact
    # One upload limit, stated once: by the uploader itself ("25MB per file", server.maxUploadSize), which
    # the app's own check follows; the page does not state a second one.
    from streamlit import config as streamlit_config

    from ser_core.app import support

    assert "MB" not in page_text(app)
    assert streamlit_config.get_option("server.maxUploadSize") == support.audio_limits().max_megabytes == 25


@pytest.mark.parametrize(
    "name, data, message",
    [
        ("big.wav", b"RIFF" + b"\x00" * (26 * 1024 * 1024), "25 mb"),
        ("notes.aiff", b"plain text, not audio" * 20, "wav, flac, mp3, ogg, opus, oga, m4a or webm"),
        ("README", b"plain text, not audio" * 20, "wav, flac, mp3, ogg, opus, oga, m4a or webm"),
        ("empty.wav", b"", "empty"),
    ],
    ids=["over-size", "wrong-extension", "no-extension", "empty"],
)
def test_rejected_upload_says_why_without_a_player(
    monkeypatch: pytest.MonkeyPatch, model_artifacts: Path, name: str, data: bytes, message: str
) -> None:
    app = open_app(monkeypatch, model_artifacts)
    app.file_uploader[0].set_value((name, data, "application/octet-stream"))
    app.run()
    assert_clean(app)
    assert app.error and message in app.error[0].value.lower(), [e.value for e in app.error]
    assert not app.get("audio"), "a player is shown for audio that cannot be played"
    assert not app.dataframe


@pytest.mark.parametrize("name", ["voice memo", "clip.aiff"], ids=["no-extension", "aiff"])
def test_audio_is_recognised_by_content_not_name(
    monkeypatch: pytest.MonkeyPatch, model_artifacts: Path, name: str
) -> None:
    import io

    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, speech_like(2.0), 16_000, format="AIFF" if name.endswith("aiff") else "WAV")
    app = open_app(monkeypatch, model_artifacts)
    app.file_uploader[0].set_value((name, buffer.getvalue(), "application/octet-stream"))
    app.run()
    assert_clean(app)
    assert not app.error, [e.value for e in app.error]
    assert app.get("audio") and app.dataframe


def test_audio_length_limit_is_a_setting(monkeypatch: pytest.MonkeyPatch, model_artifacts: Path) -> None:
    monkeypatch.setenv("SER_MAX_AUDIO_SECONDS", "5")
    app = open_app(monkeypatch, model_artifacts)
    assert "up to 5 s" in page_text(app) + app.file_uploader[0].label
    app.file_uploader[0].set_value(("eight.wav", wav_bytes(speech_like(8.0)), "audio/wav"))
    app.run()
    assert_clean(app)
    assert "the limit is 5 s" in app.error[0].value
    monkeypatch.setenv("SER_MAX_AUDIO_SECONDS", "a minute")
    app = open_app(monkeypatch, model_artifacts)
    assert_clean(app)
    assert "SER_MAX_AUDIO_SECONDS" in app.error[0].value and "a minute" in app.error[0].value


def test_limit_settings_default_to_the_inference_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    from ser_core.app import support
    from ser_core.inference.predictor import MAX_AUDIO_SECONDS

    monkeypatch.delenv("SER_MAX_AUDIO_SECONDS", raising=False)
    monkeypatch.delenv("SER_MAX_UPLOAD_MB", raising=False)
    limits = support.audio_limits()
    assert limits.max_seconds == MAX_AUDIO_SECONDS and limits.max_megabytes == 25
    monkeypatch.setenv("SER_MAX_UPLOAD_MB", "2.5")
    monkeypatch.setenv("SER_MAX_AUDIO_SECONDS", "90")
    assert support.audio_limits() == support.AudioLimits(max_seconds=90.0, max_megabytes=2.5)
    for bad in ("0", "-3", "nan", "inf", ""):
        monkeypatch.setenv("SER_MAX_UPLOAD_MB", bad)
        with pytest.raises(ValueError, match="SER_MAX_UPLOAD_MB"):
            support.audio_limits()


@pytest.mark.parametrize(
    "kind, heard, headline",
    [("no_speech", 0.0, "No speech heard"),
     ("too_little_speech", 0.3, "Too little speech (0.3 s heard; 1.0 s needed)")],
)
def test_not_enough_speech_is_a_state_not_an_error(
    monkeypatch: pytest.MonkeyPatch, model_artifacts: Path, kind: str, heard: float, headline: str
) -> None:
    from ser_core.inference.predictor import Predictor

    def refuse(self, wave, sample_rate, threshold=None):
        raise fake_not_enough_speech(kind, heard)

    app = open_app(monkeypatch, model_artifacts)  # loads the model (its warm-up calls predict_wave)
    monkeypatch.setattr(Predictor, "predict_wave", refuse)
    app.audio_input[0].set_value(("rec.wav", wav_bytes(speech_like(2.0)), "audio/wav"))
    app.run()
    assert_clean(app)
    assert not app.error, [e.value for e in app.error]
    shown = "\n".join(i.value for i in app.info)
    assert headline in shown and "try again" in shown.lower()
    assert app.get("audio"), "the recording plays: it is valid audio, just not enough speech"
    assert not app.dataframe


@pytest.mark.parametrize("name, wave", [
    ("silence.wav", np.zeros(16_000, np.float32)),
    ("tone.wav", (0.5 * np.sin(2 * np.pi * 440 * np.arange(48_000) / 16_000)).astype(np.float32)),
], ids=["silent", "tone"])
def test_audio_without_speech_is_the_no_speech_state(
    monkeypatch: pytest.MonkeyPatch, model_artifacts: Path, name: str, wave: np.ndarray
) -> None:
    """The real predictor, no stand-in: silence (once an error of its own) and a pure tone are
    both "no speech" (``NotEnoughSpeech``, kind "no_speech"), said as a state, not an error."""
    app = open_app(monkeypatch, model_artifacts)
    app.file_uploader[0].set_value((name, wav_bytes(wave), "application/octet-stream"))
    app.run()
    assert_clean(app)
    assert not app.error, [e.value for e in app.error]
    assert "No speech heard" in "\n".join(i.value for i in app.info)
    assert not app.dataframe


def test_speech_shortfall_wording_for_the_live_page() -> None:
    title, advice = views.speech_shortfall(fake_not_enough_speech("too_little_speech", 0.42, 1.0), live=True)
    assert title == "Too little speech (0.4 s heard; 1.0 s needed)" and "keep talking" in advice.lower()
    title, _ = views.speech_shortfall(fake_not_enough_speech("no_speech", 0.0), live=False)
    assert title == "No speech heard"
    from ser_core.inference.audio import AudioError

    assert views.speech_shortfall(AudioError("x.wav is empty."), live=False) is None


@pytest.mark.parametrize("damage", ["truncated", "missing"])
def test_model_problem_is_said_once_with_the_train_command_once(
    monkeypatch: pytest.MonkeyPatch, model_artifacts: Path, tmp_path: Path, damage: str
) -> None:
    from ser_core.inference.artifacts import TRAIN_COMMAND

    (tmp_path / "config.json").write_text((model_artifacts / "config.json").read_text())
    if damage == "truncated":
        whole = (model_artifacts / "model.keras").read_bytes()  # the Whisper head is 63 kB: cut it in half
        (tmp_path / "model.keras").write_bytes(whole[: min(100_000, len(whole) // 2)])
    for page in ("pages/analyse.py", "pages/live.py"):
        app = open_app(monkeypatch, tmp_path, page)
        assert_clean(app)
        headline = app.error[0].value
        if damage == "truncated":
            assert "could not be loaded" in headline and "File not found" not in headline
        else:
            assert "No model available" in headline
        assert page_text(app).count(TRAIN_COMMAND) == 1, page_text(app)
        assert page_text(app).count("--restore-previous") == 1, page_text(app)  # the caption, not the error too
        assert [c.value for c in app.code] == [TRAIN_COMMAND]


def test_timeline_bands_agree_with_the_answer_and_a_short_clip_gets_none(predictor) -> None:
    from ser_core.app import plots, words

    short = predictor.predict_file(real_or_synthetic_wav(seconds=2.5))
    assert views.timeline_bands(short) == []  # no "emotion over time" over a fraction of a second
    two = np.concatenate([speech_like(3.5, seed=1), np.zeros(16_000 * 2, np.float32), speech_like(3.5, seed=2)])
    long = predictor.predict_file(wav_bytes(two))
    bands = views.timeline_bands(long)
    assert len(long.segments) >= 2 and len(bands) == len(long.segments)
    assert [names for _, _, names in bands] == [segment.emotions for segment in long.segments]
    chart = plots.answer_bands_chart(bands, EMOTIONS, words.answer_text, short=words.band_text).to_dict()
    rows = next(iter(chart["datasets"].values()))
    assert [row["answer"] for row in rows] == [words.answer_text(names) for _, _, names in bands]
    assert [row["label"] for row in rows] == [words.band_text(names) for _, _, names in bands]


def test_answer_words() -> None:
    from ser_core.app import words

    assert words.answer_text(["angry"]) == "Angry"
    assert words.answer_text(["angry", "disgust"]) == "Angry or disgusted"
    assert words.answer_text(["angry", "disgust", "fear"]) == "Can't tell: angry, disgusted or fearful"
    assert words.coverage_name(0.9) == "9 in 10"
    assert words.band_text(["angry", "disgust", "fear"]) == "Can't tell (3)" and words.band_text(["sad"]) == "Sad"
    # cross-references point where the thing is: Adapt to my voice is its own page
    assert "on the Analyse page" not in words.LOCO_FOR_YOU and "the **Adapt to my voice** page" in words.LOCO_FOR_YOU
    # a model without calibrated sets does not promise "9 in 10"
    assert "not calibrated" in words.coverage_line(0.9, {"kind": "whisper_embedding_head"})
    assert "9 in 10" in words.coverage_line(0.9, {"emotion_sets": {"method": "lac"}})


def test_timeline_stays_between_0_and_100_percent_and_threshold_is_labelled() -> None:
    from ser_core.app import plots

    probabilities = [dict(zip(EMOTIONS, p)) for p in ([0.9, 0.02, 0.02, 0.02, 0.02, 0.02],
                                                      [0.0, 1.0, 0.0, 0.0, 0.0, 0.0],
                                                      [0.5, 0.1, 0.1, 0.1, 0.1, 0.1])]
    timeline = plots.timeline_chart(list(zip([1.5, 4.5, 7.5], probabilities)), EMOTIONS).to_dict()
    assert timeline["mark"]["interpolate"] == "linear"  # a curve through the points overshoots them
    assert timeline["encoding"]["y"]["scale"]["clamp"] is True
    bars = plots.probability_chart(probabilities[0], 0.55).to_dict()
    texts = [layer for layer in bars["layer"] if (layer.get("mark") or {}).get("type") == "text"
             and "datum" not in json.dumps(layer.get("encoding", {}).get("text", {}))]
    assert any("uncertain" in json.dumps(layer).lower() for layer in texts), "the dashed line has no label"


def test_recall_per_emotion_has_one_number_format(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    write_reports(tmp_path)
    report = fake_cv_report("ser_cnn")
    report["folds"][0]["recall"]["angry"] = 0.65  # a round mean next to 0.7813-style ones
    (tmp_path / "cv_ser_cnn.json").write_text(json.dumps(report))
    app = open_app(monkeypatch, tmp_path, "pages/test_results.py")
    assert_clean(app)
    recall = next(d for d in app.dataframe if "Recall (mean)" in d.value.columns)
    formats = {name: column.get("type_config", {}).get("format")
               for name, column in json.loads(recall.proto.columns).items() if name in ("Recall (mean)", "Std")}
    assert formats == {"Recall (mean)": "%.1f%%", "Std": "%.1f%%"}  # "65.0%" and "78.1%", never "65%"
    assert recall.value["Recall (mean)"].max() > 1  # percentage points, as the format expects


def awkward_inputs() -> list:
    """Inputs beyond the plain bad file, each with what the page must show (docs/reliability.md)."""
    import io

    import soundfile

    def encoded(wave: np.ndarray, rate: int, subtype: str = "PCM_16", fmt: str = "WAV") -> bytes:
        buffer = io.BytesIO()
        soundfile.write(buffer, wave, rate, format=fmt, subtype=subtype)
        return buffer.getvalue()

    speech = speech_like(2.0)
    nan = speech.copy()
    nan[1000:1100] = np.nan
    six = np.stack([speech_like(2.0, 96_000, seed=k) for k in range(6)], axis=1)
    png = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(200)
    good = wav_bytes(speech)
    return [
        pytest.param("cut.wav", good[: len(good) // 3], "result", id="truncated-wav"),
        pytest.param("picture.wav", png, "holds no audio stream. Use wav", id="png-renamed"),
        pytest.param("nan.wav", encoded(nan, 16_000, "FLOAT"), "non-finite", id="nan-samples"),
        pytest.param("six.wav", encoded(six, 96_000), "result", id="6-channel-96khz"),
        pytest.param("phone.wav", wav_bytes(speech_like(2.0, 8_000), 8_000), "result", id="8khz-phone"),
        pytest.param("Ünïcode clip (1) #2.wav", good, "result", id="unicode-name"),
        pytest.param("../../etc/passwd.wav", good, "result", id="path-like-name"),
        pytest.param("a" * 240 + ".wav", good, "result", id="very-long-name"),
        pytest.param("CLIP.WAV", good, "result", id="upper-case-extension"),
    ]


@pytest.mark.parametrize("name, data, expected", awkward_inputs())
def test_awkward_inputs(monkeypatch: pytest.MonkeyPatch, model_artifacts: Path, name: str, data: bytes,
                        expected: str) -> None:
    app = open_app(monkeypatch, model_artifacts)
    app.file_uploader[0].set_value((name, data, "application/octet-stream"))
    app.run()
    assert_clean(app)
    if expected == "result":
        assert not app.error, [e.value for e in app.error]
        assert app.dataframe and app.get("audio") and len(app.get("download_button")) == 2
    else:
        assert app.error and expected in app.error[0].value, [e.value for e in app.error]
        assert not app.get("audio") and not app.dataframe
