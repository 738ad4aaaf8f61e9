"""Commands of export: export, parity (the train extra)."""


from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..artefact import ADAPTER_DIR, LORA_GGUF

if TYPE_CHECKING:
    pass

from ._common import _friendly_errors, _require_train_extra, main


def _adapter_folder(run_dir: Path) -> Path:
    """The peft adapter of a run: RUN_DIR/adapter from `train`, or RUN_DIR itself when given the folder."""
    return run_dir / ADAPTER_DIR if (run_dir / ADAPTER_DIR).is_dir() else run_dir


@main.command("export")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder for the GGUF files.")
@click.option("--lora/--no-lora", default=True, show_default=True,
              help="Write gentool-lora.gguf, a GGUF LoRA adapter over the base model.")
@click.option("--merged/--no-merged", default=False, show_default=True,
              help="Write gentool-f16.gguf, a standalone model with the LoRA merged in.")
@click.option("--quantize", "quant_types", multiple=True,
              type=click.Choice(["q8_0", "q4_k_m", "q4_1", "q4_0", "q5_k_m", "q6_k", "q4_1-q8_0"]),  # = QUANT_TYPES
              help="Also quantize the merged model (implies --merged, except q4_1-q8_0 alone); repeat for several. q4_1-q8_0 (ours): "
                   "the base's Q4_1 tensors unchanged, the LoRA-adapted ones at q8_0: the smallest file that "
                   "keeps the fine-tuning (see BENCHMARKS.md, 'Export').")
