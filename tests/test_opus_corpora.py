"""ASED, CASIA and BanglaSER-Ext: loaders on generated Ogg Opus files with the release names, layout
detection, ``--data``, the default corpora, and the real clips in ../shared/data when they are there."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from audio_factory import make_ased, make_banglaser, make_casia, make_ravdess, tone, write_audio
from ser_core.data import registry
from ser_core.data.arguments import add_corpus_arguments, clips_from_arguments
from ser_core.data.ased import COMMON_SENTENCES, ased_sentence, is_common_sentence, parse_ased_name, scan_ased
from ser_core.data.banglaser import parse_banglaser_name, scan_banglaser
from ser_core.data.casia import parse_casia_path, scan_casia
from ser_core.data.corpora import DataUnavailableError, class_counts
from ser_core.data.registry import default_sources, detect_corpus, gather_corpora, labelled_clips
from ser_core.inference.audio import load_audio


@pytest.fixture(scope="module")
def opus_corpora(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("opus_corpora")
    make_ased(root / "ased")
    write_audio(root / "ased" / "04Sad" / "S4-04-02-01-29.opus", tone(200, 0.1))  # the release's capital S
    make_ased(root / "ased", speakers=("09",), gender="02", sentences=("02",))  # speaker 09 with both codes
    make_ased(root / "ased", speakers=("09",), gender="01", sentences=("05",), emotions=("sad",))
    make_casia(root / "casia")
    make_banglaser(root / "banglaser_ext")
    # the release's misplaced file: actor 40's fear take in actor 41's folder
    write_audio(root / "banglaser_ext" / "Actor - 41" / "03-01-07-01-04-01-40.opus", tone(200, 0.1))
    return {"ased": root / "ased", "casia": root / "casia", "banglaser": root / "banglaser_ext"}


# ------------------------------------------------------------------------------------------ names


def test_ased_names():
    assert parse_ased_name("05Angry/a5-03-01-02-50.opus") == ("50", "angry", "03", "male")
    assert parse_ased_name("S4-04-02-01-29.opus") == ("29", "sad", "04", "female")
    assert parse_ased_name("x9-03-01-02-50.opus") is None and parse_ased_name("a5-03-01-02.opus") is None
    assert ased_sentence("n1-02-01-01-01.wav") == "02" and is_common_sentence("n1-02-01-01-01.wav")
    assert not is_common_sentence("n1-03-01-01-01.wav") and COMMON_SENTENCES == {"01", "02"}


def test_casia_and_banglaser_names():
    assert parse_casia_path(Path("/x/casia/wangzhe/surprise/230.opus")) == ("wangzhe", "surprised")
    assert parse_casia_path(Path("/x/wangzhe/angry/take.opus")) is None  # not a text number
    assert parse_banglaser_name("Actor - 41/03-01-06-01-04-01-40.opus") == ("40", "disgust")
    assert parse_banglaser_name("03-01-07-01-04-01-40.opus") == ("40", "fear")  # 07 is fear here, disgust in RAVDESS


# ------------------------------------------------------------------------------------------ loaders


def test_ased_loader_speakers_from_the_last_field(opus_corpora):
    clips, report = scan_ased(opus_corpora["ased"])
    assert report.kept == len(clips) == 2 * 5 * 2 + 1 + 5 + 1 and not report.unparsed
    assert {c.speaker for c in clips} == {"ased_01", "ased_02", "ased_09", "ased_29"}
    assert {c.gender for c in clips if c.speaker == "ased_09"} == {None}  # both gender codes: unknown
    assert {c.gender for c in clips if c.speaker == "ased_01"} == {"female"}
    assert class_counts(clips) == {"angry": 5, "fear": 5, "happy": 5, "neutral": 5, "sad": 7}
    assert sum(is_common_sentence(c.path) for c in clips) == 2 * 5 + 5  # sentences 01 (2 speakers) and 02 (09)


def test_casia_loader_drops_surprise_or_keeps_it_auxiliary(opus_corpora):
    clips, report = scan_casia(opus_corpora["casia"])
    assert report.kept == 2 * 5 * 2 and report.other_emotions == 2 * 2 and report.duplicates == 0
    assert {c.speaker: c.gender for c in clips} == {"casia_liuchanhg": "female", "casia_wangzhe": "male"}
    assert "disgust" not in class_counts(clips) and "surprised" not in class_counts(clips)
    clips, report = scan_casia(opus_corpora["casia"], auxiliary=True)
    assert class_counts(clips)["surprised"] == 4 and report.auxiliary == 4 and report.kept == 20


def test_casia_one_speakers_folder_names_the_speaker(opus_corpora):
    clips, _ = scan_casia(opus_corpora["casia"] / "wangzhe")
    assert {c.speaker for c in clips} == {"casia_wangzhe"} and len(clips) == 10


def test_banglaser_loader_trusts_the_name_over_the_folder(opus_corpora):
    clips, report = scan_banglaser(opus_corpora["banglaser"])
    assert report.kept == len(clips) == 2 * 2 * 2 + 1
    misplaced = [c for c in clips if "Actor - 41" in c.path]
    assert [(c.speaker, c.emotion) for c in misplaced] == [("banglaser_40", "fear")]
    assert class_counts(clips) == {"disgust": 4, "fear": 5}


def test_detection_tells_banglaser_from_ravdess(opus_corpora, tmp_path):
    for name, folder in opus_corpora.items():
        assert detect_corpus(folder) == name
    make_ravdess(tmp_path / "ravdess", (1, 2), clips_per_emotion=1, seconds=0.1, suffix=".opus")
    assert detect_corpus(tmp_path / "ravdess") == "ravdess"
    clips, report = labelled_clips(opus_corpora["banglaser"])
    assert report.corpus == "banglaser" and class_counts(clips) == {"disgust": 4, "fear": 5}


def test_opus_files_decode(opus_corpora):
    clips, _ = scan_casia(opus_corpora["casia"])
    wave = load_audio(clips[0].path, 16_000)
    assert wave.dtype == np.float32 and abs(wave.size - 1600) < 0.12 * 16_000


# ------------------------------------------------------------------------------------------ options


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="train.py")
    add_corpus_arguments(parser)
    return parser


def test_data_option_names_the_new_corpora(opus_corpora):
    args = _parser().parse_args(["--data", *(f"{name}={folder}" for name, folder in opus_corpora.items())])
    clips, reports = clips_from_arguments(args)
    assert [r.corpus for r in reports] == ["ased", "casia", "banglaser"]
    assert len({c.speaker for c in clips}) == 4 + 2 + 3


def test_no_data_option_reads_every_local_copy(opus_corpora, monkeypatch):
    monkeypatch.setattr(registry, "LOCAL_DATA", opus_corpora["ased"].parent)
    sources = default_sources()
    assert {name: folder.resolve() for name, folder in sources.items()} == {
        "ased": opus_corpora["ased"].resolve(), "casia": opus_corpora["casia"].resolve(),
        "banglaser": opus_corpora["banglaser"].resolve()}
    clips, reports = clips_from_arguments(_parser().parse_args([]))
    assert {r.corpus for r in reports} == {"ased", "casia", "banglaser"}


def test_no_local_copy_falls_back_to_kaggle_with_a_message_naming_the_local_option(tmp_path, monkeypatch):
    import kagglehub

    calls = []

    def offline(handle, *args, **kwargs):
        calls.append(handle)
        raise ConnectionError("no network in the test")

    monkeypatch.setattr(kagglehub, "dataset_download", offline)
    monkeypatch.setattr(registry, "LOCAL_DATA", tmp_path)
    assert default_sources() == {"ravdess": None, "crema": None}
    with pytest.raises(DataUnavailableError, match="--data ravdess=DIR"):
        clips_from_arguments(_parser().parse_args([]))
    assert calls == [registry.CORPORA["ravdess"].kaggle]
    with pytest.raises(DataUnavailableError, match="no Kaggle copy.*--data banglaser=DIR.*shared/data/banglaser_ext"):
        gather_corpora({"banglaser": None})


# ------------------------------------------------------------------------------------------ the real clips


@pytest.mark.real_data
def test_real_opus_corpora(real_corpus):
    folders = {"ased": real_corpus("ased"), "casia": real_corpus("casia"), "banglaser": real_corpus("banglaser_ext")}
    for name, folder in folders.items():
        assert detect_corpus(folder) == name
    clips, reports = gather_corpora(folders)
    assert {r.corpus: r.kept for r in reports} == {"ased": 1862, "casia": 1000, "banglaser": 261}
    assert {r.corpus: len(r.unparsed) for r in reports} == {"ased": 0, "casia": 0, "banglaser": 0}
    speakers = {name: {c.speaker for c in clips if c.corpus == name} for name in folders}
    assert [len(speakers[name]) for name in folders] == [52, 4, 15]
    assert "ased_05" not in speakers["ased"]  # the kept-back speakers are not here
    ased = [c for c in clips if c.corpus == "ased"]
    bangla = [c for c in clips if c.corpus == "banglaser"]
    assert class_counts(bangla) == {"disgust": 135, "fear": 126}
    assert all(c.speaker == "banglaser_" + Path(c.path).stem.split("-")[-1] for c in bangla)  # the name, not the folder
    assert class_counts([c for c in clips if c.corpus == "casia"]) == dict.fromkeys(
        ("angry", "fear", "happy", "neutral", "sad"), 200)
    wave = load_audio(ased[0].path, 16_000)
    assert wave.dtype == np.float32 and wave.size > 16_000


@pytest.mark.real_data
def test_real_ased_common_sentences_are_said_in_every_emotion(real_corpus):
    clips, _ = scan_ased(real_corpus("ased"))
    # the common sentences were said by every speaker who recorded them in all five emotions
    for sentence in sorted(COMMON_SENTENCES):
        emotions = {c.emotion for c in clips if ased_sentence(c.path) == sentence}
        assert emotions == {"angry", "fear", "happy", "neutral", "sad"}
    common = sum(is_common_sentence(c.path) for c in clips)
    assert common == 1862 - 5 * 5 * 54  # sentences 03-07: 54 clips each per emotion


# ------------------------------------------------------------------------------------------ the app's intake


@pytest.mark.parametrize("suffix", [".opus", ".oga"])
def test_the_uploader_reads_a_voice_note(tmp_path, suffix):
    from types import SimpleNamespace

    from ser_core.app import intake

    path = write_audio(tmp_path / f"note{suffix}", tone(300, 2.0, 48_000), 48_000)
    assert suffix.lstrip(".") in intake.FORMATS_TEXT
    assert intake.probe_duration(path.read_bytes()) == pytest.approx(2.0, abs=0.1)
    wave = intake.decode_bytes(path.name, path.read_bytes(), 16_000, SimpleNamespace(max_seconds=60, max_bytes=10**7))
    assert wave.dtype == np.float32 and wave.size == pytest.approx(32_000, abs=0.12 * 16_000)


def test_opus_decodes_block_by_block_as_in_one_read(real_corpus):
    """libsndfile applies an Opus file's pre-skip only after a seek: blocks must match one whole read.

    Without the seek, every real CASIA/ASED clip came out 312 samples (48 kHz) early, and its
    embedding no longer matched the one training had cached.
    """
    import soundfile

    from ser_core.inference.audio import open_audio_stream

    path = sorted(real_corpus("casia").glob("*/angry/*.opus"))[0]
    whole, rate = soundfile.read(path, dtype="float32")
    blocks = np.concatenate(list(open_audio_stream(path, rate, block_seconds=0.5)))
    np.testing.assert_array_equal(blocks, whole)
    np.testing.assert_array_equal(load_audio(path, rate), whole)
