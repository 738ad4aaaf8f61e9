"""Tool or none from all the evidence: a small calibrated decision model over retrieval, lexical and selector scores.

The selector alone decides with one fixed threshold on a pointwise yes/no logit gap and never sees what retrieval
found. The decision model is a conditional logit (McFadden): each candidate gets the utility ``w · x`` of its
evidence (``evidence.CANDIDATE_FEATURES``), answering without a tool the utility ``v · z``
(``evidence.NONE_FEATURES``), and the probabilities are the softmax over them. Fitted by maximum likelihood,
the probabilities are calibrated on data like the fitting data; the operating point (an offset on the no-tool
utility) is then chosen on the fitting data's risk–coverage curve. Moving the operating point (and weighting the
kinds) moves the probabilities away from what they mean, and a router meets catalogues it was not fitted on, where
it is surer than it should be; so last a temperature is fitted by maximum likelihood, on the fitting routes or (given
groups) on each group's routes as predicted by the model fitted without them. The utilities are divided by it
before the softmax: no decision changes, and the probabilities come back in line with how often the chosen answer
is right (BENCHMARKS.md, "Calibrated per part").

Catalogues smaller than ``min_catalogue_tools`` (an agent's handful of tools) have their own small part: a
similarity scale over ten tools says little, so there the utilities weigh only each candidate's selector gap and
raw cosine, and for no tool a bias, the query classifier's log-odds and the best raw cosine
(``SMALL_CANDIDATE_FEATURES``, ``SMALL_NONE_FEATURES``): the selector's own threshold, moved for queries that ask
for no tool or match no tool well, and calibrated. It is fitted apart (:meth:`DecisionModel.fit_small`).

A decision model belongs to one selector (model and adapter files, prompt and tool-text versions) and one
embedder: its file records them, and :meth:`DecisionModel.check_matches` refuses another. The package ships one
for its default selector (``data/decision.json``); ``gentool-router calibrate`` fits one for a user's catalogue.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .errors import ConfigError, ModelLoadError
from .evidence import (
    CANDIDATE_FEATURES,
    GAP_CLIP,
    NONE_FEATURES,
    STATS_DEPTH,
    RouteEvidence,
    candidate_features,
    none_features,
)
from .tools import NO_TOOL

__all__ = ["DecisionModel", "LabelledEvidence", "DECISION_VERSION", "DEFAULT_DECISION_FILE", "default_decision",
           "file_fingerprint", "DecisionMismatchError", "selector_identity", "SMALL_CANDIDATE_FEATURES",
           "SMALL_NONE_FEATURES", "expected_calibration_error", "TEMPERATURE_BOUNDS"]

DECISION_FORMAT = "gentool-router-decision"
#: Bumped when the features or the model's form change: older files are refused.
DECISION_VERSION = 1
DEFAULT_DECISION_FILE = Path(__file__).with_name("data") / "decision.json"
#: The small-catalogue part's evidence: each candidate's selector gap and raw cosine; for no tool a bias, the query
#: classifier's log-odds and the best raw cosine (with the cosines, MetaTool's ten-tool near misses are told from
#: right tools far better than by the gaps alone: BENCHMARKS.md, "Small catalogues").
SMALL_CANDIDATE_FEATURES = ("selector_gap", "cosine")
SMALL_NONE_FEATURES = ("bias", "needs_tool", "top_cosine")


#: The fitted temperature stays within these: a modest correction of the probabilities' scale. Routes that a few
#: labels separate perfectly (``calibrate`` on a small file) would otherwise drive it to zero: certainty everywhere.
TEMPERATURE_BOUNDS = (0.5, 2.0)


class DecisionMismatchError(ModelLoadError):
    """A decision model was fitted for another selector, embedder or feature set."""


#: Fingerprints already read, by (path, inode, size, modification time): every new router checks its decision model
#: against the selector's files, and ``evaluate`` makes one router per case (6 ms a route saved).
_FINGERPRINTS: dict[tuple[str, int, int, int], str] = {}


def file_fingerprint(path: str | os.PathLike[str]) -> str:
    """A quick identity of a model file: SHA-256 over its size, first and last MiB (reading 270 MB takes ~1 s)."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.absolute()), stat.st_ino, stat.st_size, stat.st_mtime_ns)
    if key in _FINGERPRINTS:
        return _FINGERPRINTS[key]
    size = stat.st_size
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as handle:
        digest.update(handle.read(1 << 20))
        if size > 2 << 20:
            handle.seek(-(1 << 20), os.SEEK_END)
            digest.update(handle.read(1 << 20))
    _FINGERPRINTS[key] = fingerprint = digest.hexdigest()
    return fingerprint


@dataclass(frozen=True)
class LabelledEvidence:
    """One fitting example: the evidence of a route, the right answer (a candidate name or None) and its set."""

    evidence: RouteEvidence
    expected: str | None
    kind: str = "tool"


