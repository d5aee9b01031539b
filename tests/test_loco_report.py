"""The leave-one-corpus-out report: parsing with validation, the plain-words headline and tables,
and the Test results page that shows them first (AppTest)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app_helpers import APP_FILE, EMOTIONS, fake_loco_report, fake_reports
from ser_core.evaluation import loco_report
from ser_core.evaluation.loco_report import LocoReportError

TIMEOUT = 60


def test_parse_reads_every_corpus_and_the_means() -> None:
    report = loco_report.parse_loco_report(fake_loco_report())
    assert [c.name for c in report.corpora] == ["ravdess", "tess", "nemo", "turev"]
    nemo = report.corpora[2]
    assert (nemo.label, nemo.language, nemo.clips, nemo.speakers) == ("nEMO", "Polish", 4481, 9)
    assert nemo.strict.recall["disgust"] is None and nemo.adapted.accuracy == pytest.approx(0.48)
    assert report.mean_of("strict_accuracy") == 0.5 and report.has_adapted
    assert report.trained_only == ["banglaser"]
    ased = report.cv("ased")
    assert (ased.label, ased.language, ased.folds, ased.speakers) == ("ASED", "Amharic", 5, 52)
    assert ased.all.clips == 1862 and ased.common_sentences.sentences == ("01", "02")
    assert report.cv("ravdess").common_sentences is None and report.cv("casia") is None


def test_a_baseline_in_the_report_sits_beside_it_in_the_experts_table() -> None:
    data = fake_loco_report()
    data["baseline"] = copy.deepcopy(fake_loco_report())
    data["baseline"]["model_name"] = "the ridge alone"
    data["baseline"]["corpora"]["nemo"]["strict"]["uar"] = 0.25
    report = loco_report.parse_loco_report(data)
    assert report.baseline.model_name == "the ridge alone" and report.baseline.baseline is None
    table = loco_report.details_table(report).set_index("Test")
    assert table.loc["nEMO held out", "Baseline strict UAR"] == 25.0
    assert table.loc["nEMO held out", "Strict UAR"] == pytest.approx(100 * data["corpora"]["nemo"]["strict"]["uar"])
    assert "Baseline adapted UAR" in table.columns
    assert "Baseline strict UAR" not in loco_report.details_table(loco_report.parse_loco_report(fake_loco_report()))
    data["baseline"]["corpora"]["tess"]["strict"]["uar"] = 3.0
    with pytest.raises(LocoReportError, match=r"baseline: corpora\.tess\.strict\.uar"):
        loco_report.parse_loco_report(data)


def test_an_older_report_without_speaker_cv_still_reads() -> None:
    data = fake_loco_report()
    del data["speaker_cv"], data["trained_only"]
    report = loco_report.parse_loco_report(data)
    assert report.speaker_cv == [] and report.trained_only == []


@pytest.mark.parametrize("change, named", [
    (lambda r: r.update(kind="cv"), "kind"),
    (lambda r: r.update(corpora={}), "corpora is empty"),
    (lambda r: r["corpora"]["nemo"]["strict"].update(uar=62.0), "corpora.nemo.strict.uar"),
    (lambda r: r["corpora"]["tess"]["strict"].pop("accuracy"), "corpora.tess.strict.accuracy"),
    (lambda r: r["corpora"]["turev"].update(clips=-1), "corpora.turev.clips"),
    (lambda r: r["corpora"]["ravdess"]["adapted"]["recall"].update(sad="high"),
     "corpora.ravdess.adapted.recall.sad"),
    (lambda r: r["mean"].update(strict_uar=float("nan")), "mean.strict_uar"),
    (lambda r: r["speaker_cv"]["ased"]["common_sentences"]["strict"].update(uar=2), "speaker_cv.ased.common_sentences"),
    (lambda r: r["speaker_cv"]["ravdess"].pop("all"), "speaker_cv.ravdess.all"),
])
def test_parse_names_the_bad_field(change, named: str) -> None:
    data = copy.deepcopy(fake_loco_report())
    change(data)
    with pytest.raises(LocoReportError, match=named.replace(".", r"\.")):
        loco_report.parse_loco_report(data)


def test_missing_file_is_none_and_damaged_file_is_an_error(tmp_path: Path) -> None:
    assert loco_report.load_loco_report(tmp_path) is None
    (tmp_path / loco_report.LOCO_FILE).write_text("{not json")
    with pytest.raises(LocoReportError, match="cannot be read"):
        loco_report.load_loco_report(tmp_path)


def test_headline_in_times_out_of_ten_and_means_from_corpora_when_absent() -> None:
    report = loco_report.parse_loco_report(fake_loco_report())
    assert loco_report.headline(report).startswith(
        "Tested on recordings unlike any it learned from (new speakers, microphones and rooms, and for most "
        "corpora a new language), it names the right emotion for about **5 in 10** clips of each emotion (48 %; guessing would "
        "get about 2 in 10); after adapting to the setup with some of its speech (no labels needed), about "
        "**6 in 10** (58 %)")
    assert [loco_report.in_ten(f) for f in (0.4839, 0.5467, 0.03, 0.0, 1.0, None)] == ["5", "5½", "½", "0", "10", "?"]
    data = fake_loco_report()
    del data["mean"]
    for entry in data["corpora"].values():
        del entry["adapted"]
    strict_only = loco_report.parse_loco_report(data)
    assert strict_only.mean_of("strict_accuracy") == pytest.approx((0.52 + 0.61 + 0.38 + 0.49) / 4)
    assert strict_only.mean_of("strict_uar") == pytest.approx((0.50 + 0.59 + 0.36 + 0.47) / 4)
    assert "adapting" not in loco_report.headline(strict_only)


def test_tables_show_percent_and_a_dash_for_emotions_a_corpus_lacks() -> None:
    report = loco_report.parse_loco_report(fake_loco_report())
    table = loco_report.corpus_table(report)
    assert list(table["Language"]) == ["English (North American)", "English (Canadian)", "Polish", "Turkish"]
    assert table.loc[2, loco_report.AS_IS] == 36.0 and table.loc[2, loco_report.ADAPTED] == 46.0
    assert not any("UAR" in column or "Strict" in column for column in table.columns)  # plain words first
    details = loco_report.details_table(report).set_index("Test")
    assert details.loc["nEMO held out", "Strict accuracy"] == 38.0
    assert details.loc["ASED 5-fold speaker CV, common sentences", "Strict UAR"] == 59.0
    ased = loco_report.speaker_cv_table(report.cv("ased"))
    assert list(ased["Which clips"]) == ["All sentences", "Sentences said in every emotion"]
    assert list(ased["Clips"]) == [1862, 502]


def test_new_people_text_names_the_text_shortcut() -> None:
    report = loco_report.parse_loco_report(fake_loco_report())
    text = loco_report.new_people_text(report.cv("ased"))
    assert "ASED's 52 Amharic speakers were split into 5 groups" in text and "**8 in 10**" in text
    assert "two sentences everyone said in every emotion (502 clips)" in text and "**6 in 10** (59 %)" in text
    assert "wrong reason" in text
    assert "wrong reason" not in loco_report.new_people_text(report.cv("ravdess"))
    recall = loco_report.recall_table(report, "strict")
    assert list(recall["Emotion"]) == list(EMOTIONS)
    by_emotion = recall.set_index("Emotion")
    assert by_emotion.loc["disgust", "nEMO"] == loco_report.MISSING
    assert by_emotion.loc["fear", "TurEV-DB"] == loco_report.MISSING
    assert by_emotion.loc["angry", "RAVDESS"] == "42 %"


def open_test_results(monkeypatch: pytest.MonkeyPatch, directory: Path) -> AppTest:
    for name, content in fake_reports().items():
        (directory / name).write_text(json.dumps(content))
    monkeypatch.setenv("SER_ARTIFACTS_DIR", str(directory))
    app = AppTest.from_file(str(APP_FILE), default_timeout=TIMEOUT).run()
    app.switch_page("pages/test_results.py").run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def test_page_shows_the_new_setup_figures_first(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / loco_report.LOCO_FILE).write_text(json.dumps(fake_loco_report()))
    app = open_test_results(monkeypatch, tmp_path)
    subheaders = [s.value for s in app.subheader]
    assert subheaders[:2] == ["On a recording setup and language it never heard", "New people, each in their own room"]
    assert subheaders.index("On speakers it never heard") > 1
    assert any("the right emotion for about **5 in 10**" in m.value for m in app.markdown)
    assert any("How to read these figures" in m.value for m in app.markdown)
    assert any("wrong reason" in m.value for m in app.markdown)
    corpora = next(f.value for f in app.dataframe if "Language" in f.value.columns)
    assert list(corpora["Corpus"]) == ["RAVDESS", "TESS", "nEMO", "TurEV-DB"]
    recall = next(f.value for f in app.dataframe if {"Emotion", "nEMO"} <= set(f.value.columns))
    assert recall.set_index("Emotion").loc["disgust", "nEMO"] == "—"
    labels = [e.label for e in app.expander]
    assert "What these words mean" in labels and any("RAVDESS" in label for label in labels)


def test_page_without_the_report_says_so_and_gives_the_command(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    app = open_test_results(monkeypatch, tmp_path)
    assert any("not there yet" in i.value for i in app.info)
    assert loco_report.LOCO_COMMAND in [c.value for c in app.code]
    assert "--cv corpus" in loco_report.LOCO_COMMAND


def test_page_with_a_damaged_report_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    data = fake_loco_report()
    data["corpora"]["nemo"]["strict"]["uar"] = 48  # percent, not a fraction
    (tmp_path / loco_report.LOCO_FILE).write_text(json.dumps(data))
    app = open_test_results(monkeypatch, tmp_path)
    assert any("damaged" in e.value and "corpora.nemo.strict.uar" in e.value for e in app.error)
    assert not any("Language" in f.value.columns for f in app.dataframe)


def test_page_for_the_whisper_model_puts_the_cnn_cross_validation_aside(monkeypatch: pytest.MonkeyPatch,
                                                                        tmp_path: Path) -> None:
    from app_helpers import fake_cv_report

    config = dict(fake_reports()["config.json"], kind="whisper_embedding_head", arch="whisper_lr",
                  training={"turev": {"angry": 3, "happy": 2, "neutral": 4, "sad": 1}, "ased": {"fear": 5}},
                  recipe={"calm_as": "neutral", "skip_corpora": ["banglaser"]})
    (tmp_path / loco_report.LOCO_FILE).write_text(json.dumps(fake_loco_report()))
    (tmp_path / "cv_ser_cnn.json").write_text(json.dumps(fake_cv_report("ser_cnn")))
    (tmp_path / "model.keras").write_bytes(b"")  # present (the page only reads the reports)
    app = open_test_results(monkeypatch, tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(config))
    metrics = fake_reports()["metrics.json"]
    del metrics["test"]
    metrics["calibration"] = {"temperature": 5.47, "fitted_on": "leave-one-corpus-out logits"}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert [s.value for s in app.subheader][:3] == ["On a recording setup and language it never heard",
                                                    "New people, each in their own room", "What it was trained on"]
    assert any("Every clip of every corpus below" in m.value for m in app.markdown)
    assert not any("T = " in c.value for c in app.caption)  # the temperature is a detail, behind an expander
    assert any("T = 5.47" in m.value for m in app.markdown)
    trained = next(f.value for f in app.dataframe if "Disgust" in f.value.columns).set_index("Corpus")
    assert trained.loc["TurEV-DB", "Neutral"] == 4 and trained.loc["ASED", "Clips"] == 5
    assert any("calm* clips are counted as neutral" in c.value and "BanglaSER-Ext was left out" in c.value
               for c in app.caption)
    assert any("Earlier models" in e.label for e in app.expander)
    assert not any("On speakers it never heard" == s.value for s in app.subheader)
    # the sidebar names the model in plain words; the old "Accuracy on a new recording setup" figure is gone
    assert any("2 collections (Amharic, Turkish)" in m.value for m in app.sidebar.markdown)
    assert not any(m.label == "Accuracy on a new recording setup" for m in app.sidebar.metric)
