"""Corpora on disk, speaker-independent splits, cached features and the batches training reads."""
