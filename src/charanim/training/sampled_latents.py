"""A denoiser's own samples on training pairs, for a decoder that learns to decode them.

A decoder trained on its encoder's latents renders what the encoder makes, and a
denoiser's latents are not quite that: trained further on the encoder's latents alone,
charanim-tiny's decoder reconstructed better and decoded the model's samples no better
(docs/charanim-tiny-training.md, "the autoencoder's ceiling"). With
``training.sampled_share`` the autoencoder task decodes, for that share of every batch,
the latents ``model.denoiser`` itself samples for a training pair — as ``animate`` samples
them — against the pair's true frames: the decoder learns the best frame given what the
model made (what consistency decoders do for Stable Diffusion's autoencoder). The
samples are drawn once per run into RUN/sampled/, in chunks written atomically, so a
killed run keeps the chunks it finished.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from charanim.errors import CharanimError
from charanim.training.recipe import DataSpec

#: pairs per chunk file
CHUNK = 50


@dataclass
class SampledPairs:
    latents: torch.Tensor  #: the denoiser's latents, normalised as it samples them, half [N, C, F, h, w]
    target: np.ndarray  #: the true frames, uint8 [N, F, H, W, 3]
    mask: np.ndarray  #: the true frames' characters, bool [N, F, H, W]

    def __len__(self) -> int:
        return len(self.target)


def sample_pairs(denoiser: str, data: DataSpec, count: int, folder: Path, on_progress=None) -> SampledPairs:
    """The first ``count`` training pairs of ``data``, each sampled once by ``denoiser`` (a
    pose model's name or folder) as ``animate`` would, from its driver's retargeted
    skeleton; chunks already in ``folder`` are kept. ``on_progress(done, total)`` after
    each pair it samples (``total``: the pairs the missing chunks hold)."""
    from safetensors.torch import load_file

    folder.mkdir(parents=True, exist_ok=True)
    chunks = [(start, folder / f"chunk-{start // CHUNK:05d}.safetensors") for start in range(0, count, CHUNK)]
    missing = [(start, path) for start, path in chunks if not path.is_file()]
    if missing:
        _Sampler(denoiser, data).write(missing, count, on_progress)
    loaded = [load_file(path) for _, path in chunks]
    pairs = SampledPairs(
        torch.cat([c["latents"] for c in loaded]),
        np.concatenate([c["target"].numpy() for c in loaded]),
        np.concatenate([c["mask"].numpy() for c in loaded]).astype(bool),
    )
    if len(pairs) != count:
        raise CharanimError(
            f"'{folder}' holds {len(pairs)} sampled pairs, not {count}; remove it to sample anew."
        )
    return pairs


class _Sampler:
    def __init__(self, denoiser: str, data: DataSpec):
        from charanim.api import load_pipeline
        from charanim.conditioning import InjectionSite, OutputSpec
        from charanim.training.batch import BatchBuilder
        from charanim.training.data import ManifestData

        self.pipeline = load_pipeline(denoiser)
        in_context = [c for c in self.pipeline.conditioners if c.site is InjectionSite.IN_CONTEXT]
        if [c.name for c in in_context] != ["pose"]:
            raise CharanimError(
                f"model.denoiser '{denoiser}' must be a pose model: its samples are drawn from the "
                "training pairs' skeletons."
            )
        config = self.pipeline.backbone.config
        self.spec = OutputSpec(config.width, config.height, config.window_frames, config.fps)
        self.data = ManifestData(data, frames=self.spec.frames)
        self.builder = BatchBuilder(self.pipeline.backbone, in_context, self.spec, pose_source="retarget")

    def write(self, chunks: list[tuple[int, Path]], count: int, on_progress=None) -> None:
        from safetensors.torch import save_file

        from charanim.io.atomic import atomic_output

        if count > len(self.data):
            raise CharanimError(
                f"training.sampled_pairs is {count}, but the manifest has {len(self.data)} training pairs."
            )
        done, total = 0, sum(min(CHUNK, count - s) for s, _ in chunks)
        for start, path in chunks:
            made = []
            for index in range(start, min(start + CHUNK, count)):
                made.append(self._pair(index))
                if on_progress:  # a pair takes about a third of a second: report each
                    on_progress(done + len(made), total)
            arrays = {
                "latents": torch.stack([m[0] for m in made]).contiguous(),
                "target": torch.from_numpy(np.stack([m[1] for m in made])),
                "mask": torch.from_numpy(np.stack([m[2] for m in made]).astype(np.uint8)),
            }
            with atomic_output(path) as tmp:
                save_file(arrays, tmp)
            done += len(made)

    def _pair(self, index: int) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        """Pair ``index``: the denoiser's latents for its crop (one window), its true frames and masks."""
        from charanim.engine.pipeline import SamplingSettings
        from charanim.io.pixels import to_pixels

        builder = self.builder
        sample = self.data.sample(index, np.random.default_rng(index))
        condition, _, _ = builder.motion_condition(
            sample, np.random.default_rng(index), pose_source="retarget"
        )
        result = self.pipeline(
            to_pixels(builder._fit(sample.reference)),
            [condition],
            self.spec,
            prompt=sample.prompt,
            # the frames are not kept, only the latents: no detail pasted back
            settings=SamplingSettings(restore_detail=0.0),
            generator=torch.Generator().manual_seed(index),
            keep_latents=True,
        )
        # fitted as the frames are (masks are 0/255 or boolean: compare, then scale)
        masks = np.repeat((sample.target_mask[..., None] > 0).astype(np.uint8) * 255, 3, axis=-1)
        return (
            result.latents[0][0].half(),
            builder._fit(sample.target),
            builder._fit(masks)[..., 0] > 127,
        )
