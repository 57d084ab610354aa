"""tools/grow_transformer.py: a deeper transformer that starts out predicting the same."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file


def _tool():
    spec = importlib.util.spec_from_file_location(
        "grow_transformer", Path(__file__).parents[1] / "tools" / "grow_transformer.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def model(tmp_path: Path) -> Path:
    """A model folder with a trained-looking 3-block transformer: random weights everywhere,
    the output projections included, so every block changes what passes through it."""
    from diffusers import WanTransformer3DModel

    torch.manual_seed(0)
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=4,
        text_dim=16, freq_dim=16, ffn_dim=32, num_layers=3, rope_max_seq_len=32,
    )  # fmt: skip
    with torch.no_grad():
        for parameter in transformer.parameters():
            parameter.normal_(0, 0.2)
    folder = tmp_path / "model"
    transformer.save_pretrained(folder / "transformer")
    (folder / "charanim.json").write_text("{}")
    return folder


def test_a_grown_transformer_predicts_what_the_trained_one_did(model, tmp_path):
    tool = _tool()
    out = tmp_path / "grown"
    difference = tool.grow(model, out, 7)
    assert difference < 1e-5
    assert json.loads((out / "transformer" / "config.json").read_text())["num_layers"] == 7
    assert (out / "charanim.json").is_file()  # the rest of the model comes along
    old = load_file(model / "transformer" / tool.WEIGHTS)
    new = load_file(out / "transformer" / tool.WEIGHTS)
    # trained blocks 0, 1, 2 land in slots 0, 2, 4; the slots after each are its copies
    for slot, source in enumerate([0, 0, 1, 1, 2, 2, 2]):
        copy = slot in (1, 3, 5, 6)
        for name in ("attn1.to_q.weight", "attn1.to_out.0.weight", "ffn.net.2.bias", "scale_shift_table"):
            expected = old[f"blocks.{source}.{name}"]
            if copy and name.startswith(tool.OUTPUT_PROJECTIONS):
                expected = torch.zeros_like(expected)
            assert torch.equal(new[f"blocks.{slot}.{name}"], expected), (slot, name)
    assert torch.equal(new["proj_out.weight"], old["proj_out.weight"])


def test_the_check_sees_a_copy_that_is_not_the_identity(model, tmp_path):
    tool = _tool()
    out = tmp_path / "grown"
    tool.grow(model, out, 4)
    weights = out / "transformer" / tool.WEIGHTS
    state = load_file(weights)
    state["blocks.1.ffn.net.2.bias"] = torch.ones_like(state["blocks.1.ffn.net.2.bias"])
    save_file(state, weights)
    assert tool.check_same_output(model / "transformer", out / "transformer") > 0.1


def test_growing_refuses_what_it_cannot_do(model, tmp_path):
    tool = _tool()
    with pytest.raises(SystemExit, match="fewer than the model's 3"):
        tool.grow(model, tmp_path / "smaller", 2)
    assert not (tmp_path / "smaller").exists() and not (tmp_path / "smaller.partial").exists()
    (tmp_path / "taken").mkdir()
    with pytest.raises(SystemExit, match="exists"):
        tool.grow(model, tmp_path / "taken", 4)
    (model / "conditioners").mkdir()
    with pytest.raises(SystemExit, match="conditioner adapters"):
        tool.grow(model, tmp_path / "with-adapters", 4)
