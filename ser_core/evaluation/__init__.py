"""Metrics, calibration, cross-validation reports and the ``evaluate`` command."""
