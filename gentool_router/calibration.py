"""Fit a decision model for a user's own catalogue from a small labelled file (``gentool-router calibrate``).

Raw similarities, lexical scores and even the selector's confidence differ from one catalogue to the next, so
the decision model shipped for the bundled data may abstain too often, or too rarely, on yours. A few dozen
labelled queries fix that. Each labelled query is routed once as it is; with ``near_misses``, each query with a
tool once more with that tool removed from the catalogue (the right answer becomes no tool: useful where the
catalogue has no near-duplicate tools, noisy where it has; off by default); and the
bundled no-tool queries (the fitting half, ``examples.out_of_scope_queries("fit")``) are routed over your
catalogue, so the router keeps answering chit-chat without a tool. The model's temperature (how sure its
probabilities are) is fitted on each fifth of the labels as predicted by the model fitted on the rest: a fit on a few
dozen labels is surer of itself than it has reason to be on queries it has not seen.

A label file is JSONL, one ``{"query": "...", "expected": "tool_name" or null}`` a line (``"tool"`` is accepted
for ``"expected"``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Iterable, Sequence

from .decision import DecisionModel, LabelledEvidence, default_decision, selector_identity
from .errors import CatalogError, ConfigError
from .examples import out_of_scope_queries
from .jsonl import parse_object, problems_message, read_lines
from .router import ToolRouter
from .selector import LlamaSelector
from .tools import NO_TOOL

__all__ = ["Label", "load_labels", "calibrate"]

#: The labels are split into this many folds to fit the decision model's temperature on predictions of labels it
#: was not fitted on (``DecisionModel.fit(groups=...)``).
FOLDS = 5


@dataclass(frozen=True)
class Label:
    """A labelled query: the right tool of the catalogue, or None when no tool fits."""

    query: str
    expected: str | None


def load_labels(path: str | os.PathLike[str], tool_names: Iterable[str]) -> list[Label]:
    """Read a label file; every bad line is reported at once (file:line and why), before any model runs."""
    names = set(tool_names)
    labels, problems = [], []
    for number, line in read_lines(path, "label"):
        where = f"{path}:{number}"
        try:
            data = parse_object(line, "label")
        except CatalogError as exc:
            problems.append(f"{where}: {exc}")
            continue
        query = data.get("query")
        expected = data.get("expected", data.get("tool"))
        if not isinstance(query, str) or not " ".join(query.split()):
            problems.append(f"{where}: 'query' must be a non-empty string")
        elif "expected" not in data and "tool" not in data:
            problems.append(f"{where}: 'expected' must be a tool name or null")
        elif expected is not None and not isinstance(expected, str):
            problems.append(f"{where}: 'expected' must be a tool name or null")
        elif expected not in (None, NO_TOOL) and expected not in names:
            problems.append(f"{where}: expected tool {expected!r} is not in the index")
        else:
            labels.append(Label(query, None if expected in (None, NO_TOOL) else expected))
    if problems:
        raise CatalogError(problems_message(problems, "label"))
    if not labels:
        raise CatalogError(f"{path}: no labelled queries")
    return labels


def calibrate(
    router: ToolRouter,
    labels: Sequence[Label],
    *,
    near_misses: bool = False,
    bundled_out_of_scope: bool = True,
    progress: Callable[[Iterable[Any]], Iterable[Any]] = lambda items: items,
) -> DecisionModel:
    """Route the labelled queries (and the near misses and bundled no-tool queries) and fit a decision model.

    The model is fitted for the router's selector and embedder: :attr:`ToolRouter.decision` refuses it for others.
    """
    selector = router.selector
    if not isinstance(selector, LlamaSelector):
        raise ConfigError("calibrate fits a decision over the llama.cpp selector's scores: the router has "
                          f"a {type(selector).__name__}")
    # each job: query, right answer, tools taken out, kind, and its fold (None: the bundled no-tool queries, always
    # fitted on): a label and its near miss share a fold
    jobs: list[tuple[str, str | None, tuple[str, ...], str, str | None]] = []
    for number, label in enumerate(labels):
        fold = f"fold {number % FOLDS}"
        jobs.append((label.query, label.expected, (), "tool" if label.expected else "out_of_scope", fold))
        if near_misses and label.expected is not None and len(router.index) > 1:
            jobs.append((label.query, None, (label.expected,), "near_miss", fold))
    if bundled_out_of_scope:
        jobs.extend((row["query"], None, (), "out_of_scope", None) for row in out_of_scope_queries("fit"))
    examples, vectors, folds = [], [], []
    for (query, expected, exclude, kind, fold), vector in zip(progress(jobs), router.index.embedder.embed_queries(
            [job[0] for job in jobs])):
        route = router.route(query, exclude=exclude)
        if route.evidence is not None:
            examples.append(LabelledEvidence(route.evidence, expected, kind))
            vectors.append(vector)
            folds.append(fold)
    identity = selector_identity(selector.model_path, selector.adapter_path, router.index.embedder.model_id)
    # the query classifier (does a query ask for a tool at all) does not depend on the catalogue: a few labels
    # cannot refit it, so the shipped one is kept when it reads this embedder's vectors
    shipped = default_decision()
    kept = None
    if (shipped is not None and shipped.query_weights is not None
            and shipped.identity.get("embedder") == router.index.embedder.model_id):
        kept = (shipped.query_weights, shipped.query_bias)
    fit = partial(DecisionModel.fit, examples, identity=identity,
                  query_vectors=vectors if kept is not None else None, query_classifier=kept)
    try:  # the temperature from each fold's labels as predicted by the model fitted on the others: new queries
        model = fit(groups=folds)
    except ConfigError:  # a fold's complement too small to fit: the temperature from the fitting routes themselves
        model = fit()
    model.report["fitted_on"] = {"labels": len(labels), "routes": len(jobs),
                                 "near_misses": near_misses, "bundled_out_of_scope": bundled_out_of_scope}
    return model
