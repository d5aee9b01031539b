"""Self-training on a held-out corpus's own answers, leave one corpus out (docs/experiments.md).

    python -m benchmarks.self_training [--data-root ../shared/data]

The shipped recipe (blocks 1-4 frame means, ridge head, every training speaker standardised) holds
out each corpus in turn. Printed: UAR per held-out corpus and their mean, for the held-out clips
standardised with the training corpora's average (strict), with the corpus's own statistics
(adapted), with each speaker's own statistics (adapted per speaker), each of the adapted ones
with and without one round of ``inference.self_training.self_train``; then the same on
held-out material with only neutral and sad speech, where the batch lacks the other emotions. Reads
the embedding cache (``train.py`` or ``benchmarks.embedding_extraction`` fills it); about 20 s on
two cores.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from benchmarks.whisper_screen import load_set
from ser_core.evaluation import embedding_protocols as protocols
from ser_core.inference.embedding_head import head_input
from ser_core.inference.params import EMOTIONS
from ser_core.training.embedding_heads import reusing_fits, ridge_head
from ser_core.training.embedding_model import SHIPPED_RECIPE

ROWS = (("strict", "per_corpus", False), ("adapted", "adapted", False), ("adapted + self-trained", "adapted", True),
        ("adapted per speaker", "adapted_speaker", False),
        ("adapted per speaker + self-trained", "adapted_speaker", True))


FIT = reusing_fits(ridge_head(alpha=SHIPPED_RECIPE.alpha))  # every row holds out the same folds: one head each


def held_out_results(features, labels, corpus, speaker, normalisation, self_train, only=None):
    """Every corpus held out in turn; ``only``: the held-out clips kept (a bool mask), training untouched."""
    results = {}
    for held_out in sorted(np.unique(corpus)):
        keep = (corpus != held_out) | (only if only is not None else True)
        results.update(protocols.leave_one_corpus_out(
            features[keep], labels[keep], corpus[keep], FIT,
            normalisation=normalisation, speakers=speaker[keep], self_train=self_train, test_only=[held_out]))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    args = parser.parse_args()
    data, _ = load_set(args.data_root)
    features = head_input(data.embeddings, SHIPPED_RECIPE.layers, SHIPPED_RECIPE.statistics).astype(np.float64)
    neutral_and_sad = np.isin(data.labels, [EMOTIONS.index("neutral"), EMOTIONS.index("sad")])
    for material, only in (("all clips", None), ("neutral and sad clips only", neutral_and_sad)):
        print(f"\nheld-out material: {material}")
        for name, normalisation, self_train in ROWS:
            start = time.perf_counter()
            results = held_out_results(features, data.labels, data.corpus, data.speaker, normalisation, self_train, only)
            summary = protocols.summarise(results)
            per_corpus = " ".join(f"{c} {r['uar'] * 100:.1f}" for c, r in sorted(results.items()))
            print(f"  {name:36s} mean UAR {summary['mean_uar'] * 100:.1f} %  ({per_corpus}); "
                  f"{len(summary['recall_below_50'])} emotion recalls under 50 %; {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
