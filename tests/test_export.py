"""GGUF export of a trained selector: layout, parity with transformers, quantization, clear errors.

The tests over a trained run (``tiny_run``: training) or the base model's weights are slow; the error and option
checks need no model."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")

from gentool_router.errors import ModelLoadError, ModelNotFoundError  # noqa: E402
from gentool_router.models import base_selector_gguf  # noqa: E402
from gentool_router.prompt import PROMPT_VERSION  # noqa: E402
from gentool_router_quantize.adapter import permute_rotary_rows, read_base  # noqa: E402
from gentool_router_quantize.lora import export_lora_gguf  # noqa: E402
from gentool_router_quantize.writing import ExportError  # noqa: E402

from conftest import tiny_records  # noqa: E402

PARITY_RECORDS = 8


@pytest.fixture(scope="module")
def merged_f16(tiny_run, tmp_path_factory):
    """The tiny run merged into the base at f16, written once for the tests that read or quantize it."""
    from gentool_router_quantize.merge import export_merged_gguf

    return export_merged_gguf(tiny_run / "adapter", tmp_path_factory.mktemp("merged") / "f16.gguf")


@pytest.fixture(scope="module")
def reference(tiny_run):
    """transformers' probabilities for the tiny run on the first records: what every exported file must choose."""
    from gentool_router_quantize.parity import reference_probabilities

    return reference_probabilities(tiny_run / "adapter", tiny_records()[:PARITY_RECORDS])


@pytest.mark.slow
def test_rotary_permutation_maps_transformers_q_and_k_to_llama_cpp():
    """transformers un-permutes q/k when it loads the GGUF; our permutation must put them back exactly."""
    from gguf.quants import dequantize
    from safetensors.numpy import load_file

    from gentool_router_train.base_model import plain_base_folder

    folder = plain_base_folder()
    weights = load_file(folder / "model.safetensors")
    reader = gguf.GGUFReader(base_selector_gguf())
    tensors = {t.name: t for t in reader.tensors}
    base = read_base(base_selector_gguf())
    for layer in (0, 17):
        for hf, name, heads in (("q_proj", "attn_q", base.n_head), ("k_proj", "attn_k", base.n_head_kv)):
            t = tensors[f"blk.{layer}.{name}.weight"]
            from_gguf = dequantize(t.data, t.tensor_type).reshape(tuple(int(n) for n in reversed(list(t.shape))))
            ours = permute_rotary_rows(weights[f"model.layers.{layer}.self_attn.{hf}.weight"], heads)
            np.testing.assert_allclose(ours, from_gguf, atol=1e-6)


@pytest.mark.slow
def test_lora_gguf_has_llama_cpp_adapter_layout(tiny_run, tmp_path):
    out = export_lora_gguf(tiny_run / "adapter", tmp_path / "a.gguf")
    reader = gguf.GGUFReader(out)
    assert reader.get_field("general.type").contents() == "adapter"
    assert reader.get_field("adapter.type").contents() == "lora"
    assert reader.get_field("gentool.prompt_version").contents() == PROMPT_VERSION
    names = {t.name for t in reader.tensors}
    assert "blk.15.attn_q.weight.lora_a" in names and "blk.29.ffn_down.weight.lora_b" in names
    assert not any(n.startswith("blk.14.") for n in names)  # LoRA on layers 15-29 only
    a = next(t for t in reader.tensors if t.name == "blk.15.attn_q.weight.lora_a")
    assert [int(n) for n in a.shape] == [576, 16]  # GGUF order: (in, r)


@pytest.mark.slow
def test_exported_selectors_choose_what_transformers_chooses(tiny_run, merged_f16, reference, tmp_path):
    from gentool_router_quantize.merge import quantize_gguf
    from gentool_router_quantize.parity import check_parity

    records, merged = tiny_records()[:PARITY_RECORDS], merged_f16
    lora = export_lora_gguf(tiny_run / "adapter", tmp_path / "lora.gguf")
    for report in (check_parity("lora", reference, records, None, lora),
                   check_parity("f16", reference, records, merged, None)):
        assert report.agreement == 1.0, report.disagreements
        assert report.max_probability_gap < 0.05
    q8 = quantize_gguf(merged, tmp_path / "q8.gguf", "q8_0")
    assert 0 < q8.stat().st_size < merged.stat().st_size


