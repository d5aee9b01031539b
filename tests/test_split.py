"""Speaker-independent splits: no speaker in two splits, determinism, balance by corpus and gender."""

from __future__ import annotations

import csv
from collections import Counter, defaultdict

import pytest

from ser_core.data.corpora import Clip
from ser_core.inference.params import EMOTIONS
from ser_core.data.split import (
    SPLITS,
    corpus_folds,
    cross_validation_folds,
    fold_assignment,
    held_out_folds,
    speaker_split,
    write_split_csv,
)


def ravdess_clips(actors=range(1, 25), per_emotion: int = 2) -> list[Clip]:
    return [
        Clip(f"/data/Actor_{a:02d}/{e}_{i}.wav", "ravdess", f"ravdess_{a:02d}", "male" if a % 2 else "female", e)
        for a in actors for e in EMOTIONS for i in range(per_emotion)
    ]


def crema_clips(actors=range(1001, 1031), genders: dict | None = None) -> list[Clip]:
    genders = genders or {}
    return [Clip(f"/data/AudioWAV/{a}_{e}.wav", "crema", f"crema_{a}", genders.get(a), e)
            for a in actors for e in EMOTIONS]


def clip_splits_by_speaker(clips: list[Clip], assignment: dict[str, str]) -> dict[str, set[str]]:
    splits = defaultdict(set)
    for clip in clips:
        splits[clip.speaker].add(assignment[clip.speaker])
    return splits


ACTORS_20 = [a for a in range(1, 25) if a not in (5, 12, 19, 24)]  # the 20 actors of the local copy


# ---------------------------------------------------------------------------------- speaker_split


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_no_speaker_in_two_splits(seed):
    clips = ravdess_clips() + crema_clips()
    assignment = speaker_split(clips, seed=seed)
    assert set(assignment) == {clip.speaker for clip in clips}
    assert set(assignment.values()) == set(SPLITS)
    assert all(len(s) == 1 for s in clip_splits_by_speaker(clips, assignment).values())


def test_split_sizes_follow_the_fractions():
    clips = ravdess_clips(ACTORS_20)
    counts = Counter(speaker_split(clips, validation=0.15, test=0.15).values())
    assert counts == {"train": 14, "validation": 3, "test": 3}


def test_split_is_deterministic_and_seed_dependent():
    clips = ravdess_clips() + crema_clips()
    first = speaker_split(clips, seed=3)
    assert speaker_split(list(reversed(clips)), seed=3) == first  # clip order does not matter either
    others = [speaker_split(clips, seed=s) for s in (4, 5, 6)]
    assert any(other != first for other in others)
    tests = {frozenset(s for s, split in a.items() if split == "test") for a in [first, *others]}
    assert len(tests) > 1


def test_both_corpora_in_every_split():
    clips = ravdess_clips() + crema_clips()
    assignment = speaker_split(clips, seed=0)
    for split in SPLITS:
        corpora = {clip.corpus for clip in clips if assignment[clip.speaker] == split}
        assert corpora == {"ravdess", "crema"}, split


def test_held_out_splits_are_gender_balanced():
    clips = ravdess_clips()  # 12 male, 12 female
    for seed in range(5):
        assignment = speaker_split(clips, seed=seed, validation=0.17, test=0.17)  # 4 speakers each
        for split in ("validation", "test"):
            males = [s for s, v in assignment.items() if v == split and int(s[-2:]) % 2]
            females = [s for s, v in assignment.items() if v == split and not int(s[-2:]) % 2]
            assert len(males) == len(females) == 2, (seed, split)


def test_tiny_corpus_keeps_everyone_in_training():
    assignment = speaker_split(ravdess_clips(actors=(1, 2)))
    assert set(assignment.values()) == {"train"}


# ------------------------------------------------------------------------------- cross-validation


def test_folds_partition_the_speakers():
    clips = ravdess_clips(ACTORS_20) + crema_clips(range(1001, 1011))
    folds = cross_validation_folds(clips, 5, seed=0)
    speakers = [s for fold in folds for s in fold]
    assert len(speakers) == len(set(speakers)) == 30
    assert all(len(fold) == 6 for fold in folds)


