"""Does the generated data give the answer away? Classifiers that see only names, version hints or tool texts.

A weak-to-strong case should be won by judging what the tools can do. If the strong side always keeps the
original name, or only the strong side ever says "v2, replaces X", a model can learn the giveaway instead; then a
high weak-to-strong score measures the shortcut. Two checks, each a cross-validated logistic regression:

* **names only**: shown the two names of a pair (in random order) and nothing else, which is the strong one?
  Chance is 0.5.
* **hints only**: shown the version fields (version, deprecated, supersedes a shown tool) of a pair's two sides,
  which is the strong one (chance 0.5)? And in the other cases with hints: from one tool's version fields, is
  it the answer? Measured as ROC AUC over every shown tool; chance is 0.5.

* **tool text only**: shown one tool's canonical text and no query, is it the answer of its case? ROC AUC over
  every shown tool, cross-validated with each tool name in one fold only (so a tool's own text is never
  remembered, only what answers look like); chance is 0.5. Above it, the selector learns a prior per tool: in
  use it answers "yes" to tools that look like answers whatever the query (TRAINING.md, "Tool text alone").

``generate-data`` writes the figures into the data card; the tests hold the neutral data (``--neutral-pairs``)
to chance and check that the older data fails.
"""

from __future__ import annotations

import random
from typing import Any, Iterable

import numpy as np

__all__ = ["names_only_accuracy", "hints_only_pair_accuracy", "hints_only_auc", "text_only_auc", "shortcut_report"]

#: Folds of the cross-validation.
FOLDS = 5
#: Cases the tool-text check reads at most (a sample: the full train split takes minutes and says the same).
TEXT_ONLY_CASES = 4000


def _pairs(records: Iterable[dict[str, Any]]) -> list[tuple[str, str]]:
    """(strong name, weak name) of every weak-to-strong case."""
    return [(r["expected"], r["weak_variant"]["name"]) for r in records
            if r.get("case_type") == "weak-to-strong" and r.get("weak_variant") and r.get("expected")]


def names_only_accuracy(records: Iterable[dict[str, Any]], seed: int = 0) -> tuple[float, int]:
    """Cross-validated accuracy of telling the strong name of a pair from the weak one, and the pair count."""
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import HashingVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    pairs = _pairs(records)
    if len(pairs) < 2 * FOLDS:
        raise ValueError(f"{len(pairs)} weak-to-strong cases are too few for the names-only check")
    rng = random.Random(seed)
    first, second, label = [], [], []
    for strong, weak in pairs:
        swap = rng.random() < 0.5
        first.append(weak if swap else strong)
        second.append(strong if swap else weak)
        label.append(0 if swap else 1)
    grams = HashingVectorizer(analyzer="char_wb", ngram_range=(2, 4), n_features=2 ** 18, alternate_sign=False)
    # each side's character n-grams, plus which name is longer and which is the other's prefix (the old giveaways)
    lengths = np.array([[len(a) - len(b), a.startswith(b), b.startswith(a)] for a, b in zip(first, second)], dtype=float)
    features = hstack([grams.transform(first), grams.transform(second), lengths]).tocsr()
    # liblinear: the unscaled length feature makes lbfgs crawl (47 s against 0.9 s on 3,700 pairs, same accuracy)
    model = LogisticRegression(solver="liblinear", C=1.0)
    scores = cross_val_score(model, features, np.array(label), cv=FOLDS, scoring="accuracy")
    return float(scores.mean()), len(pairs)


def _hint_features(tool: dict[str, Any], shown: set[str]) -> list[float]:
    version = str(tool.get("version") or "")
    return [float(bool(version)), float(version == "1"), float(version == "2"), float(bool(tool.get("deprecated"))),
            float(tool.get("supersedes") in shown)]


def _cross_validated(rows: list[list[float]], labels: list[int], scoring: str) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    x, y = np.array(rows), np.array(labels)
    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=0)
    predicted = cross_val_predict(LogisticRegression(max_iter=1000), x, y, cv=folds, method="predict_proba")[:, 1]
    return float(roc_auc_score(y, predicted) if scoring == "auc" else accuracy_score(y, predicted >= 0.5))