@dataclass
class DecisionModel:
    """A fitted conditional logit over the route evidence; see the module docstring.

    Attributes:
        candidate_weights / none_weights: Weights of the standardised features.
        candidate_mean / candidate_scale / none_mean / none_scale: Standardisation fitted with the weights.
        none_offset: Added to the no-tool utility: the operating point on the risk–coverage curve.
        temperature: The main part's utilities are divided by it before the softmax (calibration; no decision
            depends on it).
        identity: The selector and embedder the evidence came from (see :meth:`check_matches`).
        report: How it was fitted (counts, accuracy, risk–coverage curve), for people.
    """

    candidate_weights: np.ndarray
    none_weights: np.ndarray
    candidate_mean: np.ndarray
    candidate_scale: np.ndarray
    none_mean: np.ndarray
    none_scale: np.ndarray
    none_offset: float = 0.0
    identity: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)
    query_weights: np.ndarray | None = None
    query_bias: float = 0.0
    #: The main part decides only in catalogues of at least this many tools (the shipped one was fitted on
    #: catalogues of 50 and more; one fitted by ``calibrate`` on the user's catalogue applies to it at any size).
    min_catalogue_tools: int = 0
    #: The small-catalogue part (weights of ``SMALL_CANDIDATE_FEATURES`` then ``SMALL_NONE_FEATURES``), deciding in
    #: catalogues under ``min_catalogue_tools``; None: there the selector's own threshold decides.
    small_weights: np.ndarray | None = None
    #: Added to the small part's no-tool utility: its operating point.
    small_offset: float = 0.0
    temperature: float = 1.0
    #: The small part's temperature (its probabilities are calibrated apart: the two parts' errors must not cancel).
    small_temperature: float = 1.0

    def applies_to(self, evidence: RouteEvidence) -> bool:
        """Whether this model decides a route with this evidence (see :attr:`min_catalogue_tools`)."""
        return not self._small(evidence) or self.small_weights is not None

    def _small(self, evidence: RouteEvidence) -> bool:
        """Whether the route's catalogue is one for the small part (under :attr:`min_catalogue_tools`)."""
        return evidence.similarity_count < min(self.min_catalogue_tools, STATS_DEPTH)

    # ------------------------------------------------------------ the query alone
    def needs_tool(self, query_vector: Any) -> float:
        """Log-odds that a query asks for a tool at all, from its embedding alone (0 without a query classifier).

        A logistic regression over the query's embedding, fitted with the model: greetings, thanks, chit-chat and
        questions a model answers itself score low in any catalogue (``RouteEvidence.needs_tool``).
        """
        if self.query_weights is None:
            return 0.0
        vector = np.asarray(query_vector, dtype=np.float64).ravel()
        if vector.shape != self.query_weights.shape:
            raise DecisionMismatchError(f"the decision model's query classifier reads {self.query_weights.shape[0]}-dim "
                                        f"embeddings, the router's are {vector.shape[0]}-dim")
        return float(vector @ self.query_weights + self.query_bias)

    def with_query(self, evidence: RouteEvidence, query_vector: Any) -> RouteEvidence:
        """``evidence`` with its ``needs_tool`` from this model's query classifier."""
        return replace(evidence, needs_tool=self.needs_tool(query_vector)) if self.query_weights is not None else evidence

    # ------------------------------------------------------------ scoring
    def utilities(self, evidence: RouteEvidence) -> tuple[np.ndarray, float]:
        """Each candidate's utility and the no-tool utility (log-odds up to a shared constant)."""
        if self._small(evidence) and self.small_weights is not None:
            rows, z = _small_features(evidence)
            w = self.small_weights
            return rows @ w[: len(SMALL_CANDIDATE_FEATURES)], float(z @ w[len(SMALL_CANDIDATE_FEATURES):]) \
                + self.small_offset
        rows = np.asarray(candidate_features(evidence), dtype=np.float64).reshape(-1, len(CANDIDATE_FEATURES))
        z = np.asarray(none_features(evidence), dtype=np.float64)
        cand = ((rows - self.candidate_mean) / self.candidate_scale) @ self.candidate_weights
        none = float(((z - self.none_mean) / self.none_scale) @ self.none_weights) + self.none_offset
        return cand, none

    def probabilities(self, evidence: RouteEvidence) -> list[float]:
        """Probability of each candidate being the right answer, then of no tool (last), summing to 1."""
        cand, none = self.utilities(evidence)
        values = np.append(cand, none) / self._temperature(evidence)
        values = np.exp(values - values.max())
        return (values / values.sum()).tolist()

    def _temperature(self, evidence: RouteEvidence) -> float:
        return self.small_temperature if self._small(evidence) and self.small_weights is not None else self.temperature

    def explain(self, evidence: RouteEvidence) -> dict[str, Any]:
        """Each option's features, their weighted contributions and its probability: why a tool won or none did
        (``part``: ``"main"`` or ``"small_catalogue"``, the part that decided)."""
        if self._small(evidence) and self.small_weights is not None:
            return self._explain_small(evidence)
        rows = np.asarray(candidate_features(evidence), dtype=np.float64).reshape(-1, len(CANDIDATE_FEATURES))
        z = np.asarray(none_features(evidence), dtype=np.float64)
        probabilities = self.probabilities(evidence)
        options = []
        for c, row, p in zip(evidence.candidates, rows, probabilities):
            contributions = (row - self.candidate_mean) / self.candidate_scale * self.candidate_weights
            options.append({"name": c.name, "probability": p, "evidence": c.to_dict(),
                            "features": dict(zip(CANDIDATE_FEATURES, row.tolist())),
                            "contributions": dict(zip(CANDIDATE_FEATURES, contributions.tolist()))})
        contributions = (z - self.none_mean) / self.none_scale * self.none_weights
        options.append({"name": NO_TOOL, "probability": probabilities[-1],
                        "features": dict(zip(NONE_FEATURES, z.tolist())),
                        "contributions": {**dict(zip(NONE_FEATURES, contributions.tolist())),
                                          "operating_point": self.none_offset}})
        return {"options": sorted(options, key=lambda o: -o["probability"]), "part": "main",
                "temperature": self.temperature,
                "similarity_mean": evidence.similarity_mean, "similarity_std": evidence.similarity_std,
                "lexical_best": evidence.lexical_best, "lexical_best_name": evidence.lexical_best_name}

    def _explain_small(self, evidence: RouteEvidence) -> dict[str, Any]:
        assert self.small_weights is not None
        rows, z = _small_features(evidence)
        split = len(SMALL_CANDIDATE_FEATURES)
        probabilities = self.probabilities(evidence)
        options = [{"name": c.name, "probability": p, "evidence": c.to_dict(),
                    "features": dict(zip(SMALL_CANDIDATE_FEATURES, row.tolist())),
                    "contributions": dict(zip(SMALL_CANDIDATE_FEATURES, (row * self.small_weights[:split]).tolist()))}
                   for c, row, p in zip(evidence.candidates, rows, probabilities)]
        options.append({"name": NO_TOOL, "probability": probabilities[-1],
                        "features": dict(zip(SMALL_NONE_FEATURES, z.tolist())),
                        "contributions": {**dict(zip(SMALL_NONE_FEATURES, (z * self.small_weights[split:]).tolist())),
                                          "operating_point": self.small_offset}})
        return {"options": sorted(options, key=lambda o: -o["probability"]), "part": "small_catalogue",
                "temperature": self.small_temperature,
                "similarity_mean": evidence.similarity_mean, "similarity_std": evidence.similarity_std,
                "lexical_best": evidence.lexical_best, "lexical_best_name": evidence.lexical_best_name}

    # ------------------------------------------------------------ fitting
    def fit_small(self, examples: Sequence[LabelledEvidence], *, l2: float = 1.0,
                  kind_weights: dict[str, float] | None = None) -> None:
        """Fit the small-catalogue part on routes over small catalogues (its evidence with ``needs_tool`` from
        this model's query classifier), each kind weighted equally, times ``kind_weights`` (a kind missing from it
        counts 1); the operating point then maximises that weighted accuracy, and the temperature is fitted last, as
        for the main part. The main part is kept as it is."""
        if self.min_catalogue_tools == 0:
            raise ConfigError("this decision model decides in catalogues of every size: a small-catalogue part "
                              "would never be used (set min_catalogue_tools first)")
        usable = [e for e in examples if e.evidence.candidates and self._small(e.evidence) and
                  (e.expected is None or e.expected in e.evidence.names)]
        if len(usable) < 10:
            raise ConfigError(f"the small-catalogue part needs at least 10 usable labelled routes over catalogues "
                              f"under {self.min_catalogue_tools} tools, got {len(usable)}")
        k_max = max(len(e.evidence.candidates) for e in usable)
        x = np.zeros((len(usable), k_max, len(SMALL_CANDIDATE_FEATURES)))
        mask = np.zeros((len(usable), k_max), dtype=bool)
        z = np.zeros((len(usable), len(SMALL_NONE_FEATURES)))
        labels = np.full(len(usable), k_max)
        for i, example in enumerate(usable):
            rows, z[i] = _small_features(example.evidence)
            x[i, : len(rows)], mask[i, : len(rows)] = rows, True
            if example.expected is not None:
                labels[i] = example.evidence.names.index(example.expected)
        weights = _kind_weights([e.kind for e in usable])
        if kind_weights:
            weights = weights * np.array([kind_weights.get(e.kind, 1.0) for e in usable])
        self.small_weights = _minimise(x, mask, z, labels, weights, l2)
        self.small_offset, self.small_temperature = 0.0, 1.0
        curve = self._operating_curve(usable, weights, small=True)
        best = max(curve, key=lambda point: (round(point["weighted_accuracy"], 6), -abs(point["offset"])))
        self.small_offset = best["offset"]
        calibration = self._fit_temperature(usable, small=True)
        self.report["small_catalogue"] = {
            "examples": len(usable), "skipped_not_retrieved": len(examples) - len(usable),
            "kinds": {k: sum(1 for e in usable if e.kind == k) for k in sorted({e.kind for e in usable})},
            "l2": l2, "kind_weights": dict(kind_weights or {}), "offset": self.small_offset,
            "weights": dict(zip([*SMALL_CANDIDATE_FEATURES, *(f"none_{n}" for n in SMALL_NONE_FEATURES)],
                                self.small_weights.tolist())),
            "weighted_accuracy": float(best["weighted_accuracy"]), "calibration": calibration,
            "risk_coverage": [p for p in curve if abs(p["offset"] * 2 - round(p["offset"] * 2)) < 1e-9]}

    @classmethod
    def fit(cls, examples: Sequence[LabelledEvidence], *, identity: dict[str, Any] | None = None,
            l2: float = 1.0, balance_kinds: bool = False, kind_weights: dict[str, float] | None = None,
            choose_operating_point: bool = True, query_vectors: Any = None,
            query_classifier: tuple[np.ndarray, float] | None = None,
            groups: Sequence[str | None] | None = None) -> "DecisionModel":
        """Fit by penalised maximum likelihood (L-BFGS); examples whose right tool was not retrieved are skipped.

        Each example counts once by default, so the probabilities are calibrated for a mix like the fitting data's;
        ``balance_kinds`` weights each kind (``tool``, ``near_miss``, ``out_of_scope``) equally instead, and
        ``kind_weights`` multiplies each kind's examples by a factor (a kind missing from it counts 1).

        ``query_vectors`` (one embedding per example): first fit the query classifier (does the query ask for a
        tool at all: every kind but ``out_of_scope``), then use its log-odds as evidence. ``query_classifier``
        (weights, bias): use that one instead (``calibrate`` keeps the shipped one: a few labels cannot refit it).

        The temperature is fitted last. ``groups`` (one name per example, such as its catalogue; None: never held
        out): on each group's routes as predicted by the model fitted the same way on every other route, since a
        router meets catalogues its decision model was not fitted on and is more confident there than it should be
        (BENCHMARKS.md, "Calibrated per part"); without groups, on the fitting routes themselves.
        """
        settings = {"l2": l2, "balance_kinds": balance_kinds, "kind_weights": kind_weights,
                    "choose_operating_point": choose_operating_point}
        given = (list(examples), query_vectors, query_classifier)
        query_weights, query_bias = None, 0.0
        if query_vectors is not None:
            vectors = np.asarray(query_vectors, dtype=np.float64)
            if query_classifier is None:
                query_classifier = _fit_query_classifier(vectors, [e.kind != "out_of_scope" for e in examples])
            query_weights, query_bias = np.asarray(query_classifier[0], dtype=np.float64), float(query_classifier[1])
            scores = vectors @ query_weights + query_bias
            examples = [replace(e, evidence=replace(e.evidence, needs_tool=float(v))) for e, v in zip(examples, scores)]
        usable = [e for e in examples if e.evidence.candidates and
                  (e.expected is None or e.expected in e.evidence.names)]
        if len(usable) < 10:
            raise ConfigError(f"a decision model needs at least 10 usable labelled routes, got {len(usable)} "
                              "(a case whose right tool was not retrieved cannot teach the decision)")
        data = _Design.build(usable)
        weights = _kind_weights([e.kind for e in usable]) if balance_kinds else np.ones(len(usable))
        if kind_weights:
            weights = weights * np.array([kind_weights.get(e.kind, 1.0) for e in usable])
        c_mean, c_scale = _standardiser(data.x[data.mask])
        n_mean, n_scale = _standardiser(data.z)
        n_mean[0], n_scale[0] = 0.0, 1.0  # the bias stays a bias
        model = cls(np.zeros(len(CANDIDATE_FEATURES)), np.zeros(len(NONE_FEATURES)), c_mean, c_scale, n_mean, n_scale,
                    identity=dict(identity or {}), query_weights=query_weights, query_bias=query_bias)
        x = (data.x - c_mean) / c_scale
        z = (data.z - n_mean) / n_scale
        theta = _minimise(x, data.mask, z, data.labels, weights, l2)
        model.candidate_weights = theta[: len(CANDIDATE_FEATURES)]
        model.none_weights = theta[len(CANDIDATE_FEATURES):]
        curve = model._operating_curve(usable, weights)
        if choose_operating_point:
            best = max(curve, key=lambda point: (round(point["weighted_accuracy"], 6), -abs(point["offset"])))
            model.none_offset = best["offset"]
        if groups is not None and len({g for g in groups if g is not None}) > 1:
            calibration = model._fit_temperature(usable, small=False,
                                                 predicted=_predicted_by_the_others(*given, groups, settings))
            calibration["held_out_groups"] = len({g for g in groups if g is not None})
        else:
            calibration = model._fit_temperature(usable, small=False)
        model.report = {"examples": len(usable), "skipped_not_retrieved": len(examples) - len(usable),
                        "kinds": {k: sum(1 for e in usable if e.kind == k) for k in sorted({e.kind for e in usable})},
                        "l2": l2, "balance_kinds": balance_kinds, "kind_weights": dict(kind_weights or {}),
                        "none_offset": model.none_offset,
                        "fit_accuracy": _accuracy(model, usable, None), "calibration": calibration,
                        "risk_coverage": [p for p in curve if abs(p["offset"] * 2 - round(p["offset"] * 2)) < 1e-9]}
        return model

    def _fit_temperature(self, examples: Sequence[LabelledEvidence], *, small: bool,
                         predicted: tuple[list[np.ndarray], list[int]] | None = None) -> dict[str, Any]:
        """Set the main part's (or with ``small`` the small part's) temperature to the one that maximises the
        likelihood of ``examples`` (each counted once) under this model, after its weights and operating point; or,
        given ``predicted`` (utilities and right answers of routes predicted by models fitted without them), the
        likelihood of those. Returns it with the calibration error on ``examples`` before and after."""
        attribute = "small_temperature" if small else "temperature"
        setattr(self, attribute, 1.0)
        before = self._calibration_error(examples)
        setattr(self, attribute, _likelihood_temperature(*(predicted or self._utilities_and_labels(examples))))
        return {"temperature": getattr(self, attribute), "fit_ece_at_1": before,
                "fit_ece": self._calibration_error(examples)}

    def _utilities_and_labels(self, examples: Sequence[LabelledEvidence]) -> tuple[list[np.ndarray], list[int]]:
        utilities, labels = [], []
        for example in examples:
            cand, none = self.utilities(example.evidence)
            utilities.append(np.append(cand, none))
            names = example.evidence.names
            labels.append(names.index(example.expected) if example.expected is not None else len(names))
        return utilities, labels

    def _calibration_error(self, examples: Sequence[LabelledEvidence]) -> float:
        pairs = []
        for example in examples:
            probabilities = self.probabilities(example.evidence)
            best = int(np.argmax(probabilities))
            chosen = None if best == len(example.evidence.candidates) else example.evidence.candidates[best].name
            pairs.append((probabilities[best], chosen == example.expected))
        return expected_calibration_error(pairs)

    def _operating_curve(self, examples: Sequence[LabelledEvidence], weights: np.ndarray,
                         small: bool = False) -> list[dict[str, float]]:
        """Coverage (share of routes answered with a tool), risk (wrong among them) and accuracy per offset (of
        the main part, or with ``small`` of the small-catalogue part)."""
        attribute = "small_offset" if small else "none_offset"
        saved, curve = getattr(self, attribute), []
        try:
            for offset in np.round(np.arange(-4.0, 4.0001, 0.25), 2):
                setattr(self, attribute, float(offset))
                answered = wrong = 0
                correct_weight = 0.0
                for example, weight in zip(examples, weights):
                    predicted = self.decide(example.evidence)
                    answered += predicted is not None
                    wrong += predicted is not None and predicted != example.expected
                    correct_weight += weight * (predicted == example.expected)
                curve.append({"offset": float(offset), "coverage": answered / len(examples),
                              "risk": wrong / answered if answered else 0.0,
                              "weighted_accuracy": correct_weight / float(np.sum(weights))})
        finally:
            setattr(self, attribute, saved)
        return curve

    def decide(self, evidence: RouteEvidence) -> str | None:
        """The chosen candidate's name, or None for no tool."""
        probabilities = self.probabilities(evidence)
        best = int(np.argmax(probabilities))
        return None if best == len(evidence.candidates) else evidence.candidates[best].name

    # ------------------------------------------------------------ identity and files
    def check_matches(self, identity: dict[str, Any], where: str = "") -> None:
        """Refuse to use this model with another selector or embedder than it was fitted for."""
        for key, value in identity.items():
            mine = self.identity.get(key, value)
            if mine != value:
                raise DecisionMismatchError(
                    f"the decision model{where} was fitted for {key} {mine!r}, but the router uses {value!r}: "
                    "refit it for this selector with `gentool-router calibrate`, or pass decision=None")

    def to_json(self) -> dict[str, Any]:
        return {"format": DECISION_FORMAT, "version": DECISION_VERSION,
                "candidate_features": list(CANDIDATE_FEATURES), "none_features": list(NONE_FEATURES),
                "candidate_weights": self.candidate_weights.tolist(), "none_weights": self.none_weights.tolist(),
                "candidate_mean": self.candidate_mean.tolist(), "candidate_scale": self.candidate_scale.tolist(),
                "none_mean": self.none_mean.tolist(), "none_scale": self.none_scale.tolist(),
                "none_offset": self.none_offset, "temperature": self.temperature, "identity": self.identity,
                "report": self.report,
                "query_classifier": None if self.query_weights is None else
                {"weights": self.query_weights.tolist(), "bias": self.query_bias},
                "min_catalogue_tools": self.min_catalogue_tools,
                "small_catalogue": None if self.small_weights is None else
                {"weights": self.small_weights.tolist(), "offset": self.small_offset,
                 "temperature": self.small_temperature}}

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model as JSON, atomically (a temporary file renamed into place)."""
        from .persistence import write_json

        return write_json(path, self.to_json(), indent=1)

    @classmethod
    def from_json(cls, data: Any, where: str = "decision model") -> "DecisionModel":
        if not isinstance(data, dict) or data.get("format") != DECISION_FORMAT:
            raise ModelLoadError(f"{where} is not a gentool-router decision model")
        if data.get("version") != DECISION_VERSION or data.get("candidate_features") != list(CANDIDATE_FEATURES) \
                or data.get("none_features") != list(NONE_FEATURES):
            raise DecisionMismatchError(f"{where} has decision format version {data.get('version')} with other "
                                        f"features; this gentool-router reads version {DECISION_VERSION}: refit it "
                                        "with `gentool-router calibrate`")
        try:
            arrays = {key: np.asarray(data[key], dtype=np.float64) for key in
                      ("candidate_weights", "none_weights", "candidate_mean", "candidate_scale", "none_mean",
                       "none_scale")}
            offset = float(data.get("none_offset", 0.0))
            temperature = float(data.get("temperature", 1.0))  # files written before temperatures: 1
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelLoadError(f"{where} is corrupt: {exc}") from None
        sizes = {"candidate": len(CANDIDATE_FEATURES), "none": len(NONE_FEATURES)}
        for key, values in arrays.items():
            if values.shape != (sizes[key.split("_")[0]],) or not np.all(np.isfinite(values)):
                raise ModelLoadError(f"{where} is corrupt: {key} must hold {sizes[key.split('_')[0]]} finite numbers")
        if np.any(arrays["candidate_scale"] <= 0) or np.any(arrays["none_scale"] <= 0) or not math.isfinite(offset):
            raise ModelLoadError(f"{where} is corrupt: scales must be positive")
        if not (math.isfinite(temperature) and temperature > 0):
            raise ModelLoadError(f"{where} is corrupt: the temperature must be a positive number")
        identity = data["identity"] if isinstance(data.get("identity"), dict) else {}
        report = data["report"] if isinstance(data.get("report"), dict) else {}
        query = data.get("query_classifier")
        query_weights, query_bias = None, 0.0
        if query is not None:
            try:
                query_weights = np.asarray(query["weights"], dtype=np.float64)
                query_bias = float(query["bias"])
            except (KeyError, TypeError, ValueError) as exc:
                raise ModelLoadError(f"{where} is corrupt: query_classifier ({exc})") from None
            if query_weights.ndim != 1 or not np.all(np.isfinite(query_weights)) or not math.isfinite(query_bias):
                raise ModelLoadError(f"{where} is corrupt: query_classifier must hold finite numbers")
        minimum = data.get("min_catalogue_tools", 0)
        if isinstance(minimum, bool) or not isinstance(minimum, int) or minimum < 0:
            raise ModelLoadError(f"{where} is corrupt: min_catalogue_tools must be a non-negative integer")
        small = data.get("small_catalogue")
        small_weights, small_offset, small_temperature = None, 0.0, 1.0
        if small is not None:
            try:
                small_weights = np.asarray(small["weights"], dtype=np.float64)
                small_offset = float(small["offset"])
                small_temperature = float(small.get("temperature", 1.0))
            except (KeyError, TypeError, ValueError) as exc:
                raise ModelLoadError(f"{where} is corrupt: small_catalogue ({exc})") from None
            size = len(SMALL_CANDIDATE_FEATURES) + len(SMALL_NONE_FEATURES)
            if small_weights.shape != (size,) or not np.all(np.isfinite(small_weights)) \
                    or not math.isfinite(small_offset):
                raise ModelLoadError(f"{where} is corrupt: small_catalogue must hold {size} finite weights and an offset")
            if not (math.isfinite(small_temperature) and small_temperature > 0):
                raise ModelLoadError(f"{where} is corrupt: the small_catalogue temperature must be a positive number")
        return cls(**arrays, none_offset=offset, identity=identity, report=report, query_weights=query_weights,
                   query_bias=query_bias, min_catalogue_tools=minimum, small_weights=small_weights,
                   small_offset=small_offset, temperature=temperature, small_temperature=small_temperature)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "DecisionModel":
        """Read a file written by :meth:`save`; a missing, corrupt or outdated file is a clear error."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelLoadError(f"decision model not found: {path}") from None
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot read the decision model {path}: {exc}") from None
        return cls.from_json(data, str(path))


