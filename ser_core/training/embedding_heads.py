"""Heads on pooled Whisper embeddings: logistic regression and a small Keras network.

Each builder returns a ``FitHead`` (``ser_core.evaluation.embedding_protocols``):
``fit(features, labels, sample_weight) -> predict_logits``, where ``features`` are standardised
``embedding.head_input`` rows. ``fit_keras_head`` also returns the Keras model itself for shipping.
"""

from __future__ import annotations

import hashlib
from typing import Callable

import numpy as np

from ser_core.evaluation.embedding_protocols import average_corpus_statistics
from ser_core.inference.linear_head import LinearHead
from ser_core.inference.params import EMOTIONS

__all__ = ["RIDGE_SCALE", "build_layer_mix_head", "fit_keras_head", "keras_head", "logistic_head", "reusing_fits",
           "ridge_head", "ridge_lr_head"]

PredictLogits = Callable[[np.ndarray], np.ndarray]


def _linear_head(make_model: Callable[[], object]) -> Callable[[np.ndarray, np.ndarray, np.ndarray], PredictLogits]:
    """A scikit-learn linear classifier as a ``FitHead``: its decision function in the six emotion columns.

    Classes absent from a training set keep a logit of -inf, so the six columns keep their meaning.
    """

    def fit(features: np.ndarray, labels: np.ndarray, sample_weight: np.ndarray) -> PredictLogits:
        model = make_model()
        model.fit(features, labels, sample_weight=sample_weight)

        def predict(rows: np.ndarray) -> np.ndarray:
            logits = np.full((len(rows), len(EMOTIONS)), -np.inf)
            logits[:, model.classes_] = model.decision_function(rows)
            return logits

        if len(model.classes_) == len(EMOTIONS):  # the weights, for protocols that re-fit the head (self-training)
            predict.linear = LinearHead(model.coef_.T.astype(np.float32), model.intercept_.astype(np.float32))
        return predict

    return fit


def reusing_fits(fit: Callable[[np.ndarray, np.ndarray, np.ndarray], PredictLogits]
                 ) -> Callable[[np.ndarray, np.ndarray, np.ndarray], PredictLogits]:
    """``fit`` that trains once per distinct training set and hands back that head on a repeat.

    Training's protocols (strict, enrolled with random and with calm clips, the batch ones) hold out
    the same corpora with the same standardised training rows: each held-out fold's head is fitted
    once instead of once per protocol. The key is a digest of the rows, labels and weights.
    """
    fitted: dict[str, PredictLogits] = {}

    def fit_or_reuse(features: np.ndarray, labels: np.ndarray, sample_weight: np.ndarray,
                     **context: np.ndarray) -> PredictLogits:
        key = _digest(features, labels, sample_weight, *context.values())
        if key not in fitted:
            fitted[key] = fit(features, labels, sample_weight, **context)
        return fitted[key]

    fit_or_reuse.reads_raw_rows = getattr(fit, "reads_raw_rows", False)
    return fit_or_reuse


def _digest(*arrays: np.ndarray) -> str:
    digest = hashlib.sha1()
    for values in arrays:
        digest.update(str(np.asarray(values).dtype).encode())
        digest.update(np.ascontiguousarray(values).tobytes())
    return digest.hexdigest()


def logistic_head(C: float = 0.1, max_iter: int = 500) -> Callable[[np.ndarray, np.ndarray, np.ndarray], PredictLogits]:
    """Multinomial logistic regression (scikit-learn, L2 penalty ``1 / C``) over all six emotions."""
    from sklearn.linear_model import LogisticRegression

    return _linear_head(lambda: LogisticRegression(C=C, max_iter=max_iter))


def ridge_head(alpha: float = 3000.0) -> Callable[[np.ndarray, np.ndarray, np.ndarray], PredictLogits]:
    """One-vs-rest least squares on +-1 targets (scikit-learn ``RidgeClassifier``, L2 strength ``alpha``).

    Its scores are not log-probabilities: a temperature fitted on them is not comparable with the
    logistic head's. Screened in docs/experiments.md (issue 14, rows W83 on).
    """
    from sklearn.linear_model import RidgeClassifier

    return _linear_head(lambda: RidgeClassifier(alpha=alpha))


# The ridge's scores sit on its +-1 targets, a logistic regression's logits on a scale about twice as wide
# (the ridge's own fitted temperature is about 0.5): the logistic member is halved to the ridge's scale.
RIDGE_SCALE = 0.5
_LOGISTIC_FITS: dict[str, object] = {}  # the logistic member by its training rows: protocols share folds