def test_five_folds_of_twenty_actors_are_two_male_two_female():
    clips = ravdess_clips(ACTORS_20)
    for seed in range(3):
        folds = cross_validation_folds(clips, 5, seed=seed)
        for fold in folds:
            genders = Counter("male" if int(s[-2:]) % 2 else "female" for s in fold)
            assert genders == {"male": 2, "female": 2}, (seed, fold)


@pytest.mark.parametrize("n_folds", [2, 4])
def test_even_fold_counts_are_gender_balanced_too(n_folds):
    clips = ravdess_clips(ACTORS_20)
    for fold in cross_validation_folds(clips, n_folds, seed=0):
        genders = Counter("male" if int(s[-2:]) % 2 else "female" for s in fold)
        assert abs(genders["male"] - genders["female"]) <= 1, fold


def test_folds_are_deterministic_and_seed_dependent():
    clips = ravdess_clips(ACTORS_20)
    assert cross_validation_folds(clips, 5, seed=1) == cross_validation_folds(clips, 5, seed=1)
    assert any(cross_validation_folds(clips, 5, seed=1) != cross_validation_folds(clips, 5, seed=s)
               for s in (2, 3, 4))


def test_every_fold_holds_both_corpora():
    clips = ravdess_clips(ACTORS_20) + crema_clips(range(1001, 1021))
    for fold in cross_validation_folds(clips, 5, seed=0):
        assert {s.split("_")[0] for s in fold} == {"ravdess", "crema"}


@pytest.mark.parametrize("seed", [0, 1])
def test_fold_assignment_keeps_splits_disjoint(seed):
    clips = ravdess_clips(ACTORS_20) + crema_clips(range(1001, 1021))
    folds = cross_validation_folds(clips, 5, seed=seed)
    for fold in folds:
        assignment = fold_assignment(clips, fold, seed=seed)
        assert set(assignment) == {clip.speaker for clip in clips}
        assert all(len(s) == 1 for s in clip_splits_by_speaker(clips, assignment).values())
        test = {s for s, v in assignment.items() if v == "test"}
        validation = {s for s, v in assignment.items() if v == "validation"}
        assert test == set(fold)  # exactly the fold is tested
        assert validation and not validation & set(fold)  # validation never from the test fold
        assert {s.split("_")[0] for s in validation} == {"ravdess", "crema"}
        train = {s for s, v in assignment.items() if v == "train"}
        assert train | validation | test == set(assignment)


def test_corpus_folds_hold_out_each_corpus_whole():
    clips = ravdess_clips(range(1, 7)) + crema_clips(range(1001, 1005))
    folds = corpus_folds(clips)
    assert folds == [sorted(f"crema_{a}" for a in range(1001, 1005)), sorted(f"ravdess_{a:02d}" for a in range(1, 7))]
    assert held_out_folds(clips, "corpus") == folds
    assert held_out_folds(clips, 3, seed=1) == cross_validation_folds(clips, 3, seed=1)
    for fold in folds:  # the other corpus trains and validates; nobody is in two splits
        assignment = fold_assignment(clips, fold)
        held_out = {s for s, split in assignment.items() if split == "test"}
        assert held_out == set(fold)
        assert {s.split("_")[0] for s, split in assignment.items() if split != "test"}.isdisjoint(
            {s.split("_")[0] for s in fold})


def test_write_split_csv(tmp_path):
    clips = ravdess_clips(ACTORS_20) + crema_clips(range(1001, 1004))
    assignment = speaker_split(clips, seed=0)
    path = tmp_path / "split.csv"
    write_split_csv(clips, assignment, path)
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(clips)
    assert list(rows[0]) == ["path", "corpus", "speaker", "gender", "emotion", "split"]
    assert {row["gender"] for row in rows if row["corpus"] == "crema"} == {""}
    assert all(row["split"] == assignment[row["speaker"]] for row in rows)
