"""Networks, member recipes, augmentation and the machinery of a training run."""

from ser_core import import_tensorflow_quietly

# Every training module needs TensorFlow: import it here, once, before any of them does, so that
# train.py starts without TensorFlow's native start-up lines.
import_tensorflow_quietly()