def selector_identity(model_path: Path | None, adapter_path: Path | None, embedder_id: str) -> dict[str, Any]:
    """What a decision model is fitted for: the selector's files (fingerprints), its prompt and tool-text
    versions, and the embedder whose similarities it weighs."""
    from .prompt import PROMPT_VERSION
    from .tool_text import TOOL_TEXT_VERSION

    return {"selector_model": file_fingerprint(model_path) if model_path else None,
            "selector_adapter": file_fingerprint(adapter_path) if adapter_path else None,
            "prompt_version": PROMPT_VERSION, "tool_text_version": TOOL_TEXT_VERSION, "embedder": embedder_id}


def default_decision() -> DecisionModel | None:
    """The decision model shipped for the packaged selector, or None where none was fitted yet."""
    return DecisionModel.load(DEFAULT_DECISION_FILE) if DEFAULT_DECISION_FILE.is_file() else None


# ---------------------------------------------------------------------------------------------- fitting helpers
@dataclass
class _Design:
    x: np.ndarray       # (n, k_max, candidate features), padded
    mask: np.ndarray    # (n, k_max): a real candidate
    z: np.ndarray       # (n, none features)
    labels: np.ndarray  # (n,): index of the right candidate, or k_max for no tool

    @classmethod
    def build(cls, examples: Sequence[LabelledEvidence]) -> "_Design":
        k_max = max(len(e.evidence.candidates) for e in examples)
        x = np.zeros((len(examples), k_max, len(CANDIDATE_FEATURES)))
        mask = np.zeros((len(examples), k_max), dtype=bool)
        z = np.zeros((len(examples), len(NONE_FEATURES)))
        labels = np.full(len(examples), k_max)
        for i, example in enumerate(examples):
            rows = candidate_features(example.evidence)
            x[i, : len(rows)] = rows
            mask[i, : len(rows)] = True
            z[i] = none_features(example.evidence)
            if example.expected is not None:
                labels[i] = example.evidence.names.index(example.expected)
        return cls(x, mask, z, labels)


