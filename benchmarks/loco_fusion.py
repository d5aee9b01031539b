"""The log-mel CNN against the shipped Whisper head on corpora they never heard, alone and fused.

    python train.py --front-end log_mel --data ravdess=... tess=... nemo=... turev=... --calm-as neutral \
        --cv corpus --members cosine+ema:acoustic_vtlp@last --pool-validation --epochs 60 --run-dir runs/loco_cnn_lite
    python -m benchmarks.loco_fusion --oof runs/loco_cnn_lite/oof_loco_ser_cnn_lite.json

Both are scored leave-one-corpus-out: the CNN's out-of-fold window logits come from the run above
(each corpus held out by a CNN trained on the other three); the shipped head (``SHIPPED_RECIPE``)
is refitted here the same way from the cached embeddings, strict and with every held-out speaker
adapted as in the app (``leave_one_corpus_out_enrolled``). Each model's scores become probabilities
with a temperature fitted on its own pooled held-out scores (as ``train.py`` fits the shipped one),
and the fusion adds their log-probabilities, weight ``w`` on the Whisper head. The CNN has no
adaptation: in the adapted rows it scores the clips as they are.

Prints the mean UAR over the held-out corpora and each corpus's UAR, per weight.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from ser_core.data import registry
from ser_core.data.embedding_cache import DEFAULT_EMBEDDING_CACHE, clip_embeddings
from ser_core.evaluation import embedding_protocols as protocols
from ser_core.evaluation.metrics import classification_report, fit_temperature
from ser_core.inference.embedding_head import head_input
from ser_core.inference.params import EMOTIONS, EmbeddingParams
from ser_core.inference.scoring import clip_probabilities, softmax
from ser_core.training.embedding_model import SHIPPED_RECIPE, fit_head_for

CORPORA = ("ravdess", "tess", "nemo", "turev")


def cnn_clip_probabilities(oof_path: Path) -> dict[str, np.ndarray]:
    """File name -> the CNN's clip probabilities (window probabilities averaged, as the predictor does),
    at one temperature fitted on all held-out windows."""
    folds = json.loads(oof_path.read_text())["folds"]
    logits, labels = [], []
    for fold in folds:
        clean = fold["test"]["conditions"]["clean"]
        logits.append(np.asarray(clean["logits"]))
        labels.append(np.asarray(fold["test"]["labels"])[np.asarray(clean["clip_index"])])
    temperature = fit_temperature(np.concatenate(logits), np.concatenate(labels))
    print(f"CNN: {sum(len(f['test']['clips']) for f in folds)} held-out clips, T = {temperature:.2f}")
    probabilities = {}
    for fold, window_logits in zip(folds, logits):
        clean = fold["test"]["conditions"]["clean"]
        scored = clip_probabilities(window_logits, np.asarray(clean["clip_index"]), temperature)
        probabilities.update(zip(fold["test"]["clips"], scored))
    return probabilities


def fused(results: dict[str, dict[str, Any]], names: np.ndarray, cnn: dict[str, np.ndarray], temperature: float,
          weight: float) -> dict[str, dict[str, Any]]:
    """Each held-out corpus's report with ``weight`` * log p(Whisper) + (1 - weight) * log p(CNN)."""
    out = {}
    for corpus, result in results.items():
        whisper = softmax(result["logits"], temperature)
        cnn_rows = np.stack([cnn[name] for name in names[result["rows"]]])
        scores = weight * np.log(whisper + 1e-9) + (1 - weight) * np.log(cnn_rows + 1e-9)
        out[corpus] = classification_report(result["labels"], scores.argmax(axis=1))
    return out


def line(label: str, results: dict[str, dict[str, Any]]) -> str:
    weak = sum(1 for r in results.values() for v in r["per_class"].values() if v["support"] and v["recall"] < 0.5)
    per_corpus = " ".join(f"{name} {r['uar']:.1%}" for name, r in sorted(results.items()))
    return (f"{label:28s} UAR {np.mean([r['uar'] for r in results.values()]):.1%} | {per_corpus} | "
            f"recalls < 50 %: {weak}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--oof", type=Path, default=Path("runs/loco_cnn_lite/oof_loco_ser_cnn_lite.json"))
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--weights", default="1,0,0.5,0.67,0.8", help="weights on the Whisper head to print")
    args = parser.parse_args()
    cnn = cnn_clip_probabilities(args.oof)
    clips, _ = registry.gather_corpora({name: args.data_root / name for name in CORPORA},
                                       calm_as=SHIPPED_RECIPE.calm_as)
    data = clip_embeddings(clips, EmbeddingParams(), cache_dir=DEFAULT_EMBEDDING_CACHE, workers=2)
    names = np.array([Path(path).name for path in data.path])
    missing = [name for name in names if name not in cnn]
    if missing:
        raise SystemExit(f"{len(missing)} clips have no CNN score (e.g. {missing[:3]}): "
                         "was the CNN run on these corpora?")
    features = head_input(data.embeddings, SHIPPED_RECIPE.layers, SHIPPED_RECIPE.statistics)
    strict, enrolled = protocols.leave_one_corpus_out_enrolled(
        features, data.labels, data.corpus, data.speaker, fit_head_for(SHIPPED_RECIPE, 0),
        weighting=SHIPPED_RECIPE.weighting, speaker_norm=SHIPPED_RECIPE.train_norm == "speaker")
    for protocol, results in (("strict", strict), ("adapted", enrolled)):
        temperature = fit_temperature(np.concatenate([r["logits"] for r in results.values()]),
                                      np.concatenate([r["labels"] for r in results.values()]))
        print(f"\n{protocol} (Whisper head T = {temperature:.2f}; adapted: 5, 10, 20 clips of each speaker, twice)")
        for weight in (float(w) for w in args.weights.split(",")):
            label = {1.0: "Whisper head alone", 0.0: "CNN alone"}.get(weight, f"fused, w = {weight:g}")
            print(line(label, fused(results, names, cnn, temperature, weight)))
    cnn_alone = fused(strict, names, cnn, 1.0, 0.0)
    print("\nCNN recall per emotion (%):")
    for name, result in sorted(cnn_alone.items()):
        recalls = {e: round(100 * v["recall"]) for e, v in result["per_class"].items() if v["support"]}
        print(f"  {name:8s} " + " ".join(f"{e} {recalls[e]}" for e in EMOTIONS if e in recalls))


if __name__ == "__main__":
    main()
