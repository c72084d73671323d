"""Scores from probabilities: single- and multi-label, thresholds, the gate's positive class, worst errors."""

import numpy as np

from landsight.classify.evaluate import decide, evaluate, macro_f1, worst_errors

PROBS = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8], [0.55, 0.45]])
TRUTH = np.eye(2)[[0, 1, 1, 1, 0]]


def test_single_label_scores_and_confusion():
    result = evaluate(PROBS, TRUTH, ["clear", "cloudy"], multi_label=False)
    assert result["confusion_matrix"] == [[2, 0], [1, 2]] and result["accuracy"] == 0.8
    assert result["per_class"]["cloudy"]["recall"] == round(2 / 3, 6) and result["per_class"]["clear"]["support"] == 2
    assert [r["threshold"] for r in result["pr_at_thresholds"]["cloudy"]][:2] == [0.1, 0.2]
    assert result["pr_at_thresholds"]["cloudy"][3] == {"threshold": 0.4, "precision": 0.75, "recall": 1.0}


def test_a_positive_class_threshold_changes_decisions():
    assert decide(PROBS, False, 0.4, positive=1).argmax(axis=1).tolist() == [0, 1, 1, 1, 1]
    result = evaluate(PROBS, TRUTH, ["clear", "cloudy"], False, threshold=0.4, positive=1)
    assert result["confusion_matrix"] == [[1, 1], [0, 3]] and result["decision"]["positive"] == "cloudy"


def test_multi_label_scores_and_worst_errors():
    probs = np.array([[0.9, 0.8, 0.1], [0.2, 0.6, 0.7], [0.1, 0.1, 0.9]])
    truth = np.array([[1, 1, 0], [0, 0, 1], [1, 0, 1]], dtype=float)
    result = evaluate(probs, truth, ["a", "b", "c"], multi_label=True)
    assert result["confusion_matrix"] is None and result["per_class"]["a"]["recall"] == 0.5
    assert result["exact_match"] == round(1 / 3, 6) and result["per_class"]["c"]["f1"] == 1.0
    assert worst_errors(probs, truth, True) == [2, 1]
    assert 0 < macro_f1(probs, truth, True) < 1
