"""Scale-out: many files, many cores or machines, on Ray Data.

``python -m ser_core.batch`` (:mod:`ser_core.scale.batch_cli`) answers an archive file by file into
Parquet; :mod:`ser_core.scale.embedding` fills ``train.py``'s embedding cache the same way. This
room imports ``inference`` and ``data``; nothing else in ``ser_core`` imports it (nor Ray), so the
app and ``predict`` never pay Ray's start-up.
"""
