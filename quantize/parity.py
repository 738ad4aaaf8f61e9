"""Parity of an exported selector: does llama.cpp pick what the trained transformers model picks?

For each case, the reference is the trained model in transformers (base + LoRA merged, fp32), reading the
label logits of the runtime's prompt exactly as the runtime selector does; the candidate is a GGUF (merged
export, or base + GGUF LoRA adapter) run by :class:`~gentool_router.selector.LlamaSelector`. We report how
often both choose the same tool, and the largest difference in the chosen label's probability.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

__all__ = ["ParityReport", "reference_probabilities", "check_parity"]


@dataclass
class ParityReport:
    """Agreement of one exported selector with the transformers reference."""

    name: str
    cases: int = 0
    same_choice: int = 0
    max_probability_gap: float = 0.0
    disagreements: list[dict[str, Any]] = field(default_factory=list)

    @property
    def agreement(self) -> float:
        return self.same_choice / self.cases if self.cases else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "cases": self.cases, "agreement": self.agreement,
                "max_probability_gap": self.max_probability_gap, "disagreements": self.disagreements}


def reference_probabilities(adapter_dir: Path | None, records: Sequence[dict[str, Any]],
                            base_gguf: Path | None = None, no_tool_score: float | None = None,
                            progress: Callable[[Iterable[Any]], Iterable[Any]] = lambda items: items,
                            ) -> list[dict[str, float]]:
    """Tool → probability for each record, from the transformers model (LoRA merged when given).

    ``generate_response`` gets ``no_tool_score``; by default the run's calibrated one from ``training.json`` next
    to the adapter folder, which is what every GGUF exported from the run carries (else the untrained 0).
    """
    import torch

    from gentool_router.artefact import read_training
    from gentool_router.prompt import NO_TOOL_SCORE, choice_probabilities
    from gentool_router.tools import NO_TOOL
    from gentool_router_train.base_model import load_base
    from gentool_router_train.encode import answer_ids, encode_record, hf_tokenize
    from gentool_router_train.scoring import choice_scores

    if no_tool_score is None:
        calibrated = read_training(Path(adapter_dir).parent).get("no_tool_score") if adapter_dir is not None else None
        no_tool_score = float(calibrated) if isinstance(calibrated, (int, float)) else NO_TOOL_SCORE
    model, tokenizer = load_base(base_gguf)
    if adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    model.eval()
    tokenize = hf_tokenize(tokenizer)
    answers = answer_ids(tokenize)
    results = []
    with torch.no_grad():
        for record in progress(records):
            example = encode_record(record, tokenize)
            scores = choice_scores(model, [example], answers, 0, "cpu")[0][:-1].tolist()
            names = [t["name"] for t in record["tools"]] + [NO_TOOL]
            results.append(dict(zip(names, choice_probabilities(scores, no_tool_score))))
    return results


def check_parity(name: str, reference: Sequence[dict[str, float]], records: Sequence[dict[str, Any]],
                 model_path: Path | None, adapter_path: Path | None,
                 progress: Callable[[Iterable[Any]], Iterable[Any]] = lambda items: items) -> ParityReport:
    """Compare a llama.cpp selector (GGUF, optional GGUF LoRA) with the reference probabilities."""
    from gentool_router.selector import LlamaSelector
    from gentool_router.tool_text import render_tool
    from gentool_router.tools import Tool

    selector = LlamaSelector(model_path, adapter_path=adapter_path)
    report = ParityReport(name)
    try:
        for record, expected in progress(zip(records, reference)):
            tools = [Tool.from_dict(t) for t in record["tools"]]
            selection = selector.select(record["query"], [t.name for t in tools], [render_tool(t) for t in tools],
                                        [0.0] * len(tools))
            got = {c.name: c.score for c in selection.ranking}
            want_choice = max(expected, key=expected.get)
            got_choice = selection.ranking[0].name
            report.cases += 1
            gap = abs(got[got_choice] - expected[got_choice])
            report.max_probability_gap = max(report.max_probability_gap, gap, abs(got[want_choice] - expected[want_choice]))
            if got_choice == want_choice:
                report.same_choice += 1
            else:
                report.disagreements.append({"id": record.get("id"), "reference": want_choice,
                                             "reference_p": expected[want_choice], "got": got_choice,
                                             "got_p": got[got_choice]})
    finally:
        selector.close()
    return report
