"""Speaker-independent splits: no speaker's clips ever appear in two splits."""

from __future__ import annotations

import csv
import random
from collections import defaultdict
from pathlib import Path

from ser_core.data.corpora import Clip

SPLITS = ("train", "validation", "test")


def _speakers_by_corpus(clips: list[Clip]) -> dict[str, dict[str, str | None]]:
    corpora: dict[str, dict[str, str | None]] = defaultdict(dict)
    for clip in clips:
        corpora[clip.corpus][clip.speaker] = clip.gender
    return corpora


def _gender_groups(speakers: dict[str, str | None]) -> dict[str | None, list[str]]:
    groups: dict[str | None, list[str]] = defaultdict(list)
    for speaker, gender in sorted(speakers.items()):
        groups[gender].append(speaker)
    return groups


def _gender_interleaved(speakers: dict[str, str | None], rng: random.Random) -> list[str]:
    """Speakers shuffled within each gender, then dealt alternately, so any prefix is balanced."""
    groups = _gender_groups(speakers)
    queues = []
    for gender in sorted(groups, key=str):
        rng.shuffle(groups[gender])
        queues.append(groups[gender])
    dealt = []
    while any(queues):
        for queue in queues:
            if queue:
                dealt.append(queue.pop())
    return dealt


def _share(fraction: float, n_speakers: int) -> int:
    """Speakers for a split of ``fraction``: at least one when asked for any and there are enough."""
    if fraction <= 0 or n_speakers < 3:
        return 0
    return max(1, round(fraction * n_speakers))


def speaker_split(
    clips: list[Clip], seed: int = 0, validation: float = 0.15, test: float = 0.15
) -> dict[str, str]:
    """Map each speaker to "train", "validation" or "test", per corpus and balanced by gender."""
    assignment: dict[str, str] = {}
    for corpus, speakers in sorted(_speakers_by_corpus(clips).items()):
        order = _gender_interleaved(speakers, random.Random(f"{seed}-{corpus}"))
        n_test = _share(test, len(order))
        n_validation = _share(validation, len(order))
        for index, speaker in enumerate(order):
            if index < n_test:
                assignment[speaker] = "test"
            elif index < n_test + n_validation:
                assignment[speaker] = "validation"
            else:
                assignment[speaker] = "train"
    return assignment


def cross_validation_folds(clips: list[Clip], n_folds: int = 5, seed: int = 0) -> list[list[str]]:
    """Partition the speakers into ``n_folds`` test folds, each balanced by gender and corpus."""
    folds: list[list[str]] = [[] for _ in range(n_folds)]
    position = 0  # runs on across groups, so the folds a group leaves short get the next group's first
    for corpus, speakers in sorted(_speakers_by_corpus(clips).items()):
        rng = random.Random(f"{seed}-{corpus}")
        for _gender, group in sorted(_gender_groups(speakers).items(), key=lambda item: str(item[0])):
            rng.shuffle(group)
            for speaker in group:
                folds[position % n_folds].append(speaker)
                position += 1
    return [sorted(fold) for fold in folds]


def corpus_folds(clips: list[Clip]) -> list[list[str]]:
    """One test fold per corpus (sorted by name): all its speakers; leave-one-corpus-out."""
    return [sorted(speakers) for _corpus, speakers in sorted(_speakers_by_corpus(clips).items())]


def held_out_folds(clips: list[Clip], cv: int | str, seed: int = 0) -> list[list[str]]:
    """The test speakers of every fold of ``--cv``: K speaker folds, or one fold per corpus for "corpus"."""
    return corpus_folds(clips) if cv == "corpus" else cross_validation_folds(clips, cv, seed=seed)


def fold_assignment(
    clips: list[Clip], test_speakers: list[str], seed: int = 0, validation: float = 0.15
) -> dict[str, str]:
    """Test = the fold's speakers; validation speakers are drawn from the remaining (training) ones."""
    rest = [clip for clip in clips if clip.speaker not in set(test_speakers)]
    inner = speaker_split(rest, seed=seed, validation=validation, test=0.0)
    assignment = {speaker: "test" for speaker in test_speakers}
    for speaker, split in inner.items():
        assignment[speaker] = "validation" if split in ("validation", "test") else "train"
    return assignment


def write_split_csv(clips: list[Clip], assignment: dict[str, str], path: Path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "corpus", "speaker", "gender", "emotion", "split"])
        for clip in clips:
            writer.writerow([clip.path, clip.corpus, clip.speaker, clip.gender or "", clip.emotion,
                             assignment[clip.speaker]])
