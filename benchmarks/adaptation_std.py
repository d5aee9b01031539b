"""Adaptation from k random clips of one speaker: which scale to standardise with (ser_core.inference.adaptation).

    python -m benchmarks.adaptation_std      # about 1 min from the cached embeddings

Leave one corpus out with the shipped recipe (layers 1-4, frame means, logistic regression, each
training corpus standardised with its own statistics). In the held-out corpus every speaker gives k
random clips (twice, different draws); their other clips are scored with the default statistics
(strict), the k clips' mean and the default scale (mean_only), their own std (own_std), or their
variance pooled with the default's weighted as n0 clips (n0_10, n0_30). Prints the mean UAR.
"""
import numpy as np
from pathlib import Path
from sklearn.linear_model import LogisticRegression
from ser_core.data import registry
from ser_core.data.embedding_cache import clip_embeddings
from ser_core.inference.embedding_head import head_input
from ser_core.evaluation import embedding_protocols as P
from ser_core.evaluation.metrics import classification_report
root = Path("../shared/data")
clips, _ = registry.gather_corpora({n: root / n for n in ("ravdess", "tess", "nemo", "turev")}, calm_as="neutral")
data = clip_embeddings(clips, cache_dir="data_cache/embeddings")
X = head_input(data.embeddings, (1, 2, 3, 4), "mean").astype(np.float64)
y, c, s = data.labels, data.corpus, data.speaker
rng = np.random.default_rng(0)
res = {}
for held in sorted(np.unique(c)):
    test = c == held; train = ~test
    Z = P.standardise_groups(X[train], c[train])
    m = LogisticRegression(C=0.1, max_iter=500).fit(Z, y[train], sample_weight=P.sample_weights(y[train], c[train]))
    stats = [(X[c == k].mean(0), X[c == k].std(0) + 1e-6) for k in np.unique(c[train])]
    dm, ds = np.mean([a for a, _ in stats], 0), np.mean([b for _, b in stats], 0)
    for k in (3, 5, 10, 20):
        preds = {v: [] for v in ("strict", "mean_only", "own_std", "n0_10", "n0_30")}; labels = []
        for spk in np.unique(s[test]):
            rows = np.flatnonzero(test & (s == spk))
            for rep in range(2):
                enrol = rng.choice(rows, size=min(k, len(rows) - 1), replace=False)
                scored = np.setdiff1d(rows, enrol)
                um, uv = X[enrol].mean(0), X[enrol].var(0)
                n = len(enrol)
                variants = {"strict": (dm, ds), "mean_only": (um, ds), "own_std": (um, np.sqrt(uv) + 1e-6)}
                for n0 in (10, 30):
                    variants[f"n0_{n0}"] = (um, np.sqrt((n * uv + n0 * ds ** 2) / (n + n0)))
                for v, (mu, sd) in variants.items():
                    preds[v].append(m.predict((X[scored] - mu) / sd))
                labels.append(y[scored])
        L = np.concatenate(labels)
        for v, p in preds.items():
            res.setdefault((k, v), {})[held] = classification_report(L, np.concatenate(p))["uar"]
    print(held, "done", flush=True)
for (k, v), per in sorted(res.items()):
    print(f"k={k:2d} {v:10s} mean UAR {np.mean(list(per.values())):.3f} " + " ".join(f"{h}={u:.3f}" for h, u in per.items()))