@click.option("--lora-dtype", type=click.Choice(["f32", "f16"]), default="f32", show_default=True)
@click.option("--base", "base_gguf", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Base model GGUF the adapter was trained on (default: the packaged one).")
@click.option("--base-f16", is_flag=True,
              help="Also write base-f16.gguf: the base alone, dequantized to f16, for checking the LoRA adapter "
                   "without the base's 4-bit arithmetic (`parity --lora-base`).")
@click.option("--keep-adapted/--no-keep-adapted", default=True, show_default=True,
              help="In llama.cpp quantizations (q4_k_m, ...), keep the tensors the LoRA changed at q8_0: at 4-5 bits "
                   "the rounding step is larger than most of the fine-tuning's change (BENCHMARKS.md, 'Export').")
@_friendly_errors
def export_command(run_dir: Path, out: Path, lora: bool, merged: bool, quant_types: tuple[str, ...],
                   lora_dtype: str, base_gguf: Path | None, base_f16: bool, keep_adapted: bool) -> None:
    """Export a trained run (RUN_DIR from `train`, or its adapter/ folder) to GGUF for llama.cpp."""
    _require_train_extra("export", "gguf")
    from gentool_router_quantize.lora import export_lora_gguf
    from gentool_router_quantize.merge import MIXED_TYPE, adapted_tensor_names, export_merged_gguf, quantize_gguf

    adapter = _adapter_folder(run_dir)
    llama_cpp_types = [q for q in quant_types if q != MIXED_TYPE]
    if lora:
        path = export_lora_gguf(adapter, out / LORA_GGUF, base_gguf=base_gguf, dtype=lora_dtype)
        click.echo(f"{path}  ({path.stat().st_size / 1e6:.1f} MB)")
    # the f16 merge is the input of llama.cpp-style quantization; q4_1-q8_0 alone is built from the base directly
    if merged or llama_cpp_types:
        f16 = export_merged_gguf(adapter, out / "gentool-f16.gguf", base_gguf=base_gguf)
        click.echo(f"{f16}  ({f16.stat().st_size / 1e6:.1f} MB)")
    keep = adapted_tensor_names(adapter, base_gguf=base_gguf) if keep_adapted and llama_cpp_types else []
    for quant_type in quant_types:
        target = out / f"gentool-{quant_type}.gguf"
        if quant_type == MIXED_TYPE:
            path = export_merged_gguf(adapter, target, base_gguf=base_gguf, adapted_type="q8_0")
        else:
            path = quantize_gguf(f16, target, quant_type, keep_q8_0=keep)
        click.echo(f"{path}  ({path.stat().st_size / 1e6:.1f} MB)")
    if base_f16:
        path = export_merged_gguf(None, out / "base-f16.gguf", base_gguf=base_gguf)
        click.echo(f"{path}  ({path.stat().st_size / 1e6:.1f} MB)")


@main.command("parity")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--cases", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Generated records with tools (e.g. data/gentool/test.jsonl).")
@click.option("--gguf", "gguf_files", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Merged GGUF(s) to check; repeatable.")
@click.option("--lora-gguf", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="GGUF LoRA adapter to check over the base model.")
@click.option("--lora-base", "lora_bases", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Base GGUF(s) to apply --lora-gguf over, e.g. base-f16.gguf from `export --base-f16`; "
                   "repeatable (default: the packaged Q4_1 base).")
@click.option("--base-only", is_flag=True,
              help="Compare the base model alone, no adapter (transformers against each --lora-base, default the "
                   "packaged one, in llama.cpp): the gap any adapter over that base inherits from its arithmetic.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True, help="Cases to compare.")
@click.option("--tolerance", type=click.FloatRange(min=0), default=0.05, show_default=True,
              help="Largest allowed difference in the chosen tool's probability.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), help="Write the report here.")
@_friendly_errors
def parity_command(run_dir: Path, cases: Path, gguf_files: tuple[Path, ...], lora_gguf: Path | None,
                   lora_bases: tuple[Path, ...], base_only: bool, limit: int, tolerance: float,
                   json_out: Path | None) -> None:
    """Check that exported GGUFs choose what the trained transformers model chooses (exit 1 if not)."""
    _require_train_extra("parity", "torch", "transformers", *(() if base_only else ("peft",)))
    from tqdm.auto import tqdm

    from gentool_router_quantize.parity import check_parity, reference_probabilities
    from gentool_router_train.encode import load_records

    if base_only and (gguf_files or lora_gguf is not None):
        raise click.UsageError("--base-only compares base models alone: give --lora-base (or nothing), not --gguf/--lora-gguf")
    if not base_only and not gguf_files and lora_gguf is None:
        raise click.UsageError("give --gguf and/or --lora-gguf")
    if not base_only and lora_bases and lora_gguf is None:
        raise click.UsageError("--lora-base needs --lora-gguf")
    adapter = None if base_only else _adapter_folder(run_dir)
    records = [r for r in load_records(cases) if r.get("tools")][:limit]

    def bar(name: str) -> Any:
        return lambda items: tqdm(items, desc=name, unit="case", total=len(records))

    reference = reference_probabilities(adapter, records, progress=bar("transformers"))
    candidates: list[tuple[str, Path | None, Path | None]] = [(p.name, p, None) for p in gguf_files]
    if base_only:
        candidates = [(f"{b.name if b is not None else 'packaged base'} alone", b, None) for b in lora_bases or (None,)]
    if lora_gguf is not None:
        for lora_base in lora_bases or (None,):
            base_name = lora_base.name if lora_base is not None else "packaged base"
            candidates.append((f"{base_name} + {lora_gguf.name}", lora_base, lora_gguf))
    reports = [check_parity(name, reference, records, model, lora, progress=bar(name))
               for name, model, lora in candidates]
    failed = False
    for report in reports:
        ok = report.agreement == 1.0 and report.max_probability_gap <= tolerance
        failed |= not ok
        click.echo(f"{report.name}: same tool in {report.same_choice}/{report.cases} cases, "
                   f"largest probability gap {report.max_probability_gap:.4f}  {'OK' if ok else 'FAIL'}")
    if json_out:
        json_out.write_text(json.dumps([r.to_dict() for r in reports], indent=2) + "\n", encoding="utf-8")
    if failed:
        sys.exit(1)
