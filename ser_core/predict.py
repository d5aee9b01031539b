"""``python -m ser_core.predict``: kept at its published path; the command lives in ``ser_core.inference.predict_cli``."""

from ser_core.inference.predict_cli import main

if __name__ == "__main__":
    raise SystemExit(main())
