"""Speech emotion recognition: the code behind ``train.py``, the app and the command-line tools.

Six rooms, one purpose each (``docs/architecture.md`` is the map):

- ``inference``: audio in, emotion probabilities out. Parameters, decoding, features, the
  predictor, the model files and the ``predict`` command. What the app and the tools need.
- ``data``: corpora on disk, speaker splits, cached features and the batches training reads.
- ``training``: networks, recipes, augmentation and the training loop machinery.
- ``evaluation``: metrics, calibration, cross-validation reports and the ``evaluate`` command.
- ``app``: the Streamlit app's support code; ``pages/`` only lays it out.
- ``scale``: batch jobs and embedding on Ray (``python -m ser_core.batch``, ``train.py --ray-workers``).

Who may import whom (``tests/test_architecture.py`` reads the imports and holds every room to it):

- ``inference`` imports no other room;
- ``data`` imports ``inference``;
- ``evaluation`` imports ``inference`` and ``data``;
- ``training`` imports ``inference``, ``data`` and ``evaluation``;
- ``app`` imports ``inference`` and ``evaluation`` (the reports), never ``data`` or ``training``;
- ``scale`` imports ``inference`` and ``data``; no other room imports it, and only it imports Ray
  (the app and ``predict`` never load Ray).
"""

import os
import sys

# TensorFlow turns its oneDNN kernels on by default only on CPUs with AVX-512 VNNI or newer; on an
# AVX2-only CPU (this project's 2-core AMD EPYC) they halve a training step (1.1 s -> 0.46 s for a
# batch of 32) and trim inference. Set before anything imports TensorFlow: every entry point
# imports ser_core first. An explicit TF_ENABLE_ONEDNN_OPTS=0 still wins.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

# Without the NVIDIA driver, TensorFlow's GPU lookup logs "E0000 ... failed call to cuInit" from its
# C++ core on every command; only level 3 (errors) hides it. Python exceptions are unaffected, and a
# machine with the driver keeps TensorFlow's default so a real GPU fault stays visible.
if not os.path.exists("/proc/driver/nvidia"):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")



def import_tensorflow_quietly() -> None:
    """Import TensorFlow, hiding the lines its C++ core prints while it starts on a machine without
    the NVIDIA driver ("oneDNN custom operations are on", "Could not find cuda drivers").

    They are written straight to the process's standard error before any log level applies, and a
    newcomer reads them as failures. Only the import itself is quiet: a Python exception still
    propagates, and a machine with the driver sees everything.
    """
    if "tensorflow" in sys.modules or os.path.exists("/proc/driver/nvidia"):
        import tensorflow  # noqa: F401
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)


from ser_core.inference.params import EMOTIONS, FeatureParams  # noqa: E402

__all__ = ["EMOTIONS", "FeatureParams", "import_tensorflow_quietly"]
