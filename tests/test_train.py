"""Two-stage GenTool training: example encoding and losses (logic), and a tiny real run through the CLI."""

from __future__ import annotations

import json
import math

import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402

from gentool_router.cli import main  # noqa: E402
from gentool_router.prompt import encode_parts, prefix_parts  # noqa: E402
from gentool_router_train.encode import encode_record, sample_balanced  # noqa: E402
from gentool_router_train.losses import ranking_loss, selection_loss  # noqa: E402

from conftest import SMALL_TOOLS, tiny_records, write_tiny_data  # noqa: E402


def _tokenize(text: str, special: bool) -> list[int]:
    return [ord(c) for c in text]  # a stand-in tokenizer: one id per character


def test_encoding_gives_one_prompt_per_candidate_and_the_gentool_answer():
    record = tiny_records()[0]
    example = encode_record(record, _tokenize)
    assert len(example.rows) == 4
    head = encode_parts(prefix_parts(), _tokenize)
    assert all(row[: len(head)] == tuple(head) for row in example.rows)
    assert example.target == 0 and example.ranking[:2] == (0, 4)  # the tool, then generate_response (index k)
    no_tool = encode_record(tiny_records()[1], _tokenize)
    assert no_tool.target == 3 == no_tool.ranking[0] and sorted(no_tool.ranking) == [0, 1, 2, 3]


def test_balanced_sampling_takes_case_types_equally_and_excludes():
    records = tiny_records() + [dict(r, id=f"x{i}", case_type="weak-to-strong") for i, r in enumerate(tiny_records()[:2])]
    chosen = sample_balanced(records, 6, seed=0)
    assert sorted(r["case_type"] for r in chosen).count("weak-to-strong") == 2
    again = sample_balanced(records, 100, seed=0, exclude={r["id"] for r in chosen})
    assert not {r["id"] for r in again} & {r["id"] for r in chosen}


def test_losses_match_their_definitions():
    scores = torch.tensor([2.0, -1.0, 0.5, 0.0])
    assert math.isclose(float(selection_loss(scores, 0)), -math.log(math.exp(2) / sum(math.exp(v) for v in scores.tolist())),
                        rel_tol=1e-6)
    order = [0, 3, 2, 1]
    values = scores.tolist()
    expected = []
    for i in range(len(order) - 1):
        rest = [values[j] for j in order[i:]]
        expected.append(-values[order[i]] + math.log(sum(math.exp(v) for v in rest)))
    assert math.isclose(float(ranking_loss(scores, order)), sum(expected) / len(expected), rel_tol=1e-6)
    assert float(ranking_loss(torch.tensor([9.0, 0.0, -9.0]), [0, 1, 2])) < 0.01  # a right, confident order


@pytest.mark.slow
def test_packed_scores_equal_one_prompt_per_candidate_through_the_real_model():
    """Training packs each record (head once, tails masked apart); it must score what the runtime's prompts score."""
    from gentool_router_train.base_model import load_base
    from gentool_router_train.encode import answer_ids, hf_tokenize
    from gentool_router_train.scoring import choice_scores

    model, tokenizer = load_base()
    model.eval()
    tokenize = hf_tokenize(tokenizer)
    yes, no = answer_ids(tokenize)
    examples = [encode_record(r, tokenize) for r in tiny_records()[:5]]  # 4 and 3 candidates, different lengths
    with torch.no_grad():
        packed = choice_scores(model, examples, (yes, no), 0, "cpu")
        for example, scores in zip(examples, packed):
            alone = []
            for row in example.rows:  # one full prompt per candidate, as llama.cpp sees it
                logits = model(input_ids=torch.tensor([row])).logits[0, -1]
                alone.append(float(logits[yes] - logits[no]))
            assert scores[:-1].tolist() == pytest.approx(alone, abs=2e-4)
            assert float(scores[-1]) == 0.0