def _small_features(evidence: RouteEvidence) -> tuple[np.ndarray, np.ndarray]:
    """The small-catalogue part's evidence: one row per candidate, and the no-tool row."""
    rows = np.array([[max(-GAP_CLIP, min(GAP_CLIP, c.selector_gap)), c.cosine] for c in evidence.candidates],
                    dtype=np.float64).reshape(-1, len(SMALL_CANDIDATE_FEATURES))
    top_cosine = max((c.cosine for c in evidence.candidates), default=0.0)
    z = np.array([1.0, max(-GAP_CLIP, min(GAP_CLIP, evidence.needs_tool)), top_cosine], dtype=np.float64)
    return rows, z


def _fit_query_classifier(vectors: np.ndarray, needs_tool: Sequence[bool], c: float = 1.0) -> tuple[np.ndarray, float]:
    """Logistic regression (scikit-learn) of "asks for a tool" on the query embedding."""
    from sklearn.linear_model import LogisticRegression

    labels = np.asarray(needs_tool, dtype=bool)
    if labels.all() or not labels.any():
        raise ConfigError("the query classifier needs both queries that ask for a tool and queries that do not")
    classifier = LogisticRegression(C=c, max_iter=3000).fit(vectors, labels)
    return classifier.coef_[0].astype(np.float64), float(classifier.intercept_[0])


