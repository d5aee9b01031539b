"""Corpus scanning: RAVDESS and CREMA-D file names, exclusions, duplicates, genders, and Kaggle offline."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import audio_factory
from audio_factory import crema_name, ravdess_name, write_audio
from conftest import REPO_ROOT, run_train
from ser_core.data import corpora, registry
from ser_core.data.corpora import (
    DataUnavailableError,
    class_counts,
    gather,
    parse_crema_name,
    parse_ravdess_name,
    scan_crema,
    scan_ravdess,
)

SHORT = audio_factory.tone(220, 0.1)


def _touch_audio(path: Path) -> Path:
    return write_audio(path, SHORT)


# ------------------------------------------------------------------------------------- name parsing


@pytest.mark.parametrize(
    "code, emotion",
    [("01", "neutral"), ("03", "happy"), ("04", "sad"), ("05", "angry"), ("06", "fear"), ("07", "disgust")],
)
def test_ravdess_six_emotion_codes(code, emotion):
    assert parse_ravdess_name(f"03-01-{code}-02-01-02-12.wav") == (emotion, 12)


@pytest.mark.parametrize("code", ["02", "08"])  # calm, surprised: parsed, but outside the six
def test_ravdess_calm_and_surprised_are_other_emotions(code):
    assert parse_ravdess_name(f"03-01-{code}-01-01-01-07.wav") == (None, 7)


def test_ravdess_song_and_video_are_other_emotions():
    assert parse_ravdess_name("03-02-05-01-01-01-07.wav") == (None, 7)  # song
    assert parse_ravdess_name("01-01-05-01-01-01-07.mp4") == (None, 7)  # audio-video


@pytest.mark.parametrize(
    "name",
    ["03-01-05-01-01-01.wav", "03-01-05-01-01-01-07-01.wav", "03-01-5-01-01-01-07.wav",
     "03-01-09-01-01-01-07.wav", "03-01-xx-01-01-01-07.wav", "notes.wav", "1001_DFA_ANG_XX.wav", ""],
)
def test_ravdess_bad_names(name):
    assert parse_ravdess_name(name) is None


def test_ravdess_name_keeps_any_extension_and_directory():
    assert parse_ravdess_name("Actor_03/03-01-04-01-01-01-03.flac") == ("sad", 3)


@pytest.mark.parametrize(
    "code, emotion",
    [("ANG", "angry"), ("DIS", "disgust"), ("FEA", "fear"), ("HAP", "happy"), ("NEU", "neutral"), ("SAD", "sad")],
)
def test_crema_emotion_codes(code, emotion):
    assert parse_crema_name(f"1091_IEO_{code}_HI.wav") == (emotion, 1091)


@pytest.mark.parametrize("name", ["1001_DFA_XYZ_XX.wav", "101_DFA_ANG_XX.wav", "1001_DFA_ANG.wav",
                                  "abcd_DFA_ANG_XX.wav", "03-01-05-01-01-01-07.wav", "readme.wav"])
def test_crema_bad_names(name):
    assert parse_crema_name(name) is None


# ------------------------------------------------------------------------------------------ scanning


def test_scan_ravdess_counts_kept_excluded_and_unparsable(tmp_path):
    for actor in (1, 2):
        for emotion in audio_factory.SIX_EMOTIONS:
            _touch_audio(tmp_path / f"Actor_{actor:02d}" / ravdess_name(emotion, actor))
        _touch_audio(tmp_path / f"Actor_{actor:02d}" / ravdess_name("calm", actor))
        _touch_audio(tmp_path / f"Actor_{actor:02d}" / ravdess_name("surprised", actor))
        _touch_audio(tmp_path / f"Actor_{actor:02d}" / ravdess_name("angry", actor, channel="02"))  # song
    _touch_audio(tmp_path / "Actor_01" / "recording.wav")
    _touch_audio(tmp_path / "Actor_01" / "03-01-05-01-01-01.wav")
    (tmp_path / "Actor_01" / "notes.txt").write_text("not audio, not counted")

    clips, report = scan_ravdess(tmp_path)
    assert report.kept == len(clips) == 12
    assert report.other_emotions == 6
    assert sorted(Path(p).name for p in report.unparsed) == ["03-01-05-01-01-01.wav", "recording.wav"]
    assert report.duplicates == 0
    assert class_counts(clips) == {emotion: 2 for emotion in sorted(audio_factory.SIX_EMOTIONS)}
    by_speaker = {clip.speaker: clip.gender for clip in clips}
    assert by_speaker == {"ravdess_01": "male", "ravdess_02": "female"}  # odd actors are male
    assert {clip.corpus for clip in clips} == {"ravdess"}
    summary = report.summary()
    assert "kept 12" in summary and "6 of other emotions" in summary and "2 unparsable" in summary


def test_scan_ravdess_keeps_calm_and_surprised_as_auxiliary_emotions_when_asked(tmp_path):
    for actor in (1, 2):
        for emotion in (*audio_factory.SIX_EMOTIONS, "calm", "surprised"):
            _touch_audio(tmp_path / f"Actor_{actor:02d}" / ravdess_name(emotion, actor))
        _touch_audio(tmp_path / f"Actor_{actor:02d}" / ravdess_name("angry", actor, channel="02"))  # song

    clips, report = scan_ravdess(tmp_path, auxiliary=True)
    assert (report.kept, report.auxiliary, report.other_emotions) == (12, 4, 2)  # songs are still skipped
    assert class_counts(clips) == {**{emotion: 2 for emotion in audio_factory.SIX_EMOTIONS}, "calm": 2, "surprised": 2}
    assert "and 4 of auxiliary emotions" in report.summary()
    assert parse_ravdess_name("03-01-02-01-01-01-07.wav", auxiliary=True) == ("calm", 7)
    assert parse_ravdess_name("03-01-08-02-01-01-08.wav", auxiliary=True) == ("surprised", 8)
    assert parse_ravdess_name("03-02-02-01-01-01-07.wav", auxiliary=True) == (None, 7)  # sung calm


def test_scan_ravdess_finds_every_soundfile_format(tmp_path):
    for i, suffix in enumerate((".wav", ".flac", ".ogg")):
        _touch_audio(tmp_path / "Actor_05" / ravdess_name("happy", 5, repetition=i + 1, suffix=suffix))
    clips, report = scan_ravdess(tmp_path)
    assert sorted(Path(c.path).suffix for c in clips) == [".flac", ".ogg", ".wav"]
    assert report.kept == 3


def test_kaggle_duplicate_layout_is_deduplicated(tmp_path):
    """The Kaggle copy holds Actor_NN/ and audio_speech_actors_01-24/Actor_NN/ with the same files."""
    names = [ravdess_name(emotion, 3) for emotion in ("angry", "sad", "happy")] + [ravdess_name("calm", 3)]
    for name in names:
        _touch_audio(tmp_path / "Actor_03" / name)
        _touch_audio(tmp_path / "audio_speech_actors_01-24" / "Actor_03" / name)
    only_nested = ravdess_name("fear", 3)
    _touch_audio(tmp_path / "audio_speech_actors_01-24" / "Actor_03" / only_nested)

    clips, report = scan_ravdess(tmp_path)
    assert report.duplicates == 4
    assert report.kept == len(clips) == 4
    assert report.other_emotions == 1
    assert len({Path(c.path).name for c in clips}) == 4  # one copy of each recording
    # The shallower copy is the one kept; a file only in the nested folder is still found.
    assert {Path(c.path).parent for c in clips if Path(c.path).name != only_nested} == {tmp_path / "Actor_03"}
    assert any(Path(c.path).name == only_nested for c in clips)
    assert "4 duplicate copies dropped" in report.summary()


def test_scan_crema_without_demographics(tmp_path):
    for emotion in audio_factory.SIX_EMOTIONS:
        _touch_audio(tmp_path / "AudioWAV" / crema_name(1001, emotion))
        _touch_audio(tmp_path / "AudioWAV" / crema_name(1002, emotion, sentence="IEO", level="HI"))
    _touch_audio(tmp_path / "AudioWAV" / "1001_DFA_XYZ_XX.wav")  # CREMA-D-like, unknown emotion
    _touch_audio(tmp_path / "AudioWAV" / "stray.wav")
    clips, report = scan_crema(tmp_path)
    assert report.kept == len(clips) == 12
    assert report.other_emotions == 1
    assert [Path(p).name for p in report.unparsed] == ["stray.wav"]
    assert {clip.speaker for clip in clips} == {"crema_1001", "crema_1002"}
    assert {clip.gender for clip in clips} == {None}
    assert {clip.corpus for clip in clips} == {"crema"}


def test_scan_crema_reads_genders_from_video_demographics(tmp_path):
    for actor in (1001, 1002, 1003):
        _touch_audio(tmp_path / "AudioWAV" / crema_name(actor, "angry"))
    (tmp_path / "VideoDemographics.csv").write_text(textwrap.dedent("""\
        ActorID,Age,Sex,Race,Ethnicity
        1001,51,Male,Caucasian,Not Hispanic
        1002,21,Female,Caucasian,Not Hispanic
        1003,33,Unknown,Caucasian,Not Hispanic
    """))
    clips, _ = scan_crema(tmp_path)
    assert {clip.speaker: clip.gender for clip in clips} == {
        "crema_1001": "male", "crema_1002": "female", "crema_1003": None}


def test_gather_both_corpora(tmp_path):
    audio_factory.make_ravdess(tmp_path / "ravdess", (1, 2), emotions=("angry", "sad"), clips_per_emotion=1,
                               seconds=0.1)
    audio_factory.make_crema(tmp_path / "crema", (1001,), emotions=("angry", "happy"), seconds=0.1)
    clips, reports = gather(str(tmp_path / "ravdess"), str(tmp_path / "crema"))
    assert [r.corpus for r in reports] == ["ravdess", "crema"]
    assert len(clips) == 6
    assert {c.speaker for c in clips} == {"ravdess_01", "ravdess_02", "crema_1001"}


def test_gather_rejects_missing_or_empty_folders(tmp_path):
    with pytest.raises(DataUnavailableError, match="not a directory"):
        gather(str(tmp_path / "missing"), None)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataUnavailableError, match="No usable audio"):
        gather(None, str(tmp_path / "empty"))


# --------------------------------------------------------------------------------- Kaggle, offline


def _offline(*_args, **_kwargs):
    raise ConnectionError("no network in the test")


def test_download_failure_names_the_local_options(monkeypatch):
    import kagglehub

    monkeypatch.setattr(kagglehub, "dataset_download", _offline)
    with pytest.raises(DataUnavailableError) as caught:
        corpora.download(corpora.RAVDESS_KAGGLE)
    message = str(caught.value)
    assert "--ravdess-dir" in message and "--crema-dir" in message
    assert corpora.RAVDESS_KAGGLE in message and "ConnectionError" in message


def test_train_without_data_options_exits_cleanly(monkeypatch, tmp_path, capsys):
    import kagglehub

    calls = []

    def offline(handle, *args, **kwargs):
        calls.append(handle)
        raise ConnectionError("no network in the test")

    monkeypatch.setattr(kagglehub, "dataset_download", offline)
    # No local copies either (a checkout beside ../shared/data would otherwise train on all of them)
    monkeypatch.setattr(registry, "LOCAL_DATA", tmp_path / "no_local_data")
    code = run_train(["--run-dir", str(tmp_path / "run"), "--artifacts", str(tmp_path / "out")])
    assert code != 0
    assert calls == [corpora.RAVDESS_KAGGLE]
    err = capsys.readouterr().err
    assert "--ravdess-dir" in err and "--crema-dir" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_real_kagglehub_call_fails_fast_and_clearly(tmp_path):
    """The real kagglehub, with no network and no credentials; skipped if it would hang."""
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO_ROOT)!r})
        from ser_core.data.corpora import DataUnavailableError, download, RAVDESS_KAGGLE
        try:
            download(RAVDESS_KAGGLE)
        except DataUnavailableError as error:
            print(error)
            sys.exit(3)
        print("downloaded?")
    """)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "KAGGLEHUB_CACHE": str(tmp_path / "cache"),
           "KAGGLE_CONFIG_DIR": str(tmp_path / "kaggle")}
    try:
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30,
                                env=env)
    except subprocess.TimeoutExpired:
        pytest.skip("kagglehub did not fail within 30 s (network calls hang here)")
    if "downloaded?" in result.stdout:
        pytest.skip("kagglehub could reach Kaggle: this machine is online")
    assert result.returncode == 3, result.stderr[-2000:]
    assert "--ravdess-dir" in result.stdout and "--crema-dir" in result.stdout
    assert "Traceback" not in result.stderr
