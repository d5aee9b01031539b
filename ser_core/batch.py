"""``python -m ser_core.batch``: kept at its published path; the engine lives in ``ser_core.scale``."""

from ser_core.scale.batch_cli import main

if __name__ == "__main__":
    raise SystemExit(main())