def hints_only_pair_accuracy(records: Iterable[dict[str, Any]], seed: int = 0) -> tuple[float, int]:
    """Cross-validated accuracy of telling the strong side of a pair from the weak one by their version fields
    alone (pairs with hints), and the pair count."""
    rng = random.Random(seed)
    rows, labels = [], []
    for r in records:
        if r.get("case_type") != "weak-to-strong" or not r.get("version_hints"):
            continue
        tools = {t["name"]: t for t in r["tools"]}
        strong, weak = tools[r["expected"]], tools[r["weak_variant"]["name"]]
        swap = rng.random() < 0.5
        a, b = (weak, strong) if swap else (strong, weak)
        rows.append(_hint_features(a, set(tools)) + _hint_features(b, set(tools)))
        labels.append(0 if swap else 1)
    if len(set(labels)) < 2 or len(rows) < 2 * FOLDS:
        raise ValueError(f"{len(rows)} hinted pairs are too few for the hints-only check")
    return _cross_validated(rows, labels, "accuracy"), len(rows)


def hints_only_auc(records: Iterable[dict[str, Any]]) -> tuple[float, int]:
    """Cross-validated ROC AUC of "is this tool the answer" from its version fields alone, over every shown tool
    of the cases with version hints, a tool expected and no weak variant; and that tool count."""
    rows, labels = [], []
    for r in records:
        if not r.get("version_hints") or not r.get("expected") or r.get("case_type") == "weak-to-strong":
            continue
        shown = {t["name"] for t in r["tools"]}
        for tool in r["tools"]:
            rows.append(_hint_features(tool, shown))
            labels.append(int(tool["name"] == r["expected"]))
    if len(set(labels)) < 2 or len(rows) < 10 * FOLDS:
        raise ValueError(f"{len(rows)} hinted tools are too few for the hints-only check")
    return _cross_validated(rows, labels, "auc"), len(rows)


def text_only_auc(records: Iterable[dict[str, Any]], seed: int = 0,
                  max_cases: int = TEXT_ONLY_CASES) -> tuple[float, int]:
    """Cross-validated ROC AUC of "is this tool its case's answer" from the tool's canonical text alone (its
    words and bigrams, its length, its commas, a snake_case name), folds grouped by tool name; and the tool count.
    Reads a seeded sample of at most ``max_cases`` cases."""
    from scipy.sparse import csr_matrix, hstack
    from sklearn.feature_extraction.text import HashingVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict

    from gentool_router.tool_text import render_tool
    from gentool_router.tools import Tool

    cases = list(records)
    random.Random(seed).shuffle(cases)
    texts, labels, names = [], [], []
    for case in cases[:max_cases]:
        for tool in case.get("tools") or []:
            texts.append(render_tool(Tool.from_dict(tool)))
            labels.append(int(tool["name"] == case.get("expected")))
            names.append(tool["name"])
    if len(set(labels)) < 2 or len(set(names)) < FOLDS:
        raise ValueError(f"{len(texts)} shown tools are too few for the tool-text check")
    words = HashingVectorizer(ngram_range=(1, 2), n_features=2 ** 18, alternate_sign=False)
    style = csr_matrix(np.array([[np.log1p(len(t.split())), t.count(","), float("_" in name)]
                                 for t, name in zip(texts, names)]))
    features = hstack([words.transform(texts), style]).tocsr()
    # folds keep each tool name together (nothing remembered) and the answers' share alike (every fold fits both)
    folds = StratifiedGroupKFold(n_splits=FOLDS, shuffle=True, random_state=seed)
    predicted = cross_val_predict(LogisticRegression(solver="liblinear", C=1.0), features, np.array(labels),
                                  cv=folds, groups=names, method="predict_proba")[:, 1]
    return float(roc_auc_score(labels, predicted)), len(texts)


def shortcut_report(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The checks on ``records`` (a data set's train split), as written into stats.json and the data card."""
    accuracy, pairs = names_only_accuracy(records)
    hint_accuracy, hinted_pairs = hints_only_pair_accuracy(records)
    auc, tools = hints_only_auc(records)
    text_auc, shown = text_only_auc(records)
    return {"names_only_pair_accuracy": round(accuracy, 4), "weak_to_strong_pairs": pairs,
            "hints_only_pair_accuracy": round(hint_accuracy, 4), "hinted_pairs": hinted_pairs,
            "hints_only_auc": round(auc, 4), "hinted_tools": tools,
            "text_only_auc": round(text_auc, 4), "text_only_tools": shown, "chance": 0.5}


def main(argv: list[str] | None = None) -> int:
    """``python -m gentool_router_train.shortcuts DATA_DIR``: the checks on a generated data set's train split."""
    import json
    import sys
    from pathlib import Path

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not (Path(args[0]) / "train.jsonl").is_file():
        print("usage: python -m gentool_router_train.shortcuts DATA_DIR  (a folder written by generate-data)",
              file=sys.stderr)
        return 2
    with (Path(args[0]) / "train.jsonl").open(encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle if line.strip()]
    print(json.dumps(shortcut_report(records), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
