"""Emotion sets (split conformal) on leave-one-corpus-out scores: every method, every held-out corpus.

    .venv/bin/python -m benchmarks.emotion_sets [--data-root ../shared/data]   # a minute from the cached embeddings

Scores every clip as train.py does (``leave_one_corpus_out_enrolled`` with the shipped recipe: strict,
and each held-out speaker adapted with 5-20 of their own clips), then calibrates the sets with each
method (``evaluation.set_calibration``), each corpus left out of the calibration too, and prints per
held-out corpus: coverage, mean set size, how often one emotion is named and how often it is right,
beside the old single answer's answered rate (docs/results.md).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.whisper_screen import load_set
from ser_core.evaluation import embedding_protocols as protocols
from ser_core.evaluation.metrics import choose_threshold, fit_temperature, softmax
from ser_core.evaluation.set_calibration import calibrate_sets
from ser_core.inference.embedding_head import head_input
from ser_core.training.embedding_model import SHIPPED_RECIPE, fit_head_for

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--json", type=Path, help="also write the whole emotion_sets block here")
    args = parser.parse_args()
    data, _ = load_set(args.data_root)
    recipe = SHIPPED_RECIPE
    features = head_input(data.embeddings, recipe.layers, recipe.statistics)
    strict, enrolled = protocols.leave_one_corpus_out_enrolled(
        features, data.labels, data.corpus, data.speaker, fit_head_for(recipe), weighting=recipe.weighting,
        speaker_norm=recipe.train_norm == "speaker")

    def fitted(results):
        logits = np.concatenate([r["logits"] for r in results.values()])
        labels = np.concatenate([r["labels"] for r in results.values()])
        logits = np.where(np.isfinite(logits), logits, -1e4)
        t = fit_temperature(logits, labels)
        return t, choose_threshold(softmax(logits, t), labels)

    (t, cut), (ta, cut_a) = fitted(strict), fitted(enrolled)
    block = calibrate_sets(strict, enrolled, temperature=t, temperature_adapted=ta, answered_threshold=cut,
                           answered_threshold_adapted=cut_a)
    print(f"temperature {t:.3f} (adapted {ta:.3f}); old 'uncertain' cut-off {cut} (adapted {cut_a}); chosen: {block['rule']}")
    for protocol, runs in block["held_out"].items():
        print(f"\n== {protocol}, 90 % setting (each corpus left out of the head and the calibration)")
        print(f"{'method':10} {'corpus':8} {'clips':>6} {'cover':>6} {'size':>5} {'single':>7} {'right':>6} "
              f"{'top1':>6} {'answd':>6} {'right':>6}")
        for method, figures in runs.items():
            for corpus, r in {**figures, "mean": block["held_out_mean"][protocol][method]}.items():
                pct = lambda v: "   -  " if v is None else f"{100 * v:5.1f}%"  # noqa: E731
                print(f"{method:10} {corpus:8} {r.get('clips', ''):>6} {pct(r['coverage'])} {r['mean_set_size']:5.2f} "
                      f"{pct(r['single_rate'])} {pct(r['single_accuracy'])} {pct(r.get('top_accuracy'))} "
                      f"{pct(r.get('answered_rate'))} {pct(r.get('answered_accuracy'))}")
    for protocol, settings in block["held_out_coverages"].items():
        print(f"\n== {protocol}, {block['method']} at each setting")
        for setting, figures in settings.items():
            print(setting, " ".join(f"{c}: cover {r['coverage']:.3f} size {r['mean_set_size']:.2f} single "
                                     f"{r['single_rate']:.3f}" for c, r in figures.items()))
    if args.json:
        args.json.write_text(json.dumps(block, indent=1))


if __name__ == "__main__":
    main()
