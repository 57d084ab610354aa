"""Exporting a trained model as a charanim model directory (or a LoRA folder)."""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path

from charanim import __version__
from charanim.config import to_yaml
from charanim.models.config import write_model_config
from charanim.training.recipe import Recipe


def _autoencoder_folder(recipe: Recipe) -> Path | None:
    if recipe.model.init and (Path(recipe.model.init) / "vae").is_dir():
        return Path(recipe.model.init) / "vae"
    return Path(recipe.model.autoencoder) if recipe.model.autoencoder else None


def _refiner_folder(recipe: Recipe) -> Path | None:
    from charanim.models.refiner import FOLDER

    folder = Path(recipe.model.init) / FOLDER if recipe.model.init else None
    return folder if folder is not None and folder.is_dir() else None


def export_model(backbone, recipe: Recipe, directory: Path, step: int) -> Path:
    """Write the (EMA-applied) model; a LoRA run writes the adapter in diffusers' format."""
    from charanim.training.trainer import recipe_hash

    scratch = directory.with_name(f".{directory.name}.incomplete")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    config = dataclasses.replace(backbone.config)
    run = {
        "trained_by": f"charanim {__version__}",
        "steps": step,
        "recipe_hash": recipe_hash(recipe),
        "data": recipe.data.manifest,
        "exported": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    if recipe.training.train_transformer or recipe.lora is not None:
        # a warm start's record of its adapters stays only where the adapters do
        kept = {k: v for k, v in config.provenance.items() if k != "adapters" or backbone.adapters}
        config.provenance = {**kept, **run}
    else:  # the transformer is model.init's, untouched: its provenance stays, the adapters' run is added
        adapters = {**run, "warm_start": recipe.model.init, "conditioners": list(backbone.adapters)}
        config.provenance = {**config.provenance, "adapters": adapters}
    if recipe.lora is not None:
        from charanim.training.lora import save_lora

        save_lora(backbone.transformer, recipe.lora.name, scratch)
        config.provenance["base_model"] = recipe.model.init
        config.provenance["lora"] = dataclasses.asdict(recipe.lora)
    else:
        backbone.transformer.save_pretrained(scratch / "transformer", safe_serialization=True)
        source = _autoencoder_folder(recipe)
        if source is not None:
            shutil.copytree(source, scratch / "vae")
        refiner = _refiner_folder(recipe)
        if config.refiner is not None and refiner is not None:
            # a model that names a refiner carries it; this one was trained on the warm
            # start's frames (its provenance names that denoiser), which a denoiser trained
            # on from there still draws nearly alike
            shutil.copytree(refiner, scratch / refiner.name)
    if backbone.adapters:  # trained adapters of channel/token/residual conditioners
        from charanim.models.backbones import ADAPTER_FOLDER
        from charanim.models.weights import save_safetensors

        (scratch / ADAPTER_FOLDER).mkdir()
        for name, (_, adapter) in backbone.adapters.items():
            save_safetensors(adapter.state_dict(), scratch / ADAPTER_FOLDER / f"{name}.safetensors")
    write_model_config(scratch, config)
    (scratch / "training_recipe.yaml").write_text(to_yaml(recipe))
    if directory.exists():
        shutil.rmtree(directory)
    scratch.rename(directory)
    return directory
