"""Misses and false alarms of the voice check (``ser_core/inference/voice_check.py``).

Prints, for the speech detector alone and for the detector followed by the voice check:

* misses on real speech: clips of the seven corpora in ``../shared/data`` that get no answer
  ("no speech" or "too little speech"), per corpus;
* false alarms on generated non-speech (``benchmarks/non_speech_signals.py``: tones 80-1000 Hz,
  sweeps, chords, melodies, music-like signals) and on the same corpus clips played backwards:
  signals that would get an emotion;
* the tests' synthetic voice (``tests/audio_factory.speech_like``, every emotion style): refusals;
* the three measurements' spread on real speech and reversed speech.

Run: ``python -m benchmarks.non_speech [--per-corpus 150] [--data ../shared/data]``
(``--per-corpus 0``: every clip). The speech detector hears the clip as the Whisper front end
gives it (level-normalised, ``embedding._vad_input``).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from benchmarks.non_speech_signals import generated  # noqa: E402
from ser_core.inference import embedding, speech  # noqa: E402
from ser_core.inference.audio import load_audio  # noqa: E402
from ser_core.inference.params import EmbeddingParams  # noqa: E402
from ser_core.inference.voice_check import voice_evidence  # noqa: E402

SR = 16_000
CORPORA = ("ravdess", "tess", "nemo", "turev", "ased", "casia", "banglaser_ext")
SEED = 20261206


def judge(wave: np.ndarray) -> tuple[str, str, object]:
    """(detector status, status after the voice check, evidence or None)."""
    regions = speech.detect_speech(embedding._vad_input(wave, EmbeddingParams()), SR)
    if regions.status != "speech":
        return regions.status, regions.status, None
    evidence = voice_evidence(wave, regions)
    return "speech", "speech" if evidence.is_voice else "not a voice", evidence


def corpus_files(data: Path, per_corpus: int) -> dict[str, list[Path]]:
    rng = random.Random(SEED)
    out = {}
    for corpus in CORPORA:
        files = sorted(p for p in (data / corpus).rglob("*") if p.suffix in (".flac", ".opus", ".wav"))
        if not files:
            continue
        out[corpus] = files if per_corpus <= 0 or per_corpus >= len(files) else sorted(rng.sample(files, per_corpus))
    return out


def table_row(label: str, row: np.ndarray) -> str:
    n = row[0]
    return (f"| {label} | {n} | {row[1] / n:.2%} ({row[1]}) | {row[2] / n:.2%} ({row[2]}) | {row[3]} "
            f"| {row[4] / n:.1%} | {row[5] / n:.1%} |")


def percentiles(values: list[float]) -> str:
    if not values:
        return "-"
    p = np.percentile(values, [0, 1, 5, 50, 95, 99, 100])
    return " / ".join(f"{v:.3f}" for v in p)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--per-corpus", type=int, default=150)
    parser.add_argument("--dump", type=Path, help="write each real clip's measurements here (JSON lines)")
    parser.add_argument("--generated-only", action="store_true", help="skip the real corpora")
    args = parser.parse_args()
    started = time.time()

    print("## Generated non-speech (4 s each unless named)\n")
    print("| family | signal | detector alone | with the voice check | why |")
    print("|---|---|---|---|---|")
    family_counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for name, (family, wave) in generated().items():
        before, after, evidence = judge(wave)
        counts = family_counts[family]
        counts[0] += 1
        counts[1] += before == "speech"
        counts[2] += after == "speech"
        why = evidence.reason if evidence is not None and evidence.reason else ""
        print(f"| {family} | {name} | {before} | {after} | {why} |")
    print("\n| family | signals | answered, detector alone | answered, with the voice check |")
    print("|---|---|---|---|")
    for family, (n, before, after) in family_counts.items():
        print(f"| {family} | {n} | {before} | {after} |")

    print("\n## Confirmation: the same families at other lengths and seeds (the rules were set on the set above)\n")
    print("| family | signals | answered, detector alone | answered, with the voice check | still answered |")
    print("|---|---|---|---|---|")
    confirm: dict[str, list] = defaultdict(lambda: [0, 0, 0, []])
    for seconds in (2.0, 8.0):
        for seed in (1, 2, 3):
            for name, (family, wave) in generated(seconds, seed).items():
                before, after, _ = judge(wave)
                counts = confirm[family]
                counts[0] += 1
                counts[1] += before == "speech"
                counts[2] += after == "speech"
                if after == "speech":
                    counts[3].append(f"{name} ({seconds:g} s, seed {seed})")
    for family, (n, before, after, names) in confirm.items():
        print(f"| {family} | {n} | {before} | {after} | {'; '.join(names)} |")

    import audio_factory

    print("\n## The tests' synthetic voice (audio_factory.emotional_speech, 1.2 s and 3 s, seeds 0-4)\n")
    refused, total = [], 0
    for emotion in audio_factory.EMOTION_STYLE:
        for seed in range(5):
            for seconds in (1.2, 3.0):
                before, after, evidence = judge(audio_factory.emotional_speech(emotion, seconds, seed=seed))
                if before == "speech":
                    total += 1
                    if after != "speech":
                        refused.append(f"{emotion} {seconds} s seed {seed}: {evidence.reason}")
    print(f"{len(refused)} of {total} refused by the voice check" + "".join(f"\n- {r}" for r in refused))

    files = {} if args.generated_only else corpus_files(args.data, args.per_corpus)
    if not files:
        print("\n(real corpora skipped: --generated-only)" if args.generated_only
              else f"\n(no corpora under {args.data}: real-speech figures skipped)")
        return
    sample = "all clips" if args.per_corpus <= 0 else f"{args.per_corpus} clips per corpus, seed {SEED}"
    print(f"\n## Real speech and the same clips played backwards ({sample})\n")
    print("| corpus | clips | no answer, detector alone | no answer, with the voice check | refused by the check "
          "| reversed: answered, detector alone | reversed: answered, with the check |")
    print("|---|---|---|---|---|---|---|")
    spread: dict[str, dict[str, list[float]]] = {"forward": defaultdict(list), "reversed": defaultdict(list)}
    totals = np.zeros(6, int)
    refused_clips = []
    dump = open(args.dump, "w") if args.dump else None
    for corpus, paths in files.items():
        row = np.zeros(6, int)
        for path in paths:
            wave = load_audio(path, SR)
            for direction, signal in (("forward", wave), ("reversed", wave[::-1].copy())):
                before, after, evidence = judge(signal)
                if evidence is not None:
                    for key in ("tonal_share", "held_pitch_share", "onset_skew"):
                        spread[direction][key].append(getattr(evidence, key))
                if dump is not None:
                    fields = {} if evidence is None else {k: getattr(evidence, k) for k in (
                        "tonal_share", "held_pitch_share", "onset_skew", "frames", "voiced_pairs")}
                    dump.write(json.dumps({"corpus": corpus, "path": str(path.relative_to(args.data)),
                                           "direction": direction, "detector": before, **fields}) + "\n")
                if direction == "forward":
                    row[0] += 1
                    row[1] += before != "speech"
                    row[2] += after != "speech"
                    if before == "speech" and after != "speech":
                        row[3] += 1
                        refused_clips.append(f"{path.relative_to(args.data)}: {evidence.reason} ({evidence})")
                else:
                    row[4] += before == "speech"
                    row[5] += after == "speech"
        totals += row
        print(table_row(corpus, row))
    print(table_row("all", totals))
    if refused_clips:
        print("\nReal clips the voice check refused:\n" + "\n".join(f"- {c}" for c in refused_clips))
    print("\n| measurement | speech: min / p1 / p5 / p50 / p95 / p99 / max | reversed: the same |")
    print("|---|---|---|")
    for key in ("tonal_share", "held_pitch_share", "onset_skew"):
        print(f"| {key} | {percentiles(spread['forward'][key])} | {percentiles(spread['reversed'][key])} |")
    print(f"\n(total wall time {time.time() - started:.0f} s)")


if __name__ == "__main__":
    main()
