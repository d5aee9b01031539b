"""Naming training data: ``--data NAME[=DIR]``, the corpus registry, layout detection and the table."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

import audio_factory
from audio_factory import make_crema, make_nemo, make_ravdess, make_tess, make_turev, tone, write_audio
from conftest import run_train
from ser_core.data.arguments import add_corpus_arguments, clips_from_arguments, corpus_sources, parse_data_spec
from ser_core.data.corpora import DataUnavailableError, class_counts
from ser_core.data.registry import (CORPORA, DEFAULT_CORPORA, corpus_table, detect_corpus, gather_corpora,
                                    labelled_clips)
from ser_core.data.split import speaker_split

SIX = audio_factory.SIX_EMOTIONS


@pytest.fixture(scope="module")
def five_corpora(tmp_path_factory) -> dict[str, Path]:
    """A tiny folder of each corpus, with its release names."""
    root = tmp_path_factory.mktemp("corpora")
    make_ravdess(root / "ravdess", (1, 2, 3), clips_per_emotion=1, seconds=0.1)
    make_crema(root / "crema", (1001, 1002), seconds=0.1)
    make_tess(root / "tess", words=("back",))
    make_nemo(root / "nemo", clips_per_emotion=1)
    make_turev(root / "turev", words=("acik",))
    return {name: root / name for name in ("ravdess", "crema", "tess", "nemo", "turev")}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="train.py")
    add_corpus_arguments(parser)
    parser.add_argument("--auxiliary-emotions", action="store_true")
    return parser


# ------------------------------------------------------------------------------------ --data values


def test_parse_data_spec(tmp_path):
    assert parse_data_spec("tess") == ("tess", None)
    assert parse_data_spec("TurEV=" + str(tmp_path)) == ("turev", tmp_path)


@pytest.mark.parametrize("text, message", [
    ("iemocap=/tmp", "unknown corpus 'iemocap'"),
    ("../shared/data/tess", "NAME=DIR"),  # a folder without its name
    ("tess=", "give a folder after '='"),
    ("nemo=/no/such/folder", "is not a directory"),
])
def test_parse_data_spec_errors_name_the_bad_value(text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        parse_data_spec(text)


def test_data_option_on_the_command_line(five_corpora, capsys):
    args = _parser().parse_args(["--data", f"tess={five_corpora['tess']}", "nemo", "--data", "crema",
                                 "--calm-as", "neutral"])
    assert corpus_sources(args) == {"tess": five_corpora["tess"], "nemo": None, "crema": None}
    assert args.calm_as == "neutral"
    with pytest.raises(SystemExit) as caught:
        _parser().parse_args(["--data", "iemocap=/tmp"])
    assert caught.value.code == 2 and "unknown corpus 'iemocap'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _parser().parse_args(["--calm-as", "happy"])


def test_old_options_are_aliases_and_a_corpus_given_twice_is_refused(five_corpora):
    args = _parser().parse_args(["--ravdess-dir", str(five_corpora["ravdess"]), "--data", "tess"])
    assert corpus_sources(args) == {"tess": None, "ravdess": five_corpora["ravdess"]}
    args = _parser().parse_args(["--ravdess-dir", str(five_corpora["ravdess"]),
                                 "--data", f"ravdess={five_corpora['ravdess']}"])
    with pytest.raises(DataUnavailableError, match="ravdess is given twice"):
        corpus_sources(args)


# -------------------------------------------------------------------------------- reading corpora


def test_all_five_corpora_together(five_corpora):
    argv = ["--data", *(f"{name}={folder}" for name, folder in five_corpora.items())]
    clips, reports = clips_from_arguments(_parser().parse_args(argv))
    assert [report.corpus for report in reports] == list(five_corpora)
    by_corpus = {name: {clip.speaker for clip in clips if clip.corpus == name} for name in five_corpora}
    assert by_corpus == {"ravdess": {"ravdess_01", "ravdess_02", "ravdess_03"}, "crema": {"crema_1001", "crema_1002"},
                         "tess": {"tess_OAF", "tess_YAF"}, "nemo": {"nemo_SB0", "nemo_EB0"},
                         "turev": {"turev_1157", "turev_1234"}}
    assert {clip.emotion for clip in clips} == set(SIX)  # TurEV calm dropped by default
    # A speaker split never puts two corpora's speakers together under one id.
    assignment = speaker_split(clips, seed=0)
    assert set(assignment) == set().union(*by_corpus.values())
    table = corpus_table(clips).splitlines()
    assert table[0].split() == ["corpus", "speakers", *SIX, "total"]
    assert table[-1].split() == ["total", "11", *map(str, (class_counts(clips)[e] for e in SIX)), str(len(clips))]
    assert next(line for line in table if line.startswith("turev")).split() == \
        ["turev", "2", "2", "0", "0", "2", "0", "2", "6"]


def test_calm_as_and_auxiliary_reach_the_loaders(five_corpora):
    args = _parser().parse_args(["--data", f"turev={five_corpora['turev']}", "--calm-as", "neutral"])
    clips, (report,) = clips_from_arguments(args)
    assert class_counts(clips)["neutral"] == 2 and report.record()["calm_as"] == "neutral"
    args = _parser().parse_args(["--data", f"turev={five_corpora['turev']}", f"tess={five_corpora['tess']}",
                                 "--auxiliary-emotions"])
    clips, reports = clips_from_arguments(args)
    assert class_counts(clips)["calm"] == 2 and "calm" in corpus_table(clips).splitlines()[0]


def test_gather_corpora_errors(tmp_path, five_corpora):
    with pytest.raises(DataUnavailableError, match="is not a directory"):
        gather_corpora({"tess": tmp_path / "missing"})
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataUnavailableError, match="No usable nEMO audio files.*SB0_anger_0"):
        gather_corpora({"nemo": tmp_path / "empty"})
    with pytest.raises(DataUnavailableError, match="No usable TESS"):
        gather_corpora({"tess": five_corpora["nemo"]})  # the wrong corpus's folder
    with pytest.raises(DataUnavailableError, match="unknown corpus 'savee'"):
        gather_corpora({"savee": tmp_path})


# ---------------------------------------------------------------------------------- Kaggle, offline


@pytest.fixture
def offline(monkeypatch) -> list[str]:
    import kagglehub

    calls: list[str] = []

    def download(handle, *args, **kwargs):
        calls.append(handle)
        raise ConnectionError("no network in the test")

    monkeypatch.setattr(kagglehub, "dataset_download", download)
    return calls


def test_a_bare_name_downloads_and_the_failure_says_what_to_pass(offline):
    with pytest.raises(DataUnavailableError) as caught:
        clips_from_arguments(_parser().parse_args(["--data", "tess"]))
    assert offline == [CORPORA["tess"].kaggle] == ["ejlok1/toronto-emotional-speech-set-tess"]
    message = str(caught.value)
    assert "--data tess=DIR" in message and "../shared/data/tess" in message and "ConnectionError" in message


@pytest.mark.parametrize("name", ["nemo", "turev"])
def test_corpora_without_a_kaggle_copy_say_what_to_pass(offline, name):
    with pytest.raises(DataUnavailableError, match=f"no Kaggle copy.*--data {name}=DIR.*../shared/data/{name}"):
        clips_from_arguments(_parser().parse_args(["--data", name]))
    assert offline == []


def test_no_data_option_downloads_the_default_corpora(offline, monkeypatch, tmp_path):
    from ser_core.data import registry

    monkeypatch.setattr(registry, "LOCAL_DATA", tmp_path)  # no local copies
    assert DEFAULT_CORPORA == ("ravdess", "crema")
    with pytest.raises(DataUnavailableError, match="--data ravdess=DIR"):
        clips_from_arguments(_parser().parse_args([]))
    assert offline == [CORPORA["ravdess"].kaggle]


def test_train_with_a_corpus_it_cannot_download_exits_cleanly(offline, tmp_path, capsys):
    code = run_train(["--data", "nemo", "--run-dir", str(tmp_path / "run"), "--artifacts", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "--data nemo=DIR" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------ any folder


def test_detect_every_layout(five_corpora, tmp_path):
    for name, folder in five_corpora.items():
        assert detect_corpus(folder) == name
    write_audio(tmp_path / "fearful" / "take.wav", tone(200, 0.1))
    assert detect_corpus(tmp_path) == "folders"
    assert detect_corpus(tmp_path / "fearful") == "folders"  # nothing recognised at all


def test_labelled_clips_detects_or_takes_the_layout(five_corpora, tmp_path):
    clips, report = labelled_clips(five_corpora["ravdess"])
    assert report.corpus == "ravdess" and len(clips) == 3 * 6
    clips, report = labelled_clips(five_corpora["turev"], calm_as="neutral")
    assert class_counts(clips)["neutral"] == 2
    clips, report = labelled_clips(five_corpora["turev"], "folders")  # the emotion folders, read as such
    assert report.corpus == "folders" and report.ignored_folders == ["Calm"] and len(clips) == 6
    with pytest.raises(DataUnavailableError, match="unknown corpus 'savee'"):
        labelled_clips(five_corpora["tess"], "savee")
    with pytest.raises(DataUnavailableError, match="is not a directory"):
        labelled_clips(tmp_path / "missing")


# -------------------------------------------------------------------------- the real corpora, if here


@pytest.mark.real_data
def test_real_corpora_together(real_corpus):
    names = ("ravdess", "tess", "nemo", "turev")
    folders = {name: real_corpus(name) for name in names}
    for name, folder in folders.items():
        assert detect_corpus(folder) == name
    clips, reports = gather_corpora(folders)
    assert {report.corpus: report.kept for report in reports} == {"ravdess": 880, "tess": 1200, "nemo": 1909,
                                                                  "turev": 1735 - 408}
    assert len({clip.speaker for clip in clips}) == 20 + 2 + 9 + 6
