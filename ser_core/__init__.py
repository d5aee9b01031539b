"""Speech emotion recognition core: data, features, models and inference shared by train.py and the app."""

from ser_core.params import EMOTIONS, FeatureParams

__all__ = ["EMOTIONS", "FeatureParams"]
