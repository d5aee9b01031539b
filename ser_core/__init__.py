"""Speech emotion recognition core: data, features, models and inference shared by train.py and the app."""

import os

# TensorFlow turns its oneDNN kernels on by default only on CPUs with AVX-512 VNNI or newer; on an
# AVX2-only CPU (this project's 2-core AMD EPYC) they halve a training step (1.1 s -> 0.46 s for a
# batch of 32) and trim inference. Set before anything imports TensorFlow: every entry point
# imports ser_core first. An explicit TF_ENABLE_ONEDNN_OPTS=0 still wins.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

from ser_core.params import EMOTIONS, FeatureParams  # noqa: E402

__all__ = ["EMOTIONS", "FeatureParams"]
