"""Does the int8 encoder move the protocol? The shipped recipe's leave-one-corpus-out UAR, float32 against int8.

    python -m benchmarks.whisper_int8_protocol [--workers 2] [--float32-folder DIR] [--int8-folder DIR]

Embeds the four shared corpora with ``EmbeddingParams(encoder_precision="int8")`` (all six blocks,
int8 onnxruntime graph) into ``--int8-folder`` and reads their float32 embeddings from
``--float32-folder`` (default: the cache folder of the default front end; computed there if
missing), one ``.npy`` per clip under the same file key as ``ser_core.data.embedding_cache``.
Explicit folders, because the cache's own key changes with every edit of the front-end source.
Then runs ``training.whisper_run.loco_report`` with :data:`SHIPPED_RECIPE` three ways: all float32,
all int8 (a model trained and served in int8), and a float32 head tested on int8 embeddings of the
held-out corpus (the shipped head served in int8 without retraining). Prints one JSON line each.
``--protocols cv`` runs the second protocol instead (or as well): the RAVDESS speaker 5-fold
cross-validation with every other corpus in training, the same three ways.
"""

from __future__ import annotations

import argparse
import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ser_core.data import registry
from ser_core.data.corpora import Clip
from ser_core.data.embedding_cache import EmbeddingSet, _file_key, front_end_key
from ser_core.data.split import cross_validation_folds
from ser_core.evaluation import embedding_protocols as protocols
from ser_core.evaluation.metrics import classification_report
from ser_core.inference import artifacts
from ser_core.inference.audio import load_audio
from ser_core.inference.embedding import embed_waveform
from ser_core.inference.embedding_head import head_input
from ser_core.inference.params import EMOTIONS, EmbeddingParams
from ser_core.inference.whisper_front import front_end_encoder
from ser_core.training.embedding_model import SHIPPED_RECIPE, fit_head_for
from ser_core.training.whisper_run import _figures, loco_report

CORPORA = ("ravdess", "tess", "nemo", "turev")


def _one(job: tuple[str, EmbeddingParams, str]) -> np.ndarray | None:
    path, params, folder = job
    cached = Path(folder) / f"{_file_key(path)}.npy"
    if cached.is_file():
        return np.load(cached, allow_pickle=False)
    try:
        pooled = embed_waveform(load_audio(path, params.sample_rate), params,
                                encoder=front_end_encoder(params)).pooled
    except Exception as error:  # noqa: BLE001 - reported, the clip left out of both sets
        print(f"no embedding for {path}: {error}")
        return None
    artifacts.save_array(cached, pooled)
    return pooled


def _one_thread() -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


def embed(paths: list[str], params: EmbeddingParams, folder: Path, workers: int) -> list[np.ndarray | None]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "front_end.json").write_text(json.dumps({"params": params.to_dict()}, indent=1))
    jobs = [(path, params, str(folder)) for path in paths]
    with ProcessPoolExecutor(workers, initializer=_one_thread) as pool:
        return list(tqdm(pool.map(_one, jobs, chunksize=16), total=len(jobs), desc=params.encoder_precision))


def loco(sets: dict[str, EmbeddingSet]) -> None:
    """Leave one corpus out, strict and adapted: float32, int8, float32 head on int8 held-out rows."""
    recipe = SHIPPED_RECIPE
    rows = {}
    for name, data in sets.items():
        report = loco_report(data, recipe, f"shipped recipe, {name} encoder")
        rows[name] = {"encoder": name, "mean": report["mean"],
                      "uar": {c: {p: r[p]["uar"] for p in ("strict", "adapted")} for c, r in report["corpora"].items()}}
    # The float32 head, held-out corpus embedded in int8: per held-out corpus, its rows swapped.
    data, other = sets["float32"], sets["int8"]
    features = head_input(data.embeddings, recipe.layers, recipe.statistics)
    swapped = head_input(other.embeddings, recipe.layers, recipe.statistics)
    mixed: dict[str, dict[str, float]] = {}
    for held_out in sorted(np.unique(data.corpus)):
        rows_in = features.copy()
        rows_in[data.corpus == held_out] = swapped[data.corpus == held_out]
        for protocol, normalisation in (("strict", "per_corpus"), ("adapted", "adapted")):
            result = protocols.leave_one_corpus_out(rows_in, data.labels, data.corpus, fit_head_for(recipe, 0),
                                                    normalisation=normalisation, weighting=recipe.weighting,
                                                    speakers=data.speaker, test_only=[held_out])
            mixed.setdefault(held_out, {})[protocol] = _figures(result[held_out])["uar"]
    rows["float32 head, int8 test"] = {
        "encoder": "float32 train, int8 held-out",
        "mean": {f"{p}_uar": round(float(np.mean([m[p] for m in mixed.values()])), 4) for p in ("strict", "adapted")},
        "uar": mixed}
    for name, row in rows.items():
        print(json.dumps({"clips": len(data), **row}))
    base = rows["float32"]["mean"]
    for name in ("int8", "float32 head, int8 test"):
        delta = {p: round(100 * (rows[name]["mean"][f"{p}_uar"] - base[f"{p}_uar"]), 2) for p in ("strict", "adapted")}
        print(f"{name}: mean UAR change against float32, points: {delta}")


