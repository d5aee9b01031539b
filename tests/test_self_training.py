"""Self-training on a batch from one setup (``ser_core.inference.self_training``) and its LOCO protocol."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import RidgeClassifier

from ser_core.evaluation import embedding_protocols as protocols
from ser_core.inference.linear_head import LinearHead
from ser_core.inference.self_training import self_train
from ser_core.training.embedding_heads import ridge_head

WIDTH = 16


def _setup(n: int, separation: float, shift: np.ndarray | float, rng: np.random.Generator):
    """Six classes, each one dimension raised by ``separation``; every row moved by ``shift`` (a room)."""
    labels = np.repeat(np.arange(6), n // 6)
    rows = rng.normal(0, 1, (len(labels), WIDTH))
    rows[np.arange(len(labels)), labels] += separation
    return rows + shift, labels


@pytest.fixture(scope="module")
def head() -> LinearHead:
    rows, labels = _setup(600, 2.5, 0.0, np.random.default_rng(0))
    fitted = RidgeClassifier(alpha=10).fit(rows, labels)
    return LinearHead(fitted.coef_.T.astype(np.float32), fitted.intercept_.astype(np.float32))


def _accuracy(head: LinearHead, rows: np.ndarray, labels: np.ndarray) -> float:
    return float((head.predict_on_batch(rows).argmax(axis=1) == labels).mean())


def test_self_training_recovers_part_of_a_new_setups_loss(head):
    rng = np.random.default_rng(1)
    room = np.zeros(WIDTH)
    room[0] = 1.2  # the new room sounds "angry" to the head, and blurs every emotion a little
    room[6:] = rng.normal(0, 0.5, WIDTH - 6)
    rows, labels = _setup(300, 1.75, room, rng)
    before = _accuracy(head, rows, labels)
    after = _accuracy(self_train(head, rows), rows, labels)
    assert after >= before + 0.05, (before, after)
    assert np.bincount(head.predict_on_batch(rows).argmax(axis=1), minlength=6)[0] > 2 * 50  # the bias it removes


def test_self_training_leaves_the_shipped_head_alone_and_a_strong_pull_keeps_it(head):
    rows, _ = _setup(120, 2.0, 0.5, np.random.default_rng(2))
    kernel = head.kernel.copy()
    pulled = self_train(head, rows, strength=1e9)
    np.testing.assert_array_equal(head.kernel, kernel)
    np.testing.assert_allclose(pulled.kernel, head.kernel, atol=1e-5)
    assert pulled.kernel.dtype == np.float32 and pulled.bias.shape == (6,)


def _reference(head: LinearHead, rows: np.ndarray, chosen: np.ndarray, strength: float) -> np.ndarray:
    """The anchored ridge in its primal form, written out: (X'VX + s I) dW = X'V (Y - XW0), centred."""
    scores = rows @ head.kernel.astype(np.float64) + head.bias
    answers = scores[chosen].argmax(axis=1)
    targets = -np.ones((len(chosen), 6))
    targets[np.arange(len(chosen)), answers] = 1
    counts = np.bincount(answers, minlength=6)
    weights = 1.0 / counts[answers]
    weights *= len(weights) / weights.sum()
    x = rows[chosen] - np.average(rows[chosen], axis=0, weights=weights)
    y = targets - np.average(targets, axis=0, weights=weights)
    gram = (x * weights[:, None]).T @ x + strength * np.eye(rows.shape[1])
    return head.kernel + np.linalg.solve(gram, (x * weights[:, None]).T @ (y - x @ head.kernel))


@pytest.mark.parametrize("n_rows", [30, 600])  # fewer learnt rows than dimensions (the dual form), and more
def test_both_forms_of_the_refit_solve_the_same_problem(n_rows):
    rng = np.random.default_rng(3)
    wide = LinearHead(rng.normal(0, 0.3, (WIDTH * 2, 6)).astype(np.float32), np.zeros(6, np.float32))
    rows = rng.normal(0, 1, (n_rows, WIDTH * 2))
    scores = rows @ wide.kernel
    answers, ordered = scores.argmax(axis=1), np.sort(scores, axis=1)
    margin = ordered[:, -1] - ordered[:, -2]
    chosen = np.sort(np.concatenate([np.flatnonzero(answers == c)[np.argsort(-margin[answers == c], kind="stable")
                                     [: max(1, int(0.5 * (answers == c).sum()))]] for c in np.unique(answers)]))
    assert (len(chosen) < WIDTH * 2) == (n_rows == 30)
    np.testing.assert_allclose(self_train(wide, rows, strength=5.0).kernel, _reference(wide, rows, chosen, 5.0),
                               rtol=1e-4, atol=1e-5)


def test_self_training_refuses_nonsense_settings(head):
    rows = np.zeros((10, WIDTH))
    with pytest.raises(ValueError, match="keep"):
        self_train(head, rows, keep=0.0)
    with pytest.raises(ValueError, match="strength"):
        self_train(head, rows, strength=0.0)


def _corpora(rng: np.random.Generator):
    """Four corpora of two speakers; each corpus its own room (an offset) and its own emotion blur."""
    rows, labels, corpus, speaker = [], [], [], []
    for index, name in enumerate(("a", "b", "c", "d")):
        room = rng.normal(0, 1.0, WIDTH)
        for person in range(2):
            part, part_labels = _setup(120, 2.0 - 0.3 * index, room + rng.normal(0, 0.3, WIDTH), rng)
            rows.append(part)
            labels.append(part_labels)
            corpus += [name] * len(part)
            speaker += [f"{name}{person}"] * len(part)
    return np.vstack(rows), np.concatenate(labels), np.array(corpus), np.array(speaker)


def test_the_protocol_self_trains_only_in_an_adapted_protocol():
    rows, labels, corpus, speaker = _corpora(np.random.default_rng(4))
    with pytest.raises(ValueError, match="adapted protocol"):
        protocols.leave_one_corpus_out(rows, labels, corpus, ridge_head(alpha=30), normalisation="per_corpus",
                                       self_train=True)
    with pytest.raises(ValueError, match="pass speakers"):
        protocols.leave_one_corpus_out(rows, labels, corpus, ridge_head(alpha=30), normalisation="adapted_speaker")
    plain = protocols.leave_one_corpus_out(rows, labels, corpus, ridge_head(alpha=30), normalisation="adapted")
    trained = protocols.leave_one_corpus_out(rows, labels, corpus, ridge_head(alpha=30), normalisation="adapted",
                                             self_train=True)
    assert set(trained) == set(plain) == {"a", "b", "c", "d"}
    assert any(not np.allclose(trained[c]["logits"], plain[c]["logits"]) for c in plain)
    per_speaker = protocols.leave_one_corpus_out(rows, labels, corpus, ridge_head(alpha=30),
                                                 normalisation="adapted_speaker", speakers=speaker)
    assert all(0 <= result["uar"] <= 1 for result in per_speaker.values())


def test_a_head_missing_an_emotion_cannot_self_train():
    rows, labels, corpus, _ = _corpora(np.random.default_rng(5))
    keep = labels != 0  # no "angry" anywhere: the head has five columns
    with pytest.raises(ValueError, match="all six emotions"):
        protocols.leave_one_corpus_out(rows[keep], labels[keep], corpus[keep], ridge_head(alpha=30),
                                       normalisation="adapted", self_train=True)
