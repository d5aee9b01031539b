"""Screen the tuned Whisper model (frame-level head, optionally tuned top blocks) against the ridge head.

    python -m benchmarks.whisper_tuned --per-corpus 350 --cache-only      # fill the frame cache
    python -m benchmarks.whisper_tuned --per-corpus 350 --top-blocks 0    # K = 0: the frame-level head
    python -m benchmarks.whisper_tuned --per-corpus 350 --top-blocks 1 --adapter lora --folds ravdess

Leave one corpus out over the corpora at hand (ravdess, tess, nemo, turev; ``--ased`` adds ASED's
``.opus`` clips, speaker = last field of the name) on the same clips for both models: a random
subset of ``--per-corpus`` clips per corpus (seed 0), or all with ``--per-corpus 0``. The ridge head
is the shipped recipe (``EmbeddingRecipe()``: layers 1-4 frame means, per-speaker standardised
training rows, alpha 3000) on the cached pooled embeddings of the same clips; strict = the held-out
corpus standardised with the training corpora's average statistics. The tuned model sees nothing of
the held-out corpus either (its frames are standardised with the training frames' statistics).
Prints one row per held-out corpus and the means, and the training time per fold.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ser_core.data import registry
from ser_core.data.corpora import Clip
from ser_core.data.embedding_cache import clip_embeddings
from ser_core.data.frame_cache import cached_frames
from ser_core.evaluation.metrics import classification_report
from ser_core.inference.params import EMOTIONS, EmbeddingParams

CORPORA = ("ravdess", "tess", "nemo", "turev")
ASED_EMOTIONS = {"01": "neutral", "02": "fear", "03": "happy", "04": "sad", "05": "angry"}


def ased_clips(root: Path) -> list[Clip]:
    """ASED's ``.opus`` clips by globbing (speaker = last field of the name; emotion from the folder's number)."""
    clips = []
    for path in sorted(root.glob("*/*.opus")):
        emotion = ASED_EMOTIONS.get(path.parent.name[:2])
        if emotion:
            clips.append(Clip(str(path), "ased", f"ased_{path.stem.split('-')[-1]}", None, emotion))
    return clips


def gather(data_root: Path, per_corpus: int, with_ased: bool) -> list[Clip]:
    clips, _ = registry.gather_corpora({name: data_root / name for name in CORPORA}, calm_as="neutral")
    if with_ased:
        clips += ased_clips(data_root / "ased")
    if per_corpus <= 0:
        return clips
    rng = np.random.default_rng(0)
    chosen = []
    for corpus in sorted({clip.corpus for clip in clips}):
        of_corpus = [clip for clip in clips if clip.corpus == corpus]
        picks = rng.choice(len(of_corpus), size=min(per_corpus, len(of_corpus)), replace=False)
        chosen += [of_corpus[i] for i in sorted(picks)]
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--per-corpus", type=int, default=350)
    parser.add_argument("--ased", action="store_true")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cache-only", action="store_true")
    parser.add_argument("--top-blocks", type=int, default=0)
    parser.add_argument("--adapter", default="lora", choices=("lora", "full"))
    parser.add_argument("--lora-rank", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--max-frames", type=int, default=200)
    parser.add_argument("--train-norm", default="speaker", choices=("speaker", "global"))
    parser.add_argument("--statistics", default="mean_std", choices=("mean_std", "mean"))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--dropout", type=float, default=0.3)
    parser.add_argument("--folds", default="", help="comma-separated held-out corpora (default: all)")
    parser.add_argument("--export", type=Path, default=None, help="export the model of the last fold here")
    args = parser.parse_args()

    params = EmbeddingParams()
    clips = gather(args.data_root, args.per_corpus, args.ased)
    start = time.perf_counter()
    frames, failures = cached_frames([clip.path for clip in clips], params, (1, 2, 3, 4), workers=args.workers)
    print(f"{len(clips)} clips, frames in {time.perf_counter() - start:.0f} s ({len(failures)} failed)", flush=True)
    if args.cache_only:
        return

    from ser_core.evaluation.embedding_protocols import leave_one_corpus_out
    from ser_core.inference.embedding_head import head_input
    from ser_core.training.embedding_model import EmbeddingRecipe, fit_head_for
    from ser_core.training.tuned_fit import ClipFrames, fit_tuned
    from ser_core.training.whisper_keras import TunedRecipe

    keep = [i for i, f in enumerate(frames) if f is not None]
    clips = [clips[i] for i in keep]
    frames = [frames[i] for i in keep]
    data = clip_embeddings(clips, params, workers=args.workers)
    if len(data) != len(clips):
        raise SystemExit("some pooled embeddings failed; the two models would not see the same clips")
    labels, corpus, speaker = data.labels, data.corpus, data.speaker
    folds = [f for f in args.folds.split(",") if f] or sorted(np.unique(corpus))

    ridge_recipe = EmbeddingRecipe()
    ridge_input = head_input(data.embeddings, ridge_recipe.layers, ridge_recipe.statistics)
    ridge = leave_one_corpus_out(ridge_input, labels, corpus, fit_head_for(ridge_recipe), normalisation="per_corpus",
                                 weighting=ridge_recipe.weighting, speakers=speaker, test_only=folds)
    ridge_adapted = leave_one_corpus_out(ridge_input, labels, corpus, fit_head_for(ridge_recipe),
                                         normalisation="adapted", weighting=ridge_recipe.weighting, speakers=speaker,
                                         test_only=folds)

    recipe = TunedRecipe(top_blocks=args.top_blocks, adapter=args.adapter, lora_rank=args.lora_rank,
                         epochs=args.epochs, max_frames=args.max_frames, train_norm=args.train_norm,
                         statistics=args.statistics, batch_size=args.batch_size, learning_rate=args.learning_rate,
                         dropout=args.dropout)
    print(f"tuned recipe: {recipe.to_dict()}", flush=True)
    dataset = ClipFrames(frames, labels, corpus, speaker)
    rows = []
    for held_out in folds:
        test = corpus == held_out
        t0 = time.perf_counter()
        model = fit_tuned(dataset.subset(~test), recipe, params=params)
        seconds = time.perf_counter() - t0
        logits = model.predict_logits(dataset.subset(test))
        tuned = classification_report(labels[test], logits.argmax(axis=1))
        tuned_adapted = classification_report(
            labels[test], model.predict_logits(dataset.subset(test), adapted=True).argmax(axis=1))
        base = ridge[held_out]
        rows.append((held_out, base["uar"], tuned["uar"], base["accuracy"], tuned["accuracy"], seconds,
                     ridge_adapted[held_out]["uar"], tuned_adapted["uar"]))
        recalls = " ".join(f"{e[:3]} {tuned['per_class'][e]['recall']:.2f}" for e in EMOTIONS
                           if tuned["per_class"][e]["recall"] is not None)
        print(f"{held_out:8s} ridge UAR {base['uar']:.3f} acc {base['accuracy']:.3f} | tuned UAR {tuned['uar']:.3f} "
              f"acc {tuned['accuracy']:.3f} | adapted: ridge {ridge_adapted[held_out]['uar']:.3f} tuned "
              f"{tuned_adapted['uar']:.3f} | {int(test.sum())} test clips, fit {seconds:.0f} s | strict recall {recalls}",
              flush=True)
        if args.export is not None and held_out == folds[-1]:
            digest = model.export(args.export)
            print(f"exported {args.export} ({args.export.stat().st_size / 1e3:.0f} kB, sha256 {digest})")
    ridge_mean = np.mean([r[1] for r in rows])
    tuned_mean = np.mean([r[2] for r in rows])
    print(f"MEAN     ridge UAR {ridge_mean:.3f} | tuned UAR {tuned_mean:.3f} | delta {100 * (tuned_mean - ridge_mean):+.1f} "
          f"points | adapted: ridge {np.mean([r[6] for r in rows]):.3f} tuned {np.mean([r[7] for r in rows]):.3f} "
          f"| fit {sum(r[5] for r in rows):.0f} s over {len(rows)} folds")


if __name__ == "__main__":
    main()
