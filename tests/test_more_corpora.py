"""TESS, nEMO and TurEV-DB loaders on generated files with the release names, and the emotion words."""

from __future__ import annotations

from pathlib import Path

import pytest

import audio_factory
from audio_factory import make_nemo, make_tess, make_turev, tone, write_audio
from ser_core.data.corpora import class_counts
from ser_core.data.labels import canonical_emotion, kept_label, scan_emotion_folders
from ser_core.data.nemo import parse_nemo_name, scan_nemo
from ser_core.data.tess import parse_tess_name, scan_tess
from ser_core.data.turev import parse_turev_name, scan_turev

SIX = audio_factory.SIX_EMOTIONS


def _touch(path: Path) -> Path:
    return write_audio(path, tone(220, 0.1))


# ----------------------------------------------------------------------------------- emotion words


@pytest.mark.parametrize("word, canonical", [
    ("fearful", "fear"), ("Fearfulness", "fear"), ("scared", "fear"), ("happiness", "happy"), ("JOY", "happy"),
    ("anger", "angry"), ("mad", "angry"), ("sadness", "sad"), ("disgusted", "disgust"), ("Neutral", "neutral"),
    ("calm", "calm"), ("ps", "surprised"), ("Pleasant_surprise", "surprised"), ("pleasant-surprised", "surprised"),
])
def test_emotion_synonyms(word, canonical):
    assert canonical_emotion(word) == canonical


@pytest.mark.parametrize("word", ["Actor_01", "misc", "", "boredom"])
def test_words_that_are_not_emotions(word):
    assert canonical_emotion(word) is None


def test_kept_label_calm_and_auxiliary():
    assert kept_label("fear") == "fear"
    assert kept_label("calm") is None
    assert kept_label("calm", calm_as="neutral") == "neutral"
    assert kept_label("calm", auxiliary=True) == "calm"
    assert kept_label("calm", auxiliary=True, calm_as="neutral") == "neutral"
    assert kept_label("surprised") is None and kept_label("surprised", auxiliary=True) == "surprised"
    with pytest.raises(ValueError, match="'neutrall'"):
        kept_label("calm", calm_as="neutrall")


# ---------------------------------------------------------------------------------------------- TESS


@pytest.mark.parametrize("path, parsed", [
    ("OAF_angry/OAF_back_angry.wav", ("OAF", "angry")),
    ("YAF_fear/YAF_dog_fear.flac", ("YAF", "fear")),
    ("OAF_Fear/oaf_Back_FEAR.WAV", ("OAF", "fear")),  # Kaggle's mixed case
    ("YAF_pleasant_surprised/YAF_germ_ps.wav", ("YAF", "surprised")),
    ("OAF_Pleasant_surprise/OAF_back_pleasant_surprise.wav", ("OAF", "surprised")),
    ("YAF_neutral/YAF_book_neutrl.wav", ("YAF", "neutral")),  # a misspelt name: the folder says it
])
def test_tess_names(path, parsed):
    assert parse_tess_name(path) == parsed


@pytest.mark.parametrize("path", ["OAF_back.wav", "03-01-05-01-01-01-07.wav", "1001_DFA_ANG_XX.wav",
                                  "samples/SB0_anger_1.wav", "Angry/1157_kz_acik.wav", "misc/OAF_back_word.wav"])
def test_not_tess_names(path):
    assert parse_tess_name(path) is None


def test_scan_tess_speakers_emotions_and_skipped_surprise(tmp_path):
    make_tess(tmp_path, emotions=(*SIX, "surprised"))
    _touch(tmp_path / "readme.wav")
    clips, report = scan_tess(tmp_path)
    assert report.kept == len(clips) == 2 * 6 * 2
    assert report.other_emotions == 4 and [Path(p).name for p in report.unparsed] == ["readme.wav"]
    assert class_counts(clips) == {emotion: 4 for emotion in SIX}
    assert {clip.speaker: clip.gender for clip in clips} == {"tess_OAF": "female", "tess_YAF": "female"}
    assert {clip.corpus for clip in clips} == {"tess"}

    clips, report = scan_tess(tmp_path, auxiliary=True)
    assert (report.kept, report.auxiliary) == (24, 4) and class_counts(clips)["surprised"] == 4


