"""Everything the predictor answers on real clips, saved; or compared with a saved run.

A guard for refactoring ``ser_core/inference/predictor.py`` (issue 21 item 6): run it before the
change (``save``), then after it (``compare``), and every number must agree to 1e-6.

    python benchmarks/predictor_snapshot.py save OUT.npz
    python benchmarks/predictor_snapshot.py compare OUT.npz

What it records, for the served Whisper model and an untrained log-mel CNN (the app tests' fake
model, seeded): ``predict_file`` (features kept) and ``predict_wave`` of 3 clips of each of the
seven corpora in ``../shared/data``; a 100 s file of 30 clips joined with pauses, by
``predict_file`` whole and streamed (``keep_features=False``, ``max_seconds=None``: the long-file
path); the same clips adapted (an :class:`Adaptation` of those 30 clips), at coverage 0.8; the
``adaptation_sample`` features, ``probabilities_of`` and ``batch_probabilities`` with and without
self-training; and what silence, a steady tone and a too-short blip raise. Every prediction's
probabilities, sets, labels, timeline (windows and segments) and kept features are compared.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

DATA = ROOT.parent / "shared" / "data"
CORPORA = ("ravdess", "tess", "nemo", "turev", "ased", "casia", "banglaser_ext")
AUDIO = (".wav", ".flac", ".opus")


def _clips(per_corpus: int) -> list[Path]:
    chosen = []
    for corpus in CORPORA:
        files = sorted(p for p in (DATA / corpus).rglob("*") if p.suffix in AUDIO)
        step = max(1, len(files) // per_corpus)
        chosen += files[::step][:per_corpus]
    return chosen


def _flatten(prefix: str, prediction, out: dict[str, np.ndarray]) -> None:
    d = prediction.to_dict()
    out[f"{prefix}/clip"] = np.array([d["probabilities"][e] for e in sorted(d["probabilities"])])
    out[f"{prefix}/scalars"] = np.array([d["confidence"], d["threshold"], d["duration_s"], d["speech_seconds"],
                                         float(d["uncertain"]), float(d["adapted"]), d["adaptation_clips"],
                                         d["coverage"] or -1.0])
    out[f"{prefix}/labels"] = np.array([d["label"], d["top_emotion"], ",".join(d["emotions"])])
    for part in ("windows", "segments"):
        rows = d[part]
        out[f"{prefix}/{part}/times"] = np.array([[r["start_s"], r["end_s"]] for r in rows]).reshape(-1, 2)
        out[f"{prefix}/{part}/p"] = np.array([[r["probabilities"][e] for e in sorted(r["probabilities"])]
                                               for r in rows]).reshape(len(rows), -1)
        out[f"{prefix}/{part}/sets"] = np.array([",".join(r["emotions"]) + "|" + r.get("label", "")
                                                  for r in rows] or [""])
    out[f"{prefix}/features"] = np.asarray(prediction.features, np.float64)
    out[f"{prefix}/window_starts"] = np.asarray(prediction.window_starts, np.float64)


def _refusal(call) -> str:
    try:
        call()
    except Exception as error:  # noqa: BLE001 - the type and message are what is compared
        return f"{type(error).__name__}: {getattr(error, 'status', '')} {error}"
    return "answered"


def _record(name: str, predictor, clips: list[Path], long_file: Path, out: dict[str, np.ndarray]) -> None:
    from ser_core.inference.adaptation import Adaptation
    from ser_core.inference.audio import load_audio

    rate = predictor.params.sample_rate
    for index, clip in enumerate(clips[:21]):
        _flatten(f"{name}/file{index}", predictor.predict_file(str(clip)), out)
        wave = load_audio(str(clip), 44_100)
        _flatten(f"{name}/wave{index}", predictor.predict_wave(wave, 44_100), out)
    _flatten(f"{name}/long_whole", predictor.predict_file(str(long_file), max_seconds=None), out)
    _flatten(f"{name}/long_stream", predictor.predict_file(str(long_file), max_seconds=None, keep_features=False), out)
    silence = np.zeros(rate * 2, np.float32)
    tone = (0.3 * np.sin(2 * np.pi * 220 * np.arange(rate * 3) / rate)).astype(np.float32)
    blip = np.random.default_rng(1).normal(0, 0.2, rate // 20).astype(np.float32)
    out[f"{name}/refusals"] = np.array([_refusal(lambda w=w: predictor.predict_wave(w, rate))
                                        for w in (silence, tone, blip)])
    out[f"{name}/supports"] = np.array([predictor.supports_adaptation, predictor.supports_self_training,
                                        predictor.self_trains(40), predictor.kind, predictor.head_kind], dtype=str)
    if not predictor.supports_adaptation:
        out[f"{name}/adaptation_refusal"] = np.array([_refusal(lambda: predictor.adaptation_sample(silence, rate))])
        return
    samples = [predictor.adaptation_sample(load_audio(str(clip), rate), rate) for clip in clips]
    adaptation = Adaptation.empty()
    for sample in samples:
        adaptation = adaptation.add(sample)
    out[f"{name}/sample_features"] = np.stack([s.features for s in samples])
    out[f"{name}/sample_speech"] = np.array([s.speech_seconds for s in samples])
    for index, clip in enumerate(clips[:8]):
        _flatten(f"{name}/adapted{index}", predictor.predict_file(str(clip), adaptation=adaptation, coverage=0.8), out)
    _flatten(f"{name}/adapted_long", predictor.predict_file(str(long_file), max_seconds=None, keep_features=False,
                                                            adaptation=adaptation), out)
    emotions = sorted(predictor.emotions)
    as_array = lambda answers: np.array([[a[e] for e in emotions] for a in answers])  # noqa: E731
    out[f"{name}/probabilities_of"] = as_array([predictor.probabilities_of(s) for s in samples])
    out[f"{name}/probabilities_of_adapted"] = as_array([predictor.probabilities_of(s, adaptation) for s in samples])
    out[f"{name}/batch"] = as_array(predictor.batch_probabilities(samples, adaptation))
    out[f"{name}/batch_mixed"] = as_array(predictor.batch_probabilities(
        samples, [adaptation if i % 2 else None for i in range(len(samples))]))
    out[f"{name}/batch_self"] = as_array(predictor.batch_probabilities(samples, adaptation, self_train=True))
    out[f"{name}/sets"] = np.array([",".join(predictor.emotion_set(a, adapted=True, coverage=0.95))
                                    for a in predictor.batch_probabilities(samples, adaptation)])


def snapshot() -> dict[str, np.ndarray]:
    import soundfile as sf

    from app_helpers import write_fake_artifacts
    from ser_core.inference.audio import load_audio
    from ser_core.inference.predictor import Predictor

    clips = _clips(3) + _clips(5)[-9:]
    clips = list(dict.fromkeys(clips))[:30]
    out: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as folder:
        long_file = Path(folder) / "long.flac"
        pause = np.zeros(8_000, np.float32)
        pieces = []
        while sum(p.size for p in pieces) < 100 * 16_000:
            for clip in clips:
                pieces += [load_audio(str(clip), 16_000), pause]
        sf.write(long_file, np.concatenate(pieces)[: 100 * 16_000], 16_000)
        _record("whisper", Predictor.from_artifacts(ROOT / "artifacts"), clips, long_file, out)
        cnn_dir = write_fake_artifacts(Path(folder) / "cnn")
        _record("cnn", Predictor.from_artifacts(cnn_dir), clips, long_file, out)
    return out


def main(argv: list[str]) -> int:
    mode, path = argv
    now = snapshot()
    if mode == "save":
        np.savez_compressed(path, **now)
        print(f"saved {len(now)} arrays to {path}")
        return 0
    saved = dict(np.load(path, allow_pickle=False))
    problems = sorted(set(saved) ^ set(now))
    worst = 0.0
    for key in sorted(set(saved) & set(now)):
        a, b = saved[key], now[key]
        if a.dtype.kind in "US" or b.dtype.kind in "US":
            if a.shape != b.shape or not (a == b).all():
                problems.append(key)
        elif a.shape != b.shape:
            problems.append(key)
        elif a.size:
            difference = float(np.max(np.abs(a - b)))
            worst = max(worst, difference)
            if difference > 1e-6:
                problems.append(f"{key} ({difference:.3g})")
    print(f"compared {len(saved)} arrays: largest difference {worst:.3g}; "
          f"{'all agree' if not problems else 'DIFFERENT: ' + ', '.join(problems)}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