@pytest.mark.slow
def test_q4_1_requantization_keeps_unadapted_base_tensors_bit_exact(tiny_run, merged_f16, tmp_path):
    """Quantizing the merge to the base's own Q4_1 rounds only the adapted tensors anew (merge.py's claim)."""
    from gentool_router_quantize.adapter import read_adapter
    from gentool_router_quantize.merge import quantize_gguf

    q4_1 = quantize_gguf(merged_f16, tmp_path / "q4_1.gguf", "q4_1")
    base = {t.name: t for t in gguf.GGUFReader(base_selector_gguf()).tensors}
    adapted = {p.gguf_name for p in read_adapter(tiny_run / "adapter", read_base(base_selector_gguf()).n_blocks).pairs}
    unchanged, changed = [], []
    for tensor in gguf.GGUFReader(q4_1).tensors:
        original = base[tensor.name]
        same = (tensor.tensor_type == original.tensor_type
                and np.array_equal(np.asarray(tensor.data).view(np.uint8), np.asarray(original.data).view(np.uint8)))
        (unchanged if same else changed).append(tensor.name)
    assert adapted and set(changed) <= adapted
    assert len(unchanged) == len(base) - len(changed) > len(base) / 2


@pytest.mark.slow
def test_q4_k_m_can_keep_the_adapted_tensors_at_q8_0(tiny_run, merged_f16, tmp_path):
    """llama.cpp's per-tensor overrides: the LoRA-adapted tensors at q8_0, the rest by q4_k_m's own recipe."""
    from gentool_router_quantize.merge import adapted_tensor_names, quantize_gguf

    merged = merged_f16
    adapted = set(adapted_tensor_names(tiny_run / "adapter"))
    kept = quantize_gguf(merged, tmp_path / "kept.gguf", "q4_k_m", keep_q8_0=adapted)
    plain = quantize_gguf(merged, tmp_path / "plain.gguf", "q4_k_m")
    q8 = gguf.GGMLQuantizationType.Q8_0
    kept_types = {t.name: t.tensor_type for t in gguf.GGUFReader(kept).tensors}
    plain_types = {t.name: t.tensor_type for t in gguf.GGUFReader(plain).tensors}
    assert adapted and all(kept_types[name] == q8 for name in adapted)
    assert any(plain_types[name] != q8 for name in adapted)
    assert all(kept_types[name] == plain_types[name] for name in set(kept_types) - adapted)
    assert plain.stat().st_size < kept.stat().st_size < merged.stat().st_size


@pytest.mark.slow
def test_mixed_export_keeps_base_tensors_and_chooses_what_transformers_chooses(tiny_run, reference, tmp_path):
    """q4_1-q8_0: unadapted tensors byte-identical to the base, adapted ones merged at q8_0, same choices."""
    from gentool_router_quantize.adapter import read_adapter
    from gentool_router_quantize.merge import export_merged_gguf
    from gentool_router_quantize.parity import check_parity

    mixed = export_merged_gguf(tiny_run / "adapter", tmp_path / "mixed.gguf", adapted_type="q8_0")
    base = {t.name: t for t in gguf.GGUFReader(base_selector_gguf()).tensors}
    adapted = {p.gguf_name for p in read_adapter(tiny_run / "adapter", read_base(base_selector_gguf()).n_blocks).pairs}
    for tensor in gguf.GGUFReader(mixed).tensors:
        if tensor.name in adapted:
            assert tensor.tensor_type == gguf.GGMLQuantizationType.Q8_0, tensor.name
        else:
            original = base[tensor.name]
            assert tensor.tensor_type == original.tensor_type
            assert np.asarray(tensor.data).tobytes() == np.asarray(original.data).tobytes(), tensor.name
    records = tiny_records()[:PARITY_RECORDS]
    report = check_parity("q4_1-q8_0", reference, records, mixed, None)
    assert report.agreement == 1.0, report.disagreements
    with pytest.raises(ValueError, match="q8_0 only"):
        export_merged_gguf(tiny_run / "adapter", tmp_path / "x.gguf", adapted_type="q4_0")
    assert not (tmp_path / "x.gguf").exists()

