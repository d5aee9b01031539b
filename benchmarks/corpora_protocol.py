"""Screen heads on issue 21's protocol, from cached Whisper embeddings of every corpus at hand.

    python -m benchmarks.corpora_protocol                         # the ridge alone and the shipped ridge + LR
    python -m benchmarks.corpora_protocol --heads ridge_speaker lr_global:C=0.01 --without banglaser
    python -m benchmarks.corpora_protocol --calm-as drop

The protocol (``training.whisper_run.loco_report``): each corpus with three or more of the six
emotions held out in turn, strict and adapted, the mean UAR the headline; speaker-grouped 5-fold CV
inside ASED (all sentences and the two common ones) and RAVDESS, every other corpus in training.
Prints one line per head and appends the full report to ``--log`` (JSON lines) for docs/experiments.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from ser_core.data import registry
from ser_core.data.embedding_cache import DEFAULT_EMBEDDING_CACHE
from ser_core.inference.params import EMOTIONS, EmbeddingParams
from ser_core.training import whisper_run
from ser_core.training.embedding_model import SHIPPED_RECIPE, EmbeddingRecipe

HEADS = {
    "ridge_speaker": dataclasses.replace(SHIPPED_RECIPE, head="ridge", alpha=3000.0, train_norm="speaker",
                                         skip_corpora=()),
    "ridge_lr": dataclasses.replace(SHIPPED_RECIPE, head="ridge+lr", skip_corpora=()),
    "lr_global": EmbeddingRecipe(head="lr", C=0.1, train_norm="global"),
    "lr_corpus": EmbeddingRecipe(head="lr", C=0.1, train_norm="corpus"),
    "ridge_global": dataclasses.replace(SHIPPED_RECIPE, head="ridge", alpha=3000.0, train_norm="global",
                                        skip_corpora=()),
}


def recipe_from(spec: str, calm_as: str) -> tuple[str, EmbeddingRecipe]:
    """``lr_global`` or ``lr_global:C=0.01,alpha=...``: a named head with some fields changed."""
    name, _, changes = spec.partition(":")
    recipe = HEADS[name]
    for change in filter(None, changes.split(",")):
        key, _, value = change.partition("=")
        recipe = dataclasses.replace(recipe, **{key: type(getattr(recipe, key))(value)})
    return spec, dataclasses.replace(recipe, calm_as=calm_as)


def line(name: str, report: dict) -> str:
    corpora = " ".join(f"{c} {100 * r['strict']['uar']:.1f}/{100 * r['adapted']['uar']:.1f}"
                       for c, r in report["corpora"].items())
    cv = report["speaker_cv"]
    parts = [f"{name}: LOCO mean strict {100 * report['mean']['strict_uar']:.1f} adapted "
             f"{100 * report['mean']['adapted_uar']:.1f} | {corpora}"]
    if "ased" in cv:
        ased = cv["ased"]
        parts.append(f"ASED CV UAR all {100 * ased['all']['strict']['uar']:.1f}/"
                     f"{100 * ased['all']['adapted']['uar']:.1f}"
                     f" common {100 * ased['common_sentences']['strict']['uar']:.1f}/"
                     f"{100 * ased['common_sentences']['adapted']['uar']:.1f}")
    if "ravdess" in cv:
        rav = cv["ravdess"]["all"]
        parts.append(f"RAVDESS CV acc/UAR strict {100 * rav['strict']['accuracy']:.1f}/{100 * rav['strict']['uar']:.1f}"
                     f" adapted {100 * rav['adapted']['accuracy']:.1f}/{100 * rav['adapted']['uar']:.1f}")
    return " | ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--heads", nargs="+", default=["ridge_speaker", "ridge_lr"],
                        help=f"named heads ({', '.join(HEADS)}), optionally :FIELD=VALUE,...")
    parser.add_argument("--without", nargs="*", default=[], help="corpora left out of everything")
    parser.add_argument("--calm-as", choices=("neutral", "drop"), default="neutral")
    parser.add_argument("--data-root", type=Path, default=registry.LOCAL_DATA)
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_EMBEDDING_CACHE)
    parser.add_argument("--log", type=Path, default=Path("/tmp/corpora_protocol.jsonl"))
    args = parser.parse_args()
    sources = {name: folder for name, folder in registry.default_sources(args.data_root).items()
               if name not in args.without}
    clips, _ = registry.gather_corpora(sources, calm_as=args.calm_as)
    clips = [clip for clip in clips if clip.emotion in EMOTIONS]
    data = whisper_run.embeddings(clips, EmbeddingParams(), args.cache_dir, 1)
    print(f"{len(data)} clips of {', '.join(sorted(set(data.corpus.tolist())))}; calm_as={args.calm_as}")
    for spec in args.heads:
        name, recipe = recipe_from(spec, args.calm_as)
        start = time.perf_counter()
        report = whisper_run.loco_report(data, recipe, name)
        seconds = time.perf_counter() - start
        print(line(name, report) + f" | {seconds:.0f} s", flush=True)
        with args.log.open("a") as handle:
            handle.write(json.dumps({"head": name, "without": args.without, "calm_as": args.calm_as,
                                     "seconds": round(seconds, 1), "corpora_used": sorted(set(data.corpus.tolist())),
                                     "mean_recall_below_50": int(np.sum([
                                         v is not None and v < 0.5 for r in report["corpora"].values()
                                         for v in r["strict"]["recall"].values()])),
                                     **report}) + "\n")


if __name__ == "__main__":
    main()