@pytest.mark.slow
def test_tiny_training_through_the_cli_changes_the_selector(tmp_path):
    from gentool_router import LlamaSelector, render_tool

    data = write_tiny_data(tmp_path / "data")
    run = tmp_path / "run"
    args = ["train", "--data", str(data), "--out", str(run), "--ranking-examples", "8", "--selection-examples", "8",
            "--dev-examples", "4", "--eval-every", "0", "--learning-rate", "5e-3", "--threads", "2", "--quiet"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((run / "training.json").read_text())
    assert [h["stage"] for h in summary["dev"]] == ["ranking", "selection"]
    assert (run / "adapter" / "adapter_model.safetensors").is_file() and not (run / "checkpoint").exists()
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert all(math.isfinite(e["loss"]) for e in log if "loss" in e)

    names, texts = [t.name for t in SMALL_TOOLS[:4]], [render_tool(t) for t in SMALL_TOOLS[:4]]
    query = "Will it snow in Tromsø on Friday?"
    base = LlamaSelector(adapter_path=None, n_threads=2)
    tuned = LlamaSelector(adapter_path=run / "gentool-lora.gguf", n_threads=2)
    try:
        before = {c.name: c.score for c in base.select(query, names, texts, [0] * 4).ranking}
        after = {c.name: c.score for c in tuned.select(query, names, texts, [0] * 4).ranking}
    finally:
        base.close()
        tuned.close()
    assert max(abs(before[n] - after[n]) for n in before) > 1e-3

    again = CliRunner().invoke(main, args)
    assert again.exit_code == 1 and "already holds a finished run" in again.output


@pytest.mark.slow
def test_an_interrupted_run_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    from gentool_router_train import trainer

    config = trainer.TrainConfig(data_dir=write_tiny_data(tmp_path / "data"), ranking_examples=12,
                                 selection_examples=4, dev_examples=2, eval_every=0, checkpoint_every=1, threads=2)
    real_loss, calls = trainer.batch_loss, []

    def failing_loss(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C during step 3
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(trainer, "batch_loss", failing_loss)
    with pytest.raises(KeyboardInterrupt):
        trainer.train(config, tmp_path / "run", show_progress=False, log=lambda _: None)
    state = json.loads((tmp_path / "run" / "checkpoint" / "state.json").read_text())
    assert (state["stage_index"], state["step"]) == (0, 2)

    monkeypatch.setattr(trainer, "batch_loss", real_loss)
    messages = []
    summary = trainer.train(config, tmp_path / "run", show_progress=False, log=messages.append)
    assert any("resuming" in m and "step 2" in m for m in messages)
    steps = [e["step"] for e in map(json.loads, (tmp_path / "run" / "train_log.jsonl").read_text().splitlines())
             if e["stage"] == "ranking" and "loss" in e]
    assert steps == [3]  # ranking has 3 steps; the resumed run logged only the last
    assert summary["dev"][-1]["stage"] == "selection"


def test_no_tool_score_calibration_picks_the_threshold_that_fits_dev():
    from gentool_router_train import trainer
    from gentool_router_train.encode import Example

    # best candidate scores: two tool cases at 1.5 and 0.8 (right tool on top), two no-tool cases at 0.5 and -1
    cases = [(Example((), ((1,), (2,)), (0, 1, 2), 0, "plain"), [1.5, 0.2]),
             (Example((), ((1,), (2,)), (1, 0, 2), 1, "plain"), [0.1, 0.8]),
             (Example((), ((1,), (2,)), (2, 0, 1), 2, "no-tool"), [0.5, 0.3]),
             (Example((), ((1,), (2,)), (2, 0, 1), 2, "no-tool"), [-1.0, -2.0])]
    scores = [torch.tensor([*s, 0.0]) for _, s in cases]
    threshold, accuracy = trainer.calibrate_no_tool_score([e for e, _ in cases], scores)
    assert 0.5 <= threshold < 0.8 and accuracy == 1.0  # at 0 the no-tool case scoring 0.5 would be missed
