"""The trained artefact's one home: run-folder files and GGUF metadata written by export, checked at load."""

from __future__ import annotations

import json

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")

from gentool_router.artefact import (  # noqa: E402
    GGUF_KEYS,
    ArtefactMetadata,
    base_checksum,
    read_training,
    write_training,
)
from gentool_router.errors import ModelLoadError  # noqa: E402
from gentool_router.models import base_selector_gguf  # noqa: E402
from gentool_router.persistence import sha256_file  # noqa: E402
from gentool_router.prompt import PROMPT_VERSION  # noqa: E402
from gentool_router.tool_text import TOOL_TEXT_VERSION  # noqa: E402


def _adapter_file(path, **keys):
    """A GGUF LoRA adapter file carrying ``keys`` (tensors: one zero pair, never applied: loading stops first)."""
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string("adapter.type", "lora")
    for key, value in keys.items():
        (writer.add_float32 if isinstance(value, float) else writer.add_string)(key, value)
    writer.add_tensor("blk.0.attn_q.weight.lora_a", np.zeros((16, 576), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_metadata_written_by_export_is_read_back_the_same(tmp_path):
    from gentool_router_quantize.lora import _add_provenance

    path = tmp_path / "a.gguf"
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_type(gguf.GGUFType.ADAPTER)
    _add_provenance(writer, {"no_tool_score": 0.75}, "ab" * 32)
    writer.add_tensor("x", np.zeros((2, 2), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    meta = ArtefactMetadata.from_gguf(path)
    assert meta == ArtefactMetadata(PROMPT_VERSION, TOOL_TEXT_VERSION, "ab" * 32, 0.75)
    assert dict(meta.gguf_items()) == {GGUF_KEYS["prompt_version"]: PROMPT_VERSION,
                                       GGUF_KEYS["tool_text_version"]: TOOL_TEXT_VERSION,
                                       GGUF_KEYS["base_sha256"]: "ab" * 32, GGUF_KEYS["no_tool_score"]: 0.75}


def test_a_plain_gguf_says_nothing_and_passes_every_check():
    meta = ArtefactMetadata.from_gguf(base_selector_gguf())
    assert meta == ArtefactMetadata()
    meta.check_runtime("base")
    meta.check_base("base", base_selector_gguf())


def test_training_json_round_trip_and_absence(tmp_path):
    assert read_training(tmp_path) == {}
    write_training(tmp_path, {"no_tool_score": 0.5, "dev": [1, 2]})
    assert read_training(tmp_path) == {"no_tool_score": 0.5, "dev": [1, 2]}
    assert json.loads((tmp_path / "training.json").read_text())["dev"] == [1, 2]
    assert not [p for p in tmp_path.iterdir() if p.name != "training.json"]  # no temporary file left


def test_base_checksum_is_the_file_sha256():
    assert base_checksum(base_selector_gguf()) == sha256_file(base_selector_gguf())


def test_adapter_trained_on_another_base_is_refused_at_load(tmp_path):
    from gentool_router import LlamaSelector

    path = _adapter_file(tmp_path / "other.gguf", **{GGUF_KEYS["base_sha256"]: "0" * 64})
    with pytest.raises(ModelLoadError, match="another base model"):
        LlamaSelector(adapter_path=path)


def test_a_re_encoded_base_stands_for_the_base_it_came_from(tmp_path):
    """``export --base-f16`` records its source's checksum: an adapter of that source is accepted over it."""
    from gentool_router.selector import _check_adapter_base

    source = base_checksum(base_selector_gguf())
    adapter = ArtefactMetadata(base_sha256=source)
    re_encoded = _adapter_file(tmp_path / "base-f16.gguf", **{GGUF_KEYS["base_sha256"]: source})
    _check_adapter_base(adapter, tmp_path / "a.gguf", re_encoded, ArtefactMetadata.from_gguf(re_encoded))
    with pytest.raises(ModelLoadError, match="another base model"):
        _check_adapter_base(adapter, tmp_path / "a.gguf", re_encoded, ArtefactMetadata())


def test_another_prompt_version_is_refused():
    with pytest.raises(ModelLoadError, match="prompt format version 0"):
        ArtefactMetadata(prompt_version="0").check_runtime("x.gguf")
