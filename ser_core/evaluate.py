"""``python -m ser_core.evaluate``: kept at its published path; the command lives in ``ser_core.evaluation.evaluate_cli``."""

from ser_core.evaluation.evaluate_cli import main

if __name__ == "__main__":
    raise SystemExit(main())
