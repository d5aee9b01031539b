"""Train and save the embedding model on the four shared corpora, timed: what train.py will do.

    python -m benchmarks.whisper_train --out data_cache/whisper_model [--layers 1,2,3,4 --stats mean]

Writes ``head.keras`` and ``config.json`` (see ``train_embedding_model``) to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ser_core.data import registry
from ser_core.data.embedding_cache import DEFAULT_EMBEDDING_CACHE, clip_embeddings
from ser_core.inference.params import EmbeddingParams
from ser_core.training.embedding_model import EmbeddingRecipe, train_embedding_model


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("data_cache/whisper_model"))
    parser.add_argument("--layers", default="1,2,3,4")
    parser.add_argument("--stats", default="mean")
    parser.add_argument("--C", type=float, default=0.1)
    parser.add_argument("--calm-as", default="neutral")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    start = time.perf_counter()
    recipe = EmbeddingRecipe(layers=tuple(int(v) for v in args.layers.split(",")), statistics=args.stats, C=args.C,
                             calm_as=args.calm_as)
    params = EmbeddingParams()
    clips, _ = registry.gather_corpora({name: args.data_root / name for name in ("ravdess", "tess", "nemo", "turev")},
                                       calm_as=args.calm_as)
    data = clip_embeddings(clips, params, cache_dir=DEFAULT_EMBEDDING_CACHE, workers=args.workers)
    features_s = time.perf_counter() - start
    model, config = train_embedding_model(data, recipe, params)
    args.out.mkdir(parents=True, exist_ok=True)
    model.save(args.out / "head.keras")
    (args.out / "config.json").write_text(json.dumps(config, indent=1))
    total = time.perf_counter() - start
    print(f"{len(data)} clips; features {features_s:.0f} s, training {total - features_s:.0f} s; T = {config['temperature']:.2f}; "
          f"head {(args.out / 'head.keras').stat().st_size / 1e3:.0f} kB; LOCO strict {config['loco']['uar']}")


if __name__ == "__main__":
    main()