@pytest.mark.slow
def test_cli_mixed_export_alone_writes_no_f16_intermediate(tiny_run, tmp_path):
    from click.testing import CliRunner

    from gentool_router.cli import main

    result = CliRunner().invoke(main, ["export", str(tiny_run), "--out", str(tmp_path), "--no-lora",
                                       "--quantize", "q4_1-q8_0"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gentool-q4_1-q8_0.gguf"]


def test_cli_quantization_choices_are_the_exporters():
    from gentool_router.cli import export_command
    from gentool_router_quantize.merge import QUANT_TYPES

    option = next(p for p in export_command.params if p.name == "quant_types")
    assert tuple(option.type.choices) == QUANT_TYPES


def test_missing_adapter_is_a_clear_error(tmp_path):
    with pytest.raises(ModelNotFoundError, match="no trained adapter"):
        export_lora_gguf(tmp_path / "nothing", tmp_path / "a.gguf")


@pytest.mark.slow
def test_adapter_trained_on_another_base_is_refused(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    training = json.loads((run / "training.json").read_text())
    training["base_gguf_sha256"] = "0" * 64
    (run / "training.json").write_text(json.dumps(training))
    with pytest.raises(ModelLoadError, match="another base model"):
        export_lora_gguf(run / "adapter", tmp_path / "a.gguf")
    assert not (tmp_path / "a.gguf").exists()


@pytest.mark.slow
def test_unwritable_output_is_a_clear_error_and_leaves_nothing(tiny_run, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ExportError, match="cannot write"):
        export_lora_gguf(tiny_run / "adapter", blocker / "a.gguf")
    assert blocker.read_text() == "x"


def test_adapter_for_another_prompt_version_is_refused_before_loading(tmp_path):
    from gentool_router import LlamaSelector

    path = tmp_path / "old.gguf"
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string("adapter.type", "lora")
    writer.add_string("gentool.prompt_version", "1")
    writer.add_tensor("blk.0.attn_q.weight.lora_a", np.zeros((16, 576), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(ModelLoadError, match="prompt format version 1"):
        LlamaSelector(adapter_path=path)


def test_metadata_reader_rejects_a_truncated_file(tmp_path):
    from gentool_router.gguf_meta import read_gguf_metadata

    data = base_selector_gguf().read_bytes()[:200]
    (tmp_path / "cut.gguf").write_bytes(data)
    with pytest.raises(ModelLoadError, match="corrupt GGUF metadata"):
        read_gguf_metadata(tmp_path / "cut.gguf")


@pytest.mark.slow
def test_parity_command_checks_exported_files_against_transformers(tiny_run, tmp_path):
    from click.testing import CliRunner

    from gentool_router.cli import main

    cases = tmp_path / "cases.jsonl"
    cases.write_text("".join(json.dumps(r) + "\n" for r in tiny_records()[:4]))
    runner = CliRunner()
    export = runner.invoke(main, ["export", str(tiny_run), "--out", str(tmp_path), "--merged", "--base-f16"])
    assert export.exit_code == 0, export.output
    report_path = tmp_path / "parity.json"
    lora = str(tmp_path / "gentool-lora.gguf")
    result = runner.invoke(main, ["parity", str(tiny_run), "--cases", str(cases), "--gguf",
                                  str(tmp_path / "gentool-f16.gguf"), "--lora-gguf", lora,
                                  "--lora-base", str(tmp_path / "base-f16.gguf"), "--json", str(report_path)])
    assert result.exit_code == 0, result.output
    reports = json.loads(report_path.read_text())
    assert [r["name"] for r in reports] == ["gentool-f16.gguf", "base-f16.gguf + gentool-lora.gguf"]
    assert [r["cases"] for r in reports] == [4, 4] and all(r["agreement"] == 1.0 for r in reports)
    assert "same tool in 4/4 cases" in result.output
    lone_base = runner.invoke(main, ["parity", str(tiny_run), "--cases", str(cases), "--gguf",
                                     str(tmp_path / "gentool-f16.gguf"), "--lora-base", str(tmp_path / "base-f16.gguf")])
    assert lone_base.exit_code == 2 and "--lora-base needs --lora-gguf" in lone_base.output
    base_alone = runner.invoke(main, ["parity", str(tiny_run), "--cases", str(cases), "--base-only",
                                      "--lora-base", str(tmp_path / "base-f16.gguf")])
    assert base_alone.exit_code == 0, base_alone.output
    assert "base-f16.gguf alone: same tool in 4/4 cases" in base_alone.output
    mixed_up = runner.invoke(main, ["parity", str(tiny_run), "--cases", str(cases), "--base-only", "--lora-gguf", lora])
    assert mixed_up.exit_code == 2 and "--base-only compares base models alone" in mixed_up.output
    missing = runner.invoke(main, ["parity", str(tiny_run), "--cases", str(cases)])
    assert missing.exit_code == 2 and "give --gguf and/or --lora-gguf" in missing.output
