"""Load the components a diffusers (modular) model index names, from the directory's own
subfolders and local files only.

A modular pipeline's ``modular_model_index.json`` records where each component came
from (often a hub repository id). charanim never downloads, so it reads only the
library and class of each entry and loads ``<directory>/<subfolder>`` itself. Only
classes of diffusers and transformers are loaded, and model weights only from
safetensors.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import torch

from charanim.errors import ModelLoadError

INDEX_FILES = ("modular_model_index.json", "model_index.json")
LIBRARIES = ("diffusers", "transformers")


def read_index(path: Path) -> dict:
    for name in INDEX_FILES:
        index = path / name
        if index.is_file():
            try:
                return json.loads(index.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise ModelLoadError(f"'{index}' is not valid JSON ({exc}).") from None
    return {}


def load_components(path: Path, dtype: torch.dtype, keep_fp32: tuple[str, ...] = ("vae",)) -> dict:
    """Every component of the index whose subfolder exists, loaded from it."""
    components = {}
    for name, entry in read_index(path).items():
        if name.startswith("_") or not isinstance(entry, list) or len(entry) < 2 or entry[0] is None:
            continue
        library, class_name = entry[0], entry[1]
        spec = entry[2] if len(entry) > 2 and isinstance(entry[2], dict) else {}
        folder = path / (spec.get("subfolder") or name)
        if not folder.is_dir():
            continue  # made from config by the blocks (guider, processors)
        if library not in LIBRARIES:
            raise ModelLoadError(
                f"'{path}': component '{name}' comes from '{library}'; charanim loads diffusers and transformers classes only."
            )
        components[name] = _load_one(
            folder, library, class_name, name, torch.float32 if name in keep_fp32 else dtype
        )
    return components


def _load_one(folder: Path, library: str, class_name: str, name: str, dtype: torch.dtype):
    module = importlib.import_module(library)
    try:
        if "Tokenizer" in class_name or name == "tokenizer":
            from transformers import AutoTokenizer

            return AutoTokenizer.from_pretrained(folder, local_files_only=True)
        cls = getattr(module, class_name)
        if "Scheduler" in class_name or "Processor" in class_name:
            return cls.from_pretrained(folder, local_files_only=True)
        kwargs = {"local_files_only": True, "use_safetensors": True}
        kwargs["torch_dtype" if library == "diffusers" else "dtype"] = dtype
        return cls.from_pretrained(folder, **kwargs)
    except AttributeError:
        raise ModelLoadError(
            f"'{folder}': {library} has no class {class_name} (upgrade {library}?)."
        ) from None
    except (OSError, ValueError, TypeError) as exc:
        raise ModelLoadError(f"Could not load '{folder}': {str(exc).splitlines()[0]}") from None


def index_class(path: Path) -> str | None:
    """The ``_class_name`` of a directory's (modular) model index; None if it has none."""
    try:
        return read_index(path).get("_class_name")
    except ModelLoadError:
        return None


def load_pipeline_directory(pipeline_class, path: Path, dtype: torch.dtype):
    """A diffusers pipeline from local files only, the Wan VAE in fp32 whatever the
    transformer's dtype (bf16 shows banding); one clear line when it cannot load."""
    try:
        pipe = pipeline_class.from_pretrained(
            path, local_files_only=True, use_safetensors=True, dtype={"default": dtype, "vae": torch.float32}
        )
    except (OSError, ValueError, TypeError) as exc:
        raise ModelLoadError(
            f"Could not load the {pipeline_class.__name__} in '{path}': {str(exc).splitlines()[0]}"
        ) from None
    if pipe.transformer is None:
        raise ModelLoadError(f"'{path}' has no transformer/ folder.")
    return pipe
