"""The settings of the GenTool data simulation: one dataclass, one ``generate-data`` flag per field.

Kept apart from ``simulate`` (which needs numpy, FAISS and the corpora) so the CLI builds its flags without
importing the simulation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gentool_router.settings import DEFAULT_K

__all__ = ["SimulationConfig", "CANDIDATE_SOURCES"]

CANDIDATE_SOURCES = ("neighbours", "retrieval")


@dataclass(frozen=True)
class SimulationConfig:
    """Settings of the simulation; every field is a flag of ``gentool-router generate-data``."""

    seed: int = field(default=0, metadata={"help": "Random seed; the same seed gives byte-identical files."})
    k: int = field(default=DEFAULT_K, metadata={"help": "Tools per toolset (the paper's k = 5)."})
    heldout_tool_fraction: float = field(default=0.15, metadata={"help": "Share of tools with queries held out."})
    heldout_seen_query_fraction: float = field(
        default=0.5, metadata={"help": "Share of a held-out tool's queries trained as no-tool cases (seen queries)."})
    unseen_query_fraction: float = field(default=0.1, metadata={"help": "Share of seen tools' queries kept for test."})
    dev_fraction: float = field(default=0.03, metadata={"help": "Share of seen tools' queries kept for dev."})
    max_queries_per_tool: int = field(default=50, metadata={"help": "Cap on queries per tool (MetaTool is skewed)."})
    seen_query_test_cases: int = field(default=600, metadata={"help": "Train queries re-drawn as seen-query tests."})
    pair_share: float = field(default=0.4, metadata={"help": "Share of queries made into zero-to-one pairs."})
    weak_share: float = field(default=0.3, metadata={"help": "Share of queries made into weak-to-strong cases."})
    version_hint_share: float = field(default=0.5, metadata={
        "help": "Share of cases given version metadata: the strong tool supersedes its weak variant, or (so a "
                "hint is evidence, not the answer) a lone target is deprecated or a distractor is a v2."})
    multi_call_queries: bool = field(default=True, metadata={
        "help": "Also train on Seal-Tools' multi-call queries, one case per call with the query's other tools "
                "hidden (the corpus's Seal-Tools-style targets; train split only)."})
    exclude_public_queries: bool = field(default=True, metadata={
        "help": "Leave out the queries of the public evaluation sets (train/data/public-eval-queries.jsonl.gz), "
                "so their figures are held-out figures."})
    exclude_example_queries: bool = field(default=True, metadata={
        "help": "Leave out the bundled example queries (gentool-router demo) too. Off, seed 0 reproduces the "
                "data of the shipped adapter (gentool-v2) byte for byte."})
    candidates: str = field(default="neighbours", metadata={"choices": CANDIDATE_SOURCES,
        "help": "Where a case's other tools come from: 'neighbours' (the target's nearest tools by embedding, "
                "sampled) or 'retrieval' (the router's real top k for the query over the whole source catalogue, "
                "dense + BM25, in order: the hard negatives of use; a no-tool case is then a real near miss)."})
    neutral_pairs: bool = field(default=False, metadata={
        "help": "Weak-to-strong pairs without giveaways: either side keeps the original name (the other gets a "
                "suffix drawn alike for both), and version hints land on right and wrong answers alike."})
    same_source_candidates: bool = field(default=False, metadata={
        "help": "Draw a query's other tools from its own corpus only (MetaTool's 199 tools for a MetaTool query, "
                "Seal-Tools' for a Seal-Tools one) instead of both together, where a MetaTool answer (prose, no "
                "parameters) stood out among Seal-Tools distractors: the tool-text shortcut (TRAINING.md)."})
    no_tool_queries: bool = field(default=False, metadata={
        "help": "Add cases for requests that need no tool (train/data/no-tool-queries.jsonl), each over the "
                "retriever's top k: every 10th is a test case (scenario out_of_scope), every 20th (from the 5th) "
                "a dev case."})

    tools: str = field(default="", metadata={"path": True,
        "help": "Your own catalogue (JSONL, as `index` reads it): cases are also built around these tools, over "
                "the router's candidates from this catalogue, mixed with the bundled corpora "
                "(docs/OWN_CATALOGUE.md)."})
    queries: str = field(default="", metadata={"path": True,
        "help": "Labelled queries for --tools (JSONL: {\"query\", \"tool\"}, tool null for a request no tool "
                "serves); a tenth of the texts go to dev."})
    own_share: float = field(default=0.4, metadata={
        "help": "With --tools: the share of training cases built around your catalogue; the bundled corpora's "
                "training cases are sampled down to the rest."})
    near_miss_cases: bool = field(default=False, metadata={
        "help": "With --queries: a no-tool request that names the tool it comes close to (\"about\") becomes a "
                "near-miss case: that tool always among its candidates, and a case type of its own, so training "
                "draws up to as many near misses as cases of each other type."})

    def __post_init__(self) -> None:
        if self.queries and not self.tools:
            raise ValueError("--queries needs --tools (the catalogue the queries are labelled with)")
        if self.near_miss_cases and not self.queries:
            raise ValueError("--near-miss-cases needs --queries (the near misses are no-tool lines with \"about\")")
        if not 0 < self.own_share < 1:
            raise ValueError("--own-share must be between 0 and 1")
        if self.candidates not in CANDIDATE_SOURCES:
            raise ValueError(f"candidates must be one of {', '.join(CANDIDATE_SOURCES)}, not {self.candidates!r}")
        if self.no_tool_queries and self.candidates != "retrieval":
            raise ValueError("--no-tool-queries needs --candidates retrieval (their toolsets are retrieved)")
