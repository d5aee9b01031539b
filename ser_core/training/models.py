"""The CNN architectures, written with built-in Keras layers only so ``safe_mode`` loading works."""

from __future__ import annotations

from typing import Callable

import keras
from keras import layers


def vgg_baseline(input_shape: tuple[int, int, int], n_classes: int) -> keras.Model:
    """The reference notebook's VGG-like CNN (about 58% on unseen speakers), kept as the baseline."""
    inputs = keras.Input(shape=input_shape, name="log_mel")
    x = inputs
    for filters, n_convs, dropout in ((32, 2, 0.4), (64, 2, 0.4), (128, 2, 0.4), (256, 1, 0.6)):
        for _ in range(n_convs):
            x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
            x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(2)(x)
        x = layers.Dropout(dropout)(x)
    x = layers.Flatten()(x)
    for units in (256, 128):
        x = layers.Dense(units, activation="relu")(x)
        x = layers.Dropout(0.7)(x)
    logits = layers.Dense(n_classes, dtype="float32", name="logits")(x)
    return keras.Model(inputs, logits, name="vgg_baseline")


def _conv_block(x, filters: int, pool: tuple[int, int] | None, strides: tuple[int, int] = (1, 1),
                pool_first: bool = False):
    x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False)(x)
    # Pooling straight after the convolution normalises and rectifies a quarter of the values. With a
    # positive BatchNorm scale the two orders give the same output (both are monotonic per channel),
    # and on the large early feature maps that saves about 30 % of the training step (measured on CPU).
    if pool and pool_first:
        x = layers.MaxPooling2D(pool)(x)
    # momentum 0.9: with ~25 steps an epoch the default 0.99 leaves inference statistics far behind.
    x = layers.BatchNormalization(momentum=0.9)(x)
    x = layers.Activation("relu")(x)
    if pool and not pool_first:
        x = layers.MaxPooling2D(pool)(x)
    return x


def ser_cnn(input_shape: tuple[int, int, int], n_classes: int, width: int = 24,
            dropout: float = 0.3, band_norm: bool = False, time_stride: int = 1,
            pool_first: bool = False, name: str = "ser_cnn") -> keras.Model:
    """Compact CNN: four conv blocks, frequency kept as features, mean+max pooling over time.

    Per-utterance normalisation up front makes it indifferent to level and channel colour; pooling
    over time instead of flattening keeps the head tiny (no 4 M-weight dense layer) and lets one
    network take any clip length. ``band_norm``: normalise each mel band over time instead (per-utterance
    mean and variance per band, against speaker timbre and channel colour). ``time_stride``: the first
    convolution steps over time by this many frames, dividing the cost of every layer after it.
    ``pool_first``: each block max-pools before its BatchNorm and ReLU instead of after them.
    """
    inputs = keras.Input(shape=input_shape, name="log_mel")
    axes = (2, 3) if band_norm else (1, 2, 3)
    x = layers.LayerNormalization(axis=axes, center=False, scale=False, name="utterance_norm")(inputs)
    x = _conv_block(x, width, (2, 2), strides=(1, time_stride), pool_first=pool_first)
    x = _conv_block(x, width * 2, (2, 2), pool_first=pool_first)
    x = _conv_block(x, width * 4, (2, 2), pool_first=pool_first)
    x = _conv_block(x, width * 6, (2, 1), pool_first=pool_first)
    # [batch, mel, time, channels] -> [batch, time, mel * channels]: the mel position still matters.
    x = layers.Permute((2, 1, 3))(x)
    x = layers.Reshape((x.shape[1], x.shape[2] * x.shape[3]))(x)
    x = layers.Dropout(dropout)(x)
    x = layers.Conv1D(128, 1, activation="relu")(x)
    x = layers.Concatenate()([layers.GlobalAveragePooling1D()(x), layers.GlobalMaxPooling1D()(x)])
    x = layers.Dropout(dropout)(x)
    logits = layers.Dense(n_classes, dtype="float32", name="logits")(x)
    return keras.Model(inputs, logits, name=name)


def ser_cnn_lite(input_shape: tuple[int, int, int], n_classes: int) -> keras.Model:
    """``ser_cnn`` at two thirds of the width (channels 16-32-64-96, 130 k weights), pooling before
    normalising: about 40 % of its training step on CPU, with the full time resolution kept."""
    return ser_cnn(input_shape, n_classes, width=16, pool_first=True, name="ser_cnn_lite")


def ser_cnn_wide(input_shape: tuple[int, int, int], n_classes: int) -> keras.Model:
    """``ser_cnn`` at 4/3 of the width (channels 32-64-128-192, 415 k weights), pooling before
    normalising: more capacity for about the training step of ``ser_cnn``."""
    return ser_cnn(input_shape, n_classes, width=32, pool_first=True, name="ser_cnn_wide")


def ser_cnn_band_norm(input_shape: tuple[int, int, int], n_classes: int) -> keras.Model:
    """``ser_cnn`` with each mel band normalised over time (an experiment: docs/experiments.md)."""
    return ser_cnn(input_shape, n_classes, band_norm=True, name="ser_cnn_band_norm")


def ser_cnn_fast(input_shape: tuple[int, int, int], n_classes: int) -> keras.Model:
    """``ser_cnn`` whose first convolution steps over time by 2 frames (20 ms): half the compute."""
    return ser_cnn(input_shape, n_classes, time_stride=2, name="ser_cnn_fast")


