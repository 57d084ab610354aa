"""Copy a trained charanim model into the package as a named model, weights in float16.

    python tools/ship_model.py runs/tiny-stage1/model src/charanim/assets/models/charanim-tiny
    python tools/ship_model.py MODEL TARGET --vae runs/tiny-vae-decoder/model
    python tools/ship_model.py MODEL TARGET --adapters src/charanim/assets/models/charanim-tiny

float16 halves what the repository and the wheel carry; loading casts back to the
runtime dtype (float32 on CPU), and the rounding is far below what the model resolves.
``--vae`` ships the model with another autoencoder: one whose decoder was fine-tuned with
its encoder frozen (``training.train_encoder: false``), so the latents the denoiser learnt
are unchanged — checked here: the encoders and the latent statistics must agree.
``--adapters`` carries another model's conditioner adapters (``conditioners/``: the
audio-face adapter) over to a transformer fine-tuned from the one they were trained
beside, with their conditioner names and guidance scales; provenance records where they
came from. Measure them again on the new transformer (benchmarks/lip_sync.py).
The model card (README.md) is kept if the target has one: it is written by hand from
the bench report (src/charanim/assets/models/charanim-tiny/README.md).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from charanim.models.config import read_model_config, write_model_config

WEIGHTS = "diffusion_pytorch_model.safetensors"
#: float16 rounding (a relative 2^-11) of a float32 encoder still counts as the same one
SAME = {"rtol": 1e-3, "atol": 1e-6}


def check_same_encoder(model_vae: Path, vae: Path) -> None:
    """Refuse an autoencoder whose latents differ from those the model was trained on."""
    old, new = load_file(model_vae / WEIGHTS), load_file(vae / WEIGHTS)
    keys = [k for k in old if k.startswith(("encoder.", "quant_conv."))]
    differing = [
        k for k in keys if k not in new or not torch.allclose(old[k].float(), new[k].float(), **SAME)
    ]
    old_config, new_config = (json.loads((f / "config.json").read_text()) for f in (model_vae, vae))
    for key in ("latents_mean", "latents_std", "latent_channels", "block_out_channels"):
        if old_config.get(key) != new_config.get(key):
            differing.append(f"config {key}")
    if differing or not keys:
        raise SystemExit(
            f"'{vae}' does not share the model's encoder ({', '.join(differing[:3]) or 'no encoder'} differ): "
            "only a decoder trained with training.train_encoder: false can replace it."
        )


def carry_adapters(model: Path, donor: Path) -> None:
    """Copy ``donor``'s conditioner adapters into ``model`` and name them in its charanim.json."""
    adapters = donor / "conditioners"
    if not adapters.is_dir():
        raise SystemExit(f"'{donor}' has no conditioners/ folder of adapters to carry over.")
    shutil.copytree(adapters, model / "conditioners", dirs_exist_ok=True)
    config, donor_config = read_model_config(model), read_model_config(donor)
    names = [p.stem for p in adapters.glob("*.safetensors")]
    config.conditioners += [
        n for n in donor_config.conditioners if n in names and n not in config.conditioners
    ]
    guidance = donor_config.sampler.conditioner_guidance
    config.sampler.conditioner_guidance.update({n: g for n, g in guidance.items() if n in names})
    config.provenance["adapters"] = {
        **donor_config.provenance.get("adapters", {}),
        "carried_from": str(donor),
    }
    write_model_config(model, config)


def ship(source: Path, target: Path, vae: Path | None = None, adapters: Path | None = None) -> None:
    if not source.is_dir():
        raise SystemExit(f"'{source}' is not a model folder.")
    if vae is not None:
        check_same_encoder(source / "vae", vae)
    scratch = target.with_name(f".{target.name}.incomplete")
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(source, scratch)
    if vae is not None:
        shutil.rmtree(scratch / "vae")
        shutil.copytree(vae, scratch / "vae")
    if adapters is not None:
        carry_adapters(scratch, adapters)
    for config_file in scratch.rglob("config.json"):
        # diffusers records the folder a warm-started part was loaded from: a path on the
        # training machine that means nothing where the model ships
        config = json.loads(config_file.read_text())
        if config.pop("_name_or_path", None) is not None:
            config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    for weights in scratch.rglob("*.safetensors"):
        tensors = load_file(weights)
        half = {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in tensors.items()}
        save_file(half, weights, metadata={"format": "pt"})
    card = target / "README.md"
    if card.is_file():
        shutil.copy2(card, scratch / "README.md")
    if target.exists():
        shutil.rmtree(target)
    scratch.rename(target)
    size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    print(f"{target}: {size / 1e6:.1f} MB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("source", type=Path, help="a model folder from 'charanim train'")
    parser.add_argument("target", type=Path, help="where the float16 copy goes")
    parser.add_argument("--vae", type=Path, help="an autoencoder folder whose decoder replaces the model's")
    parser.add_argument(
        "--adapters", type=Path, help="a model folder whose conditioner adapters to carry over"
    )
    args = parser.parse_args()
    ship(args.source, args.target, args.vae, args.adapters)
