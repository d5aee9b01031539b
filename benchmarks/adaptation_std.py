"""Adaptation from k random clips of one speaker: which scale to standardise with (ser_core.inference.adaptation).

    python -m benchmarks.adaptation_std [--data-root ../shared/data]   # a few minutes from the cached embeddings

Leave one corpus out with the shipped recipe (``SHIPPED_RECIPE``: blocks 1-4 frame means, ridge head,
each training speaker standardised on their own clips), scored as the app adapts
(``embedding_protocols.leave_one_corpus_out_enrolled``: every held-out speaker gives k random clips,
twice; their other clips are standardised with ``Adaptation.statistics``). The clips' variance is
pooled with the model's default variance weighted as n0 clips (``adaptation.PRIOR_CLIPS``, 10 in
the app); n0 ~ 0 is the clips' own std, n0 = inf the default std (their mean only). Then, with that
at 10, the clips' mean pooled with the default mean as n0 clips (``adaptation.PRIOR_CLIPS_MEAN``, 2
in the app). Prints the mean UAR over the four held-out corpora for each n0 and k
(docs/experiments.md, W121, W189, W195).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from benchmarks.whisper_screen import load_set
from ser_core.evaluation import embedding_protocols as protocols
from ser_core.evaluation.metrics import classification_report
from ser_core.inference import adaptation
from ser_core.inference.embedding_head import head_input
from ser_core.training.embedding_model import SHIPPED_RECIPE, fit_head_for

PRIORS = {"~0 (own std)": 1e-9, "3": 3.0, "10 (shipped)": 10.0, "30": 30.0, "inf (mean only)": 1e12}
MEAN_PRIORS = {"0 (own mean)": 0.0, "2 (shipped)": 2.0, "5": 5.0, "10": 10.0, "20": 20.0}
K_VALUES = (3, 5, 10, 20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    args = parser.parse_args()
    data, _ = load_set(args.data_root)
    features = head_input(data.embeddings, SHIPPED_RECIPE.layers, SHIPPED_RECIPE.statistics)
    shipped = adaptation.PRIOR_CLIPS, adaptation.PRIOR_CLIPS_MEAN
    try:
        for title, setting, priors in (("n0 of the variance (mean prior as shipped)", "PRIOR_CLIPS", PRIORS),
                                       ("n0 of the mean (variance prior as shipped)", "PRIOR_CLIPS_MEAN", MEAN_PRIORS)):
            print(f"\n{title}\n{'n0':18s}" + "".join(f"{f'k = {k}':>9s}" for k in K_VALUES))
            for name, prior in priors.items():
                adaptation.PRIOR_CLIPS, adaptation.PRIOR_CLIPS_MEAN = shipped
                setattr(adaptation, setting, prior)  # read by Adaptation.statistics at call time
                _, enrolled = protocols.leave_one_corpus_out_enrolled(
                    features, data.labels, data.corpus, data.speaker, fit_head_for(SHIPPED_RECIPE, 0),
                    k_values=K_VALUES, weighting=SHIPPED_RECIPE.weighting,
                    speaker_norm=SHIPPED_RECIPE.train_norm == "speaker")
                by_k = [np.mean([classification_report(r["labels"][r["k"] == k], r["logits"][r["k"] == k].argmax(axis=1))
                                 ["uar"] for r in enrolled.values()]) for k in K_VALUES]
                print(f"{name:18s}" + "".join(f"{100 * uar:9.1f}" for uar in by_k))
    finally:
        adaptation.PRIOR_CLIPS, adaptation.PRIOR_CLIPS_MEAN = shipped


if __name__ == "__main__":
    main()