def _utterance_norm(inputs):
    return layers.LayerNormalization(axis=(1, 2, 3), center=False, scale=False, name="utterance_norm")(inputs)


def _pooled_head(x, n_classes: int, dropout: float):
    """[batch, time, features] -> logits: mean and max over time, dropout, one dense layer."""
    x = layers.Concatenate()([layers.GlobalAveragePooling1D()(x), layers.GlobalMaxPooling1D()(x)])
    x = layers.Dropout(dropout)(x)
    return layers.Dense(n_classes, dtype="float32", name="logits")(x)


def ser_tdnn(input_shape: tuple[int, int, int], n_classes: int, channels: int = 128,
             dropout: float = 0.3) -> keras.Model:
    """Time-delay network: the mel bands as channels of 1-D convolutions over time, dilated 1-2-3-4
    (a 230 ms receptive field), then mean+max pooling. A different view from the 2-D CNNs (no
    translation along frequency), meant as a diverse ensemble member."""
    inputs = keras.Input(shape=input_shape, name="log_mel")
    x = _utterance_norm(inputs)
    x = layers.Reshape(input_shape[:2])(x)
    x = layers.Permute((2, 1))(x)  # [batch, time, mel]
    for kernel, dilation in ((5, 1), (3, 2), (3, 3), (3, 4)):
        x = layers.Conv1D(channels, kernel, dilation_rate=dilation, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(momentum=0.9)(x)
        x = layers.Activation("relu")(x)
    x = layers.Dropout(dropout)(x)
    x = layers.Conv1D(2 * channels, 1, activation="relu")(x)
    return keras.Model(inputs, _pooled_head(x, n_classes, dropout), name="ser_tdnn")


def ser_crnn(input_shape: tuple[int, int, int], n_classes: int, width: int = 16, units: int = 64,
             dropout: float = 0.3) -> keras.Model:
    """Three of ``ser_cnn_lite``'s conv blocks (mel 64 -> 4, time / 8), then a bidirectional GRU over
    time, so the order of events in the utterance is modelled rather than only pooled."""
    inputs = keras.Input(shape=input_shape, name="log_mel")
    x = _utterance_norm(inputs)
    x = _conv_block(x, width, (2, 2), pool_first=True)
    x = _conv_block(x, width * 2, (2, 2), pool_first=True)
    x = _conv_block(x, width * 4, (4, 2), pool_first=True)
    x = layers.Permute((2, 1, 3))(x)
    x = layers.Reshape((x.shape[1], x.shape[2] * x.shape[3]))(x)
    x = layers.Dropout(dropout)(x)
    x = layers.Bidirectional(layers.GRU(units, return_sequences=True))(x)
    return keras.Model(inputs, _pooled_head(x, n_classes, dropout), name="ser_crnn")


def without_auxiliary_outputs(model: keras.Model, n_emotions: int) -> keras.Model:
    """``model`` with only the first ``n_emotions`` outputs of its ``logits`` layer (the same weights).

    A network trained with auxiliary classes after the six emotions (``train.py --auxiliary-emotions``)
    keeps everything below its last layer; the rows of the auxiliary classes are dropped, so it
    predicts the six alone. A model with ``n_emotions`` outputs is returned as it is.
    """
    head = model.get_layer("logits")
    if head.units == n_emotions:
        return model
    kernel, bias = head.get_weights()
    emotions_only = layers.Dense(n_emotions, dtype="float32", name="logits")
    logits = emotions_only(head.input)
    emotions_only.set_weights([kernel[:, :n_emotions], bias[:n_emotions]])
    return keras.Model(model.inputs, logits, name=model.name)


def ensemble(members: list[keras.Model]) -> keras.Model:
    """One model whose logits are the mean of ``members``' logits (each member kept whole inside);
    a single member is returned as it is.

    Built from built-in layers only, so it saves as one ``.keras`` file and loads in safe mode.
    """
    if len(members) == 1:
        return members[0]
    inputs = keras.Input(shape=members[0].input_shape[1:], name="log_mel")
    logits = []
    for index, member in enumerate(members):
        member.name = f"member_{index}"  # nested models need distinct names
        logits.append(member(inputs))
    return keras.Model(inputs, layers.Average(name="logits")(logits), name=f"ensemble_of_{len(members)}")


ARCHITECTURES: dict[str, Callable[..., keras.Model]] = {
    "ser_cnn": ser_cnn, "ser_cnn_band_norm": ser_cnn_band_norm, "ser_cnn_fast": ser_cnn_fast,
    "ser_cnn_lite": ser_cnn_lite, "ser_cnn_wide": ser_cnn_wide, "ser_crnn": ser_crnn, "ser_tdnn": ser_tdnn,
    "vgg_baseline": vgg_baseline,
}
# ser_cnn_lite: 40 % of ser_cnn's training step, which keeps the three default members inside 30 min
# on a 2-core CPU, for the same cross-validated accuracy (docs/experiments.md, rows 31-33).
DEFAULT_ARCH = "ser_cnn_lite"
# The baseline keeps the notebook's optimiser; ours trains faster with a larger rate.
LEARNING_RATES = {"vgg_baseline": 1e-4} | {name: 2e-3 for name in ARCHITECTURES if name.startswith("ser_")}


def build_model(arch: str, input_shape: tuple[int, int, int], n_classes: int) -> keras.Model:
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose from {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[arch](input_shape, n_classes)