def test_scan_tess_reads_the_nested_kaggle_copy_once(tmp_path):
    """Kaggle nests the folders (twice over, in different case) under 'TESS Toronto emotional speech set data'."""
    make_tess(tmp_path / "TESS Toronto emotional speech set data", speakers=("OAF",), emotions=("angry", "sad"))
    make_tess(tmp_path / "tess toronto emotional speech set data" / "TESS Toronto emotional speech set data",
              speakers=("OAF",), emotions=("angry",))
    _touch(tmp_path / "TESS Toronto emotional speech set data" / "OAF_Fear" / "OAF_BACK_Fear.wav")
    clips, report = scan_tess(tmp_path)
    assert report.duplicates == 2
    assert class_counts(clips) == {"angry": 2, "fear": 1, "sad": 2}
    assert {clip.speaker for clip in clips} == {"tess_OAF"}


# ---------------------------------------------------------------------------------------------- nEMO


@pytest.mark.parametrize("name, parsed", [
    ("SB0_anger_0.wav", ("SB0", "angry")), ("samples/EB0_happiness_17.flac", ("EB0", "happy")),
    ("MP0_sadness_79.wav", ("MP0", "sad")), ("KS0_surprised_3.wav", ("KS0", "surprised")),
    ("IC0_fear_1.wav", ("IC0", "fear")), ("WR0_neutral_2.wav", ("WR0", "neutral")),
])
def test_nemo_names(name, parsed):
    assert parse_nemo_name(name) == parsed


@pytest.mark.parametrize("name", ["SB0_anger.wav", "SB0_boredom_1.wav", "SB0_anger_x.wav", "OAF_back_angry.wav",
                                  "1157_kz_acik.wav"])
def test_not_nemo_names(name):
    assert parse_nemo_name(name) is None


def test_scan_nemo_with_table_keeps_genders_and_skips_surprised(tmp_path):
    make_nemo(tmp_path, emotions=("angry", "fear", "happy", "neutral", "sad", "surprised"))
    clips, report = scan_nemo(tmp_path)
    assert report.kept == len(clips) == 2 * 5 * 2
    assert report.other_emotions == 4
    assert class_counts(clips) == {"angry": 4, "fear": 4, "happy": 4, "neutral": 4, "sad": 4}
    assert {clip.speaker: clip.gender for clip in clips} == {"nemo_SB0": "male", "nemo_EB0": "female"}
    assert scan_nemo(tmp_path, auxiliary=True)[1].auxiliary == 4


def test_scan_nemo_table_wins_over_the_name_and_names_are_the_fallback(tmp_path):
    make_nemo(tmp_path, speakers={"SB0": "male"}, emotions=("angry",), clips_per_emotion=1)
    with open(tmp_path / "data.tsv", "a", encoding="utf-8") as table:
        table.write("SB0_neutral_9.wav\tsadness\tx\tx\tSB0\tmale\t30\n")  # the table's label is the truth
    _touch(tmp_path / "samples" / "SB0_neutral_9.wav")
    _touch(tmp_path / "samples" / "XY0_fear_4.wav")  # not in the table: read from its name, gender unknown
    clips, report = scan_nemo(tmp_path)
    assert {(Path(c.path).name, c.emotion, c.speaker, c.gender) for c in clips} == {
        ("SB0_anger_0.wav", "angry", "nemo_SB0", "male"), ("SB0_neutral_9.wav", "sad", "nemo_SB0", "male"),
        ("XY0_fear_4.wav", "fear", "nemo_XY0", None)}


def test_scan_nemo_without_table(tmp_path):
    make_nemo(tmp_path, emotions=("angry", "sad"), table=False)
    clips, report = scan_nemo(tmp_path)
    assert report.kept == 8 and {clip.gender for clip in clips} == {None}
    assert {clip.speaker for clip in clips} == {"nemo_SB0", "nemo_EB0"}


# ------------------------------------------------------------------------------------------- TurEV-DB


@pytest.mark.parametrize("path, parsed", [
    ("Angry/1157_kz_acik.wav", ("1157", "angry")), ("Calm/1234_sk_algi.flac", ("1234", "calm")),
    ("Happy/6783_mt_beste.wav", ("6783", "happy")), ("Sad/7895_HL_acik.wav", ("7895", "sad")),
])
def test_turev_names(path, parsed):
    assert parse_turev_name(path) == parsed


@pytest.mark.parametrize("name", ["1157_xx_acik.wav", "1157_kz.wav", "OAF_back_angry.wav", "SB0_anger_1.wav"])
def test_not_turev_names(name):
    assert parse_turev_name(name) is None