def _standardiser(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = values.mean(axis=0)
    scale = values.std(axis=0)
    scale[scale < 1e-6] = 1.0
    return mean, scale


def _kind_weights(kinds: Sequence[str]) -> np.ndarray:
    counts = {k: kinds.count(k) for k in set(kinds)}
    weights = np.array([len(kinds) / (len(counts) * counts[k]) for k in kinds])
    return weights


def _minimise(x: np.ndarray, mask: np.ndarray, z: np.ndarray, labels: np.ndarray, weights: np.ndarray,
              l2: float) -> np.ndarray:
    """Penalised negative log-likelihood of the conditional logit, minimised with L-BFGS (scipy); ``z[:, 0]`` is
    the no-tool bias (a column of ones), left unpenalised."""
    from scipy.optimize import minimize

    n, k_max, fc = x.shape
    onehot = np.zeros((n, k_max + 1))
    onehot[np.arange(n), labels] = 1.0
    total = float(weights.sum())
    # every weight is shrunk but the no-tool bias (the first no-tool feature): it carries how often no tool is right
    penalty_mask = np.ones(fc + z.shape[1])
    penalty_mask[fc] = 0.0

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, v = theta[:fc], theta[fc:]
        utilities = np.concatenate([np.where(mask, x @ w, -np.inf), (z @ v)[:, None]], axis=1)
        top = utilities.max(axis=1, keepdims=True)
        exps = np.exp(utilities - top)
        sums = exps.sum(axis=1, keepdims=True)
        probabilities = exps / sums
        log_likelihood = (utilities[np.arange(n), labels] - top[:, 0] - np.log(sums[:, 0]))
        penalised = theta * penalty_mask
        loss = -float(weights @ log_likelihood) / total + 0.5 * l2 * float(penalised @ penalised) / total
        residual = (probabilities - onehot) * weights[:, None] / total
        grad_w = np.einsum("nk,nkf->f", residual[:, :k_max], x)
        grad_v = residual[:, k_max] @ z
        return loss, np.concatenate([grad_w, grad_v]) + l2 * penalised / total

    result = minimize(objective, np.zeros(fc + z.shape[1]), jac=True, method="L-BFGS-B",
                      options={"maxiter": 500})
    return result.x


def _predicted_by_the_others(examples: list[LabelledEvidence], query_vectors: Any,
                              query_classifier: tuple[np.ndarray, float] | None, groups: Sequence[str | None],
                              settings: dict[str, Any]) -> tuple[list[np.ndarray], list[int]]:
    """Each group's usable routes (utilities at temperature 1 and right answers) under the model fitted with
    ``settings`` on every other route (its own query classifier, unless one was given); routes of group None are
    always fitted on, never predicted."""
    if len(groups) != len(examples):
        raise ConfigError(f"groups must name one group per example: {len(groups)} for {len(examples)} examples")
    vectors = None if query_vectors is None else np.asarray(query_vectors, dtype=np.float64)
    utilities: list[np.ndarray] = []
    labels: list[int] = []
    for group in sorted({g for g in groups if g is not None}):
        others = [i for i, g in enumerate(groups) if g != group]
        model = DecisionModel.fit([examples[i] for i in others], **settings, query_classifier=query_classifier,
                                  query_vectors=None if vectors is None else vectors[others])
        model.temperature = 1.0
        held = [examples[i] if vectors is None else replace(examples[i], evidence=model.with_query(
            examples[i].evidence, vectors[i])) for i, g in enumerate(groups) if g == group]
        held = [e for e in held if e.evidence.candidates and (e.expected is None or e.expected in e.evidence.names)]
        more_utilities, more_labels = model._utilities_and_labels(held)
        utilities += more_utilities
        labels += more_labels
    return utilities, labels


def _likelihood_temperature(utilities: Sequence[np.ndarray], labels: Sequence[int]) -> float:
    """The temperature (within :data:`TEMPERATURE_BOUNDS`) that maximises the likelihood of the right answers."""
    from scipy.optimize import minimize_scalar

    def negative_log_likelihood(log_temperature: float) -> float:
        temperature = math.exp(log_temperature)
        total = 0.0
        for values, label in zip(utilities, labels):
            scaled = values / temperature
            top = scaled.max()
            total += top + math.log(float(np.exp(scaled - top).sum())) - scaled[label]
        return total / len(utilities)

    low, high = TEMPERATURE_BOUNDS
    result = minimize_scalar(negative_log_likelihood, bounds=(math.log(low), math.log(high)), method="bounded")
    return float(math.exp(result.x))


def expected_calibration_error(pairs: Sequence[tuple[float, bool]], bins: int = 10) -> float:
    """ECE of the chosen option's probability: the gap between confidence and accuracy, weighted over ten equal-width
    bins (``pairs``: the chosen option's probability and whether it was right)."""
    total, error = len(pairs), 0.0
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        chosen = [(p, ok) for p, ok in pairs if low < p <= high or (b == 0 and p == 0)]
        if chosen:
            confidence = sum(p for p, _ in chosen) / len(chosen)
            accuracy = sum(ok for _, ok in chosen) / len(chosen)
            error += len(chosen) / total * abs(confidence - accuracy)
    return error


def _accuracy(model: DecisionModel, examples: Iterable[LabelledEvidence], kind: str | None) -> float:
    chosen = [e for e in examples if kind is None or e.kind == kind]
    return sum(model.decide(e.evidence) == e.expected for e in chosen) / len(chosen) if chosen else float("nan")