def ravdess_cv(sets: dict[str, EmbeddingSet]) -> None:
    """RAVDESS speaker 5-fold CV (every other corpus trains too): float32, int8, float32 head on int8 test rows."""
    recipe = SHIPPED_RECIPE
    data = sets["float32"]
    ravdess = data.corpus == "ravdess"
    clips = [Clip(p, "ravdess", s, g or None, "neutral")
             for p, s, g in zip(data.path[ravdess], data.speaker[ravdess], data.gender[ravdess])]
    folds = cross_validation_folds(clips, n_folds=5, seed=0)
    features = {name: head_input(sets[name].embeddings, recipe.layers, recipe.statistics) for name in sets}
    runs = {}
    for name in ("float32", "int8"):
        runs[name] = protocols.speaker_cross_validation(features[name], data.labels, data.corpus, data.speaker, folds,
                                                        fit_head_for(recipe, 0), weighting=recipe.weighting)
    logits, rows = [], []
    for fold in folds:
        test = np.isin(data.speaker, fold)
        mixed = features["float32"].copy()
        mixed[test] = features["int8"][test]
        result = protocols.speaker_cross_validation(mixed, data.labels, data.corpus, data.speaker, [fold],
                                                    fit_head_for(recipe, 0), weighting=recipe.weighting)
        logits.append(result["logits"])
        rows.append(result["rows"])
    rows_all = np.concatenate(rows)
    runs["float32 head, int8 test"] = classification_report(data.labels[rows_all],
                                                                      np.concatenate(logits).argmax(axis=1))
    for name, result in runs.items():
        print(json.dumps({"protocol": "ravdess_cv5", "encoder": name, "uar": round(float(result["uar"]), 4),
                          "accuracy": round(float(result["accuracy"]), 4)}))
    for name in ("int8", "float32 head, int8 test"):
        print(f"ravdess_cv5 {name}: UAR change against float32, points: "
              f"{round(100 * (runs[name]['uar'] - runs['float32']['uar']), 2)}, accuracy: "
              f"{round(100 * (runs[name]['accuracy'] - runs['float32']['accuracy']), 2)}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--cache-dir", type=Path, default=Path("data_cache/embeddings"))
    parser.add_argument("--float32-folder", type=Path, default=None,
                        help="default: the cache folder of EmbeddingParams() under the current front-end code")
    parser.add_argument("--int8-folder", type=Path, default=None,
                        help="default: <cache-dir>/int8-screen (kept out of the hashed folders)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--protocols", default="loco", help="comma-separated: loco, cv")
    args = parser.parse_args()
    chosen = set(args.protocols.split(","))
    float32 = EmbeddingParams()
    int8 = EmbeddingParams(encoder_precision="int8")
    clips, _ = registry.gather_corpora({name: args.data_root / name for name in CORPORA}, calm_as="neutral")
    paths = [clip.path for clip in clips]
    folders = {"float32": args.float32_folder or args.cache_dir / front_end_key(float32),
               "int8": args.int8_folder or args.cache_dir / "int8-screen"}
    pooled = {name: embed(paths, params, folders[name], args.workers)
              for name, params in (("float32", float32), ("int8", int8))}
    keep = [i for i in range(len(clips)) if pooled["float32"][i] is not None and pooled["int8"][i] is not None]
    sets = {}
    for name in pooled:
        sets[name] = EmbeddingSet(
            embeddings=np.stack([pooled[name][i] for i in keep]),
            labels=np.array([EMOTIONS.index(clips[i].emotion) for i in keep]),
            corpus=np.array([clips[i].corpus for i in keep]), speaker=np.array([clips[i].speaker for i in keep]),
            gender=np.array([clips[i].gender or "" for i in keep]),
            source_emotion=np.array([clips[i].source_emotion or clips[i].emotion for i in keep]),
            path=np.array([clips[i].path for i in keep]))
    if "loco" in chosen:
        loco(sets)
    if "cv" in chosen:
        ravdess_cv(sets)
    print(f"cpu count {os.cpu_count()}, load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