def test_scan_turev_drops_calm_by_default_and_says_so(tmp_path):
    make_turev(tmp_path)
    clips, report = scan_turev(tmp_path)
    assert class_counts(clips) == {"angry": 4, "happy": 4, "sad": 4}
    assert (report.kept, report.other_emotions, report.calm, report.calm_as) == (12, 4, 4, "drop")
    assert {clip.speaker: clip.gender for clip in clips} == {"turev_1157": None, "turev_1234": None}
    assert "4 calm clips not counted as neutral (calm_as=drop)" in report.summary()
    assert report.record()["calm_as"] == "drop" and report.record()["calm_clips"] == 4


def test_scan_turev_calm_as_neutral_is_recorded_on_clip_and_report(tmp_path):
    make_turev(tmp_path)
    clips, report = scan_turev(tmp_path, calm_as="neutral")
    assert class_counts(clips) == {"angry": 4, "happy": 4, "neutral": 4, "sad": 4}
    assert {clip.source_emotion for clip in clips if clip.emotion == "neutral"} == {"calm"}
    assert {clip.source_emotion for clip in clips if clip.emotion != "neutral"} == {None}
    assert "4 calm clips counted as neutral (calm_as=neutral)" in report.summary()


def test_scan_turev_calm_as_auxiliary_and_bad_choice(tmp_path):
    make_turev(tmp_path, speakers=("1157",))
    clips, report = scan_turev(tmp_path, auxiliary=True)
    assert (report.kept, report.auxiliary) == (6, 2) and class_counts(clips)["calm"] == 2
    with pytest.raises(ValueError, match="calm_as"):
        scan_turev(tmp_path, calm_as="happy")


def test_scan_turev_flags_a_file_in_the_wrong_folder(tmp_path):
    make_turev(tmp_path, speakers=("1157",), emotions=("angry",))
    _touch(tmp_path / "Sad" / "1157_kz_kapi.wav")
    clips, report = scan_turev(tmp_path)
    assert report.kept == 2 and [Path(p).name for p in report.unparsed] == ["1157_kz_kapi.wav"]


# ---------------------------------------------------------------------------------- emotion folders


def test_emotion_folders_with_synonyms_and_calm(tmp_path):
    for folder in ("fearful", "Happiness", "anger", "sadness", "disgusted", "neutral", "calm", "misc"):
        _touch(tmp_path / folder / "take1.wav")
    _touch(tmp_path / "fearful" / "deeper" / "take2.m4a")
    _touch(tmp_path / "loose.wav")
    clips, report = scan_emotion_folders(tmp_path)
    assert class_counts(clips) == {"angry": 1, "disgust": 1, "fear": 2, "happy": 1, "neutral": 1, "sad": 1}
    assert report.ignored_folders == ["calm", "misc"] and report.calm == 1
    assert [Path(p).name for p in report.unparsed] == ["loose.wav"]
    clips, report = scan_emotion_folders(tmp_path, calm_as="neutral")
    assert class_counts(clips)["neutral"] == 2 and report.ignored_folders == ["misc"]


# --------------------------------------------------------------------------- the real corpora, if here


@pytest.mark.real_data
def test_real_tess(real_corpus):
    clips, report = scan_tess(real_corpus("tess"))
    assert len(clips) == 1200 and not report.unparsed and not report.duplicates
    assert class_counts(clips) == {emotion: 200 for emotion in SIX}
    assert {clip.speaker for clip in clips} == {"tess_OAF", "tess_YAF"}


@pytest.mark.real_data
def test_real_nemo(real_corpus):
    clips, report = scan_nemo(real_corpus("nemo"))
    assert len(clips) == 1909 and not report.unparsed
    assert class_counts(clips) == {"angry": 375, "fear": 369, "happy": 375, "neutral": 405, "sad": 385}
    genders = {clip.speaker: clip.gender for clip in clips}
    assert len(genders) == 9 and sorted(genders.values()).count("female") == 4


@pytest.mark.real_data
def test_real_turev(real_corpus):
    clips, report = scan_turev(real_corpus("turev"))
    assert (report.kept, report.calm, len(report.unparsed)) == (1735 - 408, 408, 0)
    assert class_counts(clips) == {"angry": 487, "happy": 357, "sad": 483}
    assert len({clip.speaker for clip in clips}) == 6
    clips, _ = scan_turev(real_corpus("turev"), calm_as="neutral")
    assert len(clips) == 1735 and class_counts(clips)["neutral"] == 408