def ridge_lr_head(alpha: float = 10000.0, C: float = 0.1, lr_weight: float = 0.2
                  ) -> Callable[..., PredictLogits]:
    """A ridge on the per-speaker rows plus a logistic regression on globally standardised rows, as one
    linear head.

    The two err differently (docs/experiments.md, issue 21, rows D22-D29): the ridge, trained on each
    speaker standardised on their own clips, generalises to new rooms; the logistic regression, trained
    on all rows standardised together, keeps what tells speakers apart and does better on new speakers
    of known rooms. Both are linear in the raw features, so their weighted sum of scores

        (1 - lr_weight) * ridge(z) + lr_weight * RIDGE_SCALE * logistic(back(z)),
        back(z) = (z * default_std + default_mean - pooled_mean) / pooled_std,

    is one linear head over the rows ``z`` the app standardises (with the training corpora's average
    statistics for a new room, or a user's own once they adapt). It is served as the ridge is.

    The returned ``fit`` reads the raw training rows and their corpora as well (``reads_raw_rows``):
    the protocols pass them (``embedding_protocols._fit_on``).
    """
    if not 0 <= lr_weight <= 1:
        raise ValueError(f"lr_weight must be in [0, 1], got {lr_weight}")
    from sklearn.linear_model import LogisticRegression, RidgeClassifier

    def fit(features: np.ndarray, labels: np.ndarray, sample_weight: np.ndarray, *, raw: np.ndarray,
            corpus: np.ndarray) -> PredictLogits:
        ridge = RidgeClassifier(alpha=alpha).fit(features, labels, sample_weight=sample_weight)
        raw = np.asarray(raw, np.float64)
        pooled_mean, pooled_std = raw.mean(axis=0), raw.std(axis=0) + 1e-6
        default_mean, default_std = average_corpus_statistics(raw, corpus)
        key = _digest(raw, labels, sample_weight, np.array([C]))
        if key not in _LOGISTIC_FITS:
            rows = ((raw - pooled_mean) / pooled_std).astype(np.float32)
            _LOGISTIC_FITS[key] = LogisticRegression(C=C, max_iter=500).fit(rows, labels, sample_weight=sample_weight)
            if len(_LOGISTIC_FITS) > 64:
                _LOGISTIC_FITS.pop(next(iter(_LOGISTIC_FITS)))
        logistic = _LOGISTIC_FITS[key]
        # logistic(back(z)) = z @ (W * default_std / pooled_std) + b + ((default_mean - pooled_mean) / pooled_std) @ W
        w_logistic = logistic.coef_.T * (default_std / pooled_std)[:, None]
        b_logistic = logistic.intercept_ + ((default_mean - pooled_mean) / pooled_std) @ logistic.coef_.T
        # Both members learnt the same classes (the same labels); an emotion absent from training is never named
        classes = ridge.classes_
        kernel = np.zeros((features.shape[1], len(EMOTIONS)))
        bias = np.full(len(EMOTIONS), -1e4)
        kernel[:, classes] = (1 - lr_weight) * ridge.coef_.T + lr_weight * RIDGE_SCALE * w_logistic
        bias[classes] = (1 - lr_weight) * ridge.intercept_ + lr_weight * RIDGE_SCALE * b_logistic

        def predict(rows: np.ndarray) -> np.ndarray:
            return np.asarray(rows, np.float64) @ kernel + bias

        if len(classes) == len(EMOTIONS):  # the weights, for protocols that re-fit the head (self-training)
            predict.linear = LinearHead(kernel.astype(np.float32), bias.astype(np.float32))
        return predict

    fit.reads_raw_rows = True
    return fit


def build_layer_mix_head(n_layers: int, width: int, *, hidden: int = 256, dropout: float = 0.3,
                         n_classes: int = len(EMOTIONS)):
    """Keras head: a learned non-negative mix of the layers, dropout, one dense layer, softmax logits.

    Input ``features`` ``(n_layers * width,)`` (standardised ``head_input`` of ``n_layers`` layers);
    output ``logits`` ``(n_classes,)``. Built-in layers only, so it loads with ``safe_mode=True``.
    """
    import keras
    from keras import layers

    inputs = keras.Input((n_layers * width,), name="features")
    x = layers.Reshape((n_layers, width))(inputs)
    x = layers.Permute((2, 1))(x)  # (width, n_layers): the Dense below mixes layers, shared over dims
    x = layers.Dense(1, use_bias=False, kernel_initializer=keras.initializers.Constant(1.0 / n_layers),
                     kernel_constraint=keras.constraints.NonNeg(), name="layer_mix")(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(dropout)(x)
    x = layers.Dense(hidden, activation="relu", name="dense")(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(n_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="whisper_layer_mix_head")


def fit_keras_head(features: np.ndarray, labels: np.ndarray, sample_weight: np.ndarray, *, n_layers: int,
                   epochs: int = 40, hidden: int = 256, dropout: float = 0.3, learning_rate: float = 1e-3,
                   weight_decay: float = 1e-2, seed: int = 0):
    """Train :func:`build_layer_mix_head` with AdamW and return the model (logits out)."""
    import keras

    keras.utils.set_random_seed(seed)
    width = features.shape[1] // n_layers
    model = build_layer_mix_head(n_layers, width, hidden=hidden, dropout=dropout)
    model.compile(optimizer=keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(features.astype(np.float32), labels, sample_weight=sample_weight.astype(np.float32),
              epochs=epochs, batch_size=64, verbose=0, shuffle=True)
    return model


def keras_head(n_layers: int, **options) -> Callable[[np.ndarray, np.ndarray, np.ndarray], PredictLogits]:
    """:func:`fit_keras_head` as a ``FitHead`` for the evaluation protocols."""

    def fit(features: np.ndarray, labels: np.ndarray, sample_weight: np.ndarray) -> PredictLogits:
        model = fit_keras_head(features, labels, sample_weight, n_layers=n_layers, **options)
        return lambda rows: np.asarray(model.predict(rows.astype(np.float32), batch_size=256, verbose=0), np.float64)

    return fit
