"""Heads on pooled Whisper embeddings: logistic regression and a small Keras network.

Each builder returns a ``FitHead`` (``ser_core.evaluation.embedding_protocols``):
``fit(features, labels, sample_weight) -> predict_logits``, where ``features`` are standardised
``embedding.head_input`` rows. ``fit_keras_head`` also returns the Keras model itself for shipping.
"""

from __future__ import annotations

import hashlib
from typing import Callable

import numpy as np

from ser_core.inference.linear_head import LinearHead
from ser_core.inference.params import EMOTIONS

__all__ = ["build_layer_mix_head", "fit_keras_head", "keras_head", "logistic_head", "reusing_fits", "ridge_head"]

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

    def fit_or_reuse(features: np.ndarray, labels: np.ndarray, sample_weight: np.ndarray) -> PredictLogits:
        digest = hashlib.sha1()
        for values in (features, labels, sample_weight):
            digest.update(str(np.asarray(values).dtype).encode())
            digest.update(np.ascontiguousarray(values).tobytes())
        key = digest.hexdigest()
        if key not in fitted:
            fitted[key] = fit(features, labels, sample_weight)
        return fitted[key]

    return fit_or_reuse


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
