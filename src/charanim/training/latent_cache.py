"""Latents of a frozen per-frame autoencoder, kept on disk between runs.

Encoding the target clips and references is what makes the first epoch of a latent
model's training slow (charanim-tiny: ~2.4 s per step until every clip has been seen,
~1.5 s after). The latents depend only on the autoencoder's encoder, the frames and the
size they are fitted to, so they are saved beside the manifest, in
``MANIFEST_DIR/.latents/<digest>/``, where the digest covers exactly those inputs. A
resumed run, or a new run on the same data with the same encoder, starts warm.

Entries are saved as safetensors shards, each written to a temporary file and renamed,
when the trainer checkpoints; a shard that cannot be read (a disk that filled up) is
skipped with a warning, and its clips are encoded again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import uuid
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

#: the autoencoder weights that decide the latents (the decoder does not)
ENCODER_PREFIXES = ("encoder.", "quant_conv.")


def cache_folder(manifest: Path, autoencoder, size: tuple[int, int], fit: str) -> Path:
    """Where latents of ``manifest``'s clips by ``autoencoder`` at ``size`` are kept."""
    digest = hashlib.sha256()
    digest.update(Path(manifest).read_bytes())
    digest.update(repr((size, fit, autoencoder.channels, autoencoder.spatial_factor)).encode())
    for name, tensor in sorted(autoencoder.vae.state_dict().items()):
        if name.startswith(ENCODER_PREFIXES):
            digest.update(name.encode())
            digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    for stats in autoencoder.latent_stats:
        digest.update(stats.numpy().tobytes())
    return Path(manifest).parent / ".latents" / digest.hexdigest()[:16]


class LatentCache:
    """``id -> (clip latents, reference latents)``, half precision, in memory; with a
    ``folder`` also loaded from and saved to disk. Thread-safe: the batch builder fills
    it in the prefetch thread while the trainer saves it."""

    def __init__(self, folder: Path | None = None):
        self.folder = folder
        self._entries: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._unsaved: set[str] = set()
        self._lock = threading.Lock()
        if folder is not None and folder.is_dir():
            self._load(folder)

    def _load(self, folder: Path) -> None:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        for shard in sorted(folder.glob("*.safetensors")):
            try:
                tensors = load_file(shard)
            except (OSError, SafetensorError) as exc:  # an unreadable shard is only a cache miss
                logger.warning("Skipping unreadable latent cache shard %s (%s).", shard, exc)
                continue
            for name, tensor in tensors.items():
                key, part = name.rsplit("/", 1)
                clip, reference = self._entries.get(key, (None, None))
                self._entries[key] = (tensor, reference) if part == "clip" else (clip, tensor)
        self._entries = {k: v for k, v in self._entries.items() if v[0] is not None and v[1] is not None}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> tuple[torch.Tensor, torch.Tensor] | None:
        return self._entries.get(key)

    def put(self, key: str, clip: torch.Tensor, reference: torch.Tensor) -> None:
        with self._lock:
            self._entries[key] = (clip.half().cpu().contiguous(), reference.half().cpu().contiguous())
            self._unsaved.add(key)

    def save(self) -> Path | None:
        """Write the entries added since the last save as one new shard (atomically)."""
        if self.folder is None:
            return None
        with self._lock:
            keys, self._unsaved = sorted(self._unsaved), set()
            tensors = {}
            for key in keys:
                clip, reference = self._entries[key]
                tensors[f"{key}/clip"], tensors[f"{key}/reference"] = clip, reference
        if not tensors:
            return None
        from safetensors.torch import save_file

        self.folder.mkdir(parents=True, exist_ok=True)
        shard = self.folder / f"{uuid.uuid4().hex}.safetensors"
        partial = shard.with_suffix(".partial")
        try:
            save_file(tensors, partial)
            os.replace(partial, shard)
        except OSError as exc:  # a full disk costs speed, not the run
            partial.unlink(missing_ok=True)
            logger.warning("Could not save the latent cache to %s (%s).", self.folder, exc)
            with self._lock:
                self._unsaved.update(keys)
            return None
        return shard
