"""Screen heads on cached Whisper embeddings under the embedding protocols; one JSON row per run.

    python -m benchmarks.whisper_screen --layers 3 --head lr --C 0.1 --protocol loco
    python -m benchmarks.whisper_screen --layers 2,3,4 --protocol cv
    python -m benchmarks.whisper_screen --layers 3 --protocol kshot --k 10 --enrol neutral

Reads the four shared corpora (``--data-root``) through the registry's loaders and the embedding
cache (fills it if needed), and appends what each run measured to ``--log`` (JSON lines), which
``docs/experiments.md`` is written from.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from ser_core.data import registry
from ser_core.data.embedding_cache import DEFAULT_EMBEDDING_CACHE, EmbeddingSet, clip_embeddings
from ser_core.data.split import cross_validation_folds
from ser_core.evaluation import embedding_protocols as protocols
from ser_core.inference.embedding_head import head_input
from ser_core.inference.params import EmbeddingParams

CORPORA = ("ravdess", "tess", "nemo", "turev")


def load_set(data_root: Path, calm_as: str = "neutral", cache_dir: Path = DEFAULT_EMBEDDING_CACHE,
             transform=None, workers: int = 1, clips: list | None = None,
             params: EmbeddingParams = EmbeddingParams()) -> tuple[EmbeddingSet, list]:
    if clips is None:
        clips, _ = registry.gather_corpora({name: data_root / name for name in CORPORA}, calm_as=calm_as)
    return clip_embeddings(clips, params, cache_dir=cache_dir, transform=transform, workers=workers,
                           desc="embeddings"), clips


def make_head(args: argparse.Namespace, n_layers: int):
    if args.head == "lr":
        from ser_core.training.embedding_heads import logistic_head

        return logistic_head(C=args.C)
    if args.head == "ridge":
        from ser_core.training.embedding_heads import ridge_head

        return ridge_head(alpha=args.alpha)
    from ser_core.training.embedding_heads import keras_head

    return keras_head(n_layers, epochs=args.epochs, hidden=args.hidden, dropout=args.dropout)


def compact(results: dict) -> dict:
    return {name: {"uar": round(r["uar"], 4), "accuracy": round(r["accuracy"], 4),
                   "recall": {e: round(v["recall"], 3) for e, v in r["per_class"].items() if v["support"]}}
            for name, r in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--layers", default="3")
    parser.add_argument("--stats", default="mean_std", choices=("mean_std", "mean"))
    parser.add_argument("--head", default="lr", choices=("lr", "ridge", "keras"))
    parser.add_argument("--alpha", type=float, default=3000.0, help="ridge head: L2 strength")
    parser.add_argument("--C", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--dropout", type=float, default=0.3)
    parser.add_argument("--weighting", default="class", choices=("none", "class", "corpus_class"))
    parser.add_argument("--calm", default="neutral", choices=("neutral", "drop"))
    parser.add_argument("--protocol", default="loco", choices=("loco", "cv", "kshot", "opus"))
    parser.add_argument("--kbps", type=float, default=16.0, help="opus protocol: bit rate of the test channel")
    parser.add_argument("--every", type=int, default=3, help="opus protocol: test on every n-th clip of a corpus")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--augment-every", type=int, default=0,
                        help="loco: add an augmented copy of every n-th clip (2nd, 4th, ...) of the training corpora")
    parser.add_argument("--augment", default="browser", choices=("browser", "speed"),
                        help="what --augment-every adds: Channel.browser() or speed perturbation (0.9 or 1.1)")
    parser.add_argument("--norms", default="global,per_corpus,adapted,adapted30")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--enrol", default="neutral", choices=("neutral", "random"))
    parser.add_argument("--speaker-norm", action="store_true",
                        help="loco and opus: standardise every training speaker on their own clips (held-out corpus as usual)")
    parser.add_argument("--note", default="")
    parser.add_argument("--no-vad", action="store_true", help="front end without the VAD (whole clip, level of all of it)")
    parser.add_argument("--log", type=Path, default=Path("data_cache/screen.jsonl"))
    args = parser.parse_args()

    data, clips = load_set(args.data_root, workers=args.workers, params=EmbeddingParams(vad=not args.no_vad))
    if args.calm == "drop":
        data = data.subset(data.source_emotion != "calm")
    layers = tuple(int(value) for value in args.layers.split(","))
    features = head_input(data.embeddings, layers, args.stats)
    head = make_head(args, len(layers))
    variant = {key: getattr(args, key) for key in ("layers", "stats", "head", "C", "weighting", "calm", "note")}
    if args.no_vad:
        variant["front_end"] = "no VAD"
    if args.head == "keras":
        variant.update(epochs=args.epochs, hidden=args.hidden, dropout=args.dropout)
        variant.pop("C")
    if args.head == "ridge":
        variant.pop("C")
        variant["alpha"] = args.alpha
    rows = []
    if args.protocol == "loco" and args.augment_every:
        # One augmented copy of part of the training clips; held-out corpora are tested clean.
        if args.augment == "speed":
            from benchmarks.perturb import SpeedPerturbation

            transform = SpeedPerturbation()
        else:
            from ser_core.data.channel import Channel

            transform = Channel.browser()
        chosen = set()
        for name in np.unique(data.corpus):
            chosen |= {str(p) for p in data.path[data.corpus == name][1 :: args.augment_every]}
        augmented, _ = load_set(args.data_root, transform=transform, workers=args.workers,
                                clips=[c for c in clips if c.path in chosen])
        augmented_features = head_input(augmented.embeddings, layers, args.stats)
        variant["augment"] = f"{args.augment} copy of every {args.augment_every}th clip"
        for norm in args.norms.split(","):
            start = time.perf_counter()
            results = {}
            for held_out in sorted(np.unique(data.corpus)):
                extra = augmented.corpus != held_out
                results.update(protocols.leave_one_corpus_out(
                    np.concatenate([features, augmented_features[extra]]),
                    np.concatenate([data.labels, augmented.labels[extra]]),
                    np.concatenate([data.corpus, augmented.corpus[extra]]), head, weighting=args.weighting,
                    normalisation="adapted" if norm.startswith("adapted") else norm,
                    adapt_clips=int(norm[7:]) if norm.startswith("adapted") and norm[7:] else None,
                    test_only=[held_out]))
            rows.append({"protocol": f"loco/{norm}", **protocols.summarise(results), "corpora": compact(results),
                         "seconds": round(time.perf_counter() - start, 1)})
    elif args.protocol == "loco":
        if args.speaker_norm:
            variant["train_norm"] = "per speaker"
        for norm in args.norms.split(","):
            start = time.perf_counter()
            results = protocols.leave_one_corpus_out(
                features, data.labels, data.corpus, head, weighting=args.weighting,
                normalisation="adapted" if norm.startswith("adapted") else norm,
                adapt_clips=int(norm[7:]) if norm.startswith("adapted") and norm[7:] else None,
                speakers=data.speaker if args.speaker_norm else None)
            rows.append({"protocol": f"loco/{norm}", **protocols.summarise(results), "corpora": compact(results),
                         "seconds": round(time.perf_counter() - start, 1)})
    elif args.protocol == "cv":
        ravdess = data.subset(data.corpus == "ravdess")
        from ser_core.data.corpora import Clip

        clips = [Clip(p, "ravdess", s, g or None, "neutral") for p, s, g in zip(ravdess.path, ravdess.speaker, ravdess.gender)]
        folds = cross_validation_folds(clips, n_folds=5, seed=0)
        start = time.perf_counter()
        result = protocols.speaker_cross_validation(features, data.labels, data.corpus, data.speaker, folds, head,
                                                    weighting=args.weighting)
        fold_acc = [f["accuracy"] for f in result["folds"]]
        fold_uar = [f["uar"] for f in result["folds"]]
        rows.append({"protocol": "ravdess_cv5", "accuracy": result["accuracy"], "uar": result["uar"],
                     "fold_accuracy_std": float(np.std(fold_acc)), "fold_uar_std": float(np.std(fold_uar)),
                     "recall": {e: round(v["recall"], 3) for e, v in result["per_class"].items()},
                     "seconds": round(time.perf_counter() - start, 1)})
    elif args.protocol == "opus":
        # Held-out corpora heard through a browser's Opus channel; training clips stay clean.
        from ser_core.data.channel import Channel

        if args.speaker_norm:
            variant["train_norm"] = "per speaker"

        subset = np.zeros(len(data), bool)
        for name in np.unique(data.corpus):
            subset[np.flatnonzero(data.corpus == name)[:: args.every]] = True
        tested = data.subset(subset)
        chosen = {str(p) for p in tested.path}
        channel_set, _ = load_set(args.data_root, transform=Channel.opus(args.kbps), workers=args.workers,
                                  clips=[c for c in clips if c.path in chosen])
        order = {p: i for i, p in enumerate(channel_set.path)}
        coded = head_input(channel_set.embeddings[[order[p] for p in tested.path]], layers, args.stats)
        for norm in args.norms.split(","):
            for name, test_rows in (("clean", head_input(tested.embeddings, layers, args.stats)), ("opus", coded)):
                start = time.perf_counter()
                results = {}
                for held_out in sorted(np.unique(data.corpus)):
                    keep = (data.corpus != held_out) | subset
                    mixed = features[keep].copy()
                    in_test = data.corpus[keep] == held_out
                    mixed[in_test] = test_rows[tested.corpus == held_out]
                    results.update(protocols.leave_one_corpus_out(
                        mixed, data.labels[keep], data.corpus[keep], head, weighting=args.weighting,
                        normalisation="adapted" if norm.startswith("adapted") else norm,
                        adapt_clips=int(norm[7:]) if norm.startswith("adapted") and norm[7:] else None,
                        test_only=[held_out], speakers=data.speaker[keep] if args.speaker_norm else None))
                rows.append({"protocol": f"loco/{norm}/{name}{'' if name == 'clean' else int(args.kbps)}/every{args.every}",
                             **protocols.summarise(results), "corpora": compact(results),
                             "seconds": round(time.perf_counter() - start, 1)})
    else:
        start = time.perf_counter()
        results = protocols.speaker_adaptation(features, data.labels, data.corpus, data.speaker, head, k=args.k,
                                               enrol=args.enrol, weighting=args.weighting)
        rows.append({"protocol": f"kshot/{args.enrol}/k{args.k}", **protocols.summarise(results),
                     "corpora": compact(results), "seconds": round(time.perf_counter() - start, 1)})
    args.log.parent.mkdir(parents=True, exist_ok=True)
    with args.log.open("a") as handle:
        for row in rows:
            row = {"variant": variant, **row}
            handle.write(json.dumps(row) + "\n")
            uars = " ".join(f"{k}={v:.3f}" for k, v in row.get("uar", {}).items()) if isinstance(row.get("uar"), dict) else ""
            headline = (f"mean UAR {row['mean_uar']:.3f} min {row['min_uar']:.3f} [{uars}] weak {row['recall_below_50']}"
                        if "mean_uar" in row else f"acc {row['accuracy']:.3f} UAR {row['uar']:.3f}")
            print(f"{json.dumps(variant)} {row['protocol']}: {headline} ({row['seconds']} s)", flush=True)


if __name__ == "__main__":
    main()
