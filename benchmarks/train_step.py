"""Time one training step of each network on this machine, and project the shipped recipe's training time.

    python -m benchmarks.train_step [--arch ARCH] [--preset acoustic_vtlp] [--steps 20]
    TF_ENABLE_ONEDNN_OPTS=0 python -m benchmarks.train_step      # without TensorFlow's oneDNN kernels

Uses random log-mel windows of the model's input shape (the step's cost does not depend on the
values) through the real pipeline: class-balanced tf.data batches, the preset's augmentation, the
network and Adam. Without ``--arch`` it times every network of the default members and projects
the default recipe; with it, that network alone, as if every default member trained it. The
projection assumes every member runs the full ``--epochs`` (a plateau member usually stops earlier)
on the 17 training actors of ``--test-fraction 0``: class-balanced, 17 x 8 clips of each of the six
emotions, 25 steps of 32 an epoch.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from ser_core.training.augment import PRESETS, make_augmenter
from ser_core.data.dataset import WindowSet, training_dataset
from ser_core.training.models import ARCHITECTURES, DEFAULT_ARCH, build_model
from ser_core.inference.params import EMOTIONS, FeatureParams
from ser_core.training.recipes import DEFAULT_EPOCHS, DEFAULT_MEMBERS, MemberRecipe

SHIPPED_STEPS_PER_EPOCH = 17 * 8 * len(EMOTIONS) // 32


def step_seconds(arch: str, preset_name: str, steps: int) -> float:
    """Median seconds per training step of 32 windows, over the epochs after the first."""
    import keras

    params = FeatureParams()
    rng = np.random.default_rng(0)
    n = 600
    windows = WindowSet(x=rng.uniform(-50, 0, (n, *params.input_shape[:2])).astype(np.float32),
                        labels=np.arange(n) % len(EMOTIONS), clip_index=np.arange(n), clips=[])
    preset = PRESETS[preset_name]
    dataset, _ = training_dataset(windows, 32, None if preset is None else make_augmenter(params, preset), 0)
    model = build_model(arch, params.input_shape, len(EMOTIONS))
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    epoch_seconds = []

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            epoch_seconds.append(time.perf_counter() - self.started)

    # The first epoch traces the graph and fills the input pipeline: only the later ones are timed.
    model.fit(dataset, steps_per_epoch=steps, epochs=3, verbose=0, callbacks=[EpochTimer()])
    return float(np.median(epoch_seconds[1:])) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="acoustic_vtlp", choices=sorted(PRESETS))
    parser.add_argument("--steps", type=int, default=20, help="steps per timed epoch")
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    parser.add_argument("--arch", choices=sorted(ARCHITECTURES), help="default: each network of the default members")
    args = parser.parse_args()

    networks = [args.arch or MemberRecipe.parse(spec).network(DEFAULT_ARCH) for spec in DEFAULT_MEMBERS]
    seconds = {arch: step_seconds(arch, args.preset, args.steps) for arch in dict.fromkeys(networks)}
    total_minutes = 0.0
    for arch, step in seconds.items():
        member_minutes = step * SHIPPED_STEPS_PER_EPOCH * args.epochs / 60
        total_minutes += member_minutes * networks.count(arch)
        print(f"oneDNN kernels: {os.environ.get('TF_ENABLE_ONEDNN_OPTS')} | preset {args.preset} | {arch} | "
              f"{step:.3f} s per step of 32 | {member_minutes:.1f} min per member of {args.epochs} epochs on 17 actors")
    print(f"projected: {total_minutes:.1f} min for the {len(networks)} default members ({', '.join(networks)})")


if __name__ == "__main__":
    main()
