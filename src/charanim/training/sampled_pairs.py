"""A denoiser's own outputs on training pairs, for what learns to mend them.

Two tasks learn from what a trained model itself makes of a training pair, against
the pair's true frames:

- ``latents``: the latents ``model.denoiser`` samples, before decoding. A decoder trained
  on its encoder's latents renders what the encoder makes, and a denoiser's latents are
  not quite that (trained further on the encoder's latents alone, charanim-tiny's decoder
  reconstructed better and decoded the model's samples no better; docs/charanim-tiny-training.md,
  "the autoencoder's ceiling"). With ``training.sampled_share`` the autoencoder task
  decodes them: the decoder learns the best frame given what the model made (what
  consistency decoders do for Stable Diffusion's autoencoder).
- ``frames``: the finished frames, as ``animate`` writes them (without a refiner), with
  what the model was given beside them — the reference, the reference moved to each
  frame's skeleton, the pose maps, the reference's own — for the refiner task
  (:mod:`charanim.training.refiner`).

Either way a pair is sampled as ``animate`` samples it, from its driver's retargeted
skeleton. The samples are drawn once per run into RUN/sampled/, in chunks written
atomically, so a killed run keeps the chunks it finished and a resumed one loads no model.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from charanim.errors import CharanimError
from charanim.training.recipe import DataSpec

#: pairs per chunk file
CHUNK = 50
#: what each kind of sample keeps, beside the true frames and masks
KEPT = {
    "latents": ("latents",),
    "frames": ("frames", "warp", "motion", "reference", "bones", "reference_motion"),
}


@dataclass
class SampledPairs:
    target: np.ndarray  #: the true frames, uint8 [N, F, H, W, 3]
    mask: np.ndarray  #: the true frames' characters, bool [N, F, H, W]
    #: ``latents``: the denoiser's latents, normalised as it samples them, half [N, C, F, h, w]
    latents: torch.Tensor | None = None
    #: ``frames``: the model's finished frames, uint8 [N, F, H, W, 3]
    frames: np.ndarray | None = None
    #: ``frames``: the reference moved bone by bone to each frame's skeleton, uint8 [N, F, H, W, 3]
    warp: np.ndarray | None = None
    #: ``frames``: the in-context condition's motion video (the pose maps), uint8 [N, F, H, W, 3]
    motion: np.ndarray | None = None
    #: ``frames``: the reference, fitted to the output, uint8 [N, H, W, 3]
    reference: np.ndarray | None = None
    #: ``frames``: the pixels near the reference's bones (:func:`charanim.engine.refine.reference_bones`), uint8 [N, H, W]
    bones: np.ndarray | None = None
    #: ``frames``: the in-context condition's own reference map (the reference's pose map), uint8 [N, H, W, 3]
    reference_motion: np.ndarray | None = None
    #: how many pairs each manifest gave, in order (the pairs are the manifests' one after another)
    sources: list[int] | None = None

    def __len__(self) -> int:
        return len(self.target)


def joined(parts: list[SampledPairs]) -> SampledPairs:
    """Several manifests' sampled pairs as one set, each one's share in ``sources``."""
    if len(parts) == 1:
        return parts[0]
    sizes, arrays = [len(part) for part in parts], {}
    for key in SampledPairs.__dataclass_fields__:
        values = [getattr(part, key) for part in parts]
        if key == "sources" or values[0] is None:
            continue
        arrays[key] = torch.cat(values) if key == "latents" else np.concatenate(values)
        for part in parts:  # each part's copy is in the joined one now: free it as we go
            setattr(part, key, None)
    return SampledPairs(**arrays, sources=sizes)


class HeldOutFrames:
    """Sampled pairs drawn as single frames: the last tenth of each manifest's pairs held
    out to validate on."""

    def __init__(self, pairs: SampledPairs):
        self.pairs = pairs
        training, held_out, start = [], [], 0
        for size in pairs.sources or [len(pairs)]:
            kept = size - max(1, size // 10)
            training.extend(range(start, start + kept))
            held_out.extend(range(start + kept, start + size))
            start += size
        self.training_pairs, self.held_out_pairs = training, held_out

    def pick(self, rng: np.random.Generator) -> tuple[int, int]:
        """A training (pair, frame)."""
        pair = self.training_pairs[rng.integers(len(self.training_pairs))]
        return pair, int(rng.integers(self.pairs.target.shape[1]))

    def held_out_picks(self) -> list[tuple[int, int]]:
        return [(p, f) for p in self.held_out_pairs for f in range(self.pairs.target.shape[1])]


def sample_pairs(
    denoiser: str,
    data: DataSpec,
    count: int,
    folder: Path,
    on_progress=None,
    kind: str = "latents",
    warp_behind: str | None = None,
) -> SampledPairs:
    """The first ``count`` training pairs of ``data``, each sampled once by ``denoiser`` (a
    pose model's name or folder) as ``animate`` would, from its driver's retargeted
    skeleton; ``kind`` says what is kept (:data:`KEPT`), ``warp_behind`` what the kept warp
    shows behind moved limbs (None: the denoiser's own). Chunks already in ``folder`` are
    kept. ``on_progress(done, total)`` after each pair it samples (``total``: the pairs the
    missing chunks hold)."""
    folder.mkdir(parents=True, exist_ok=True)
    chunks = [(start, folder / f"chunk-{start // CHUNK:05d}.safetensors") for start in range(0, count, CHUNK)]
    missing = [(start, path) for start, path in chunks if not path.is_file()]
    # the warp kept, resolved: "the denoiser's own" and that same value named are one tag
    own = _denoiser_warp_behind(denoiser) if kind == "frames" else ""
    asked = (warp_behind or own) if kind == "frames" else ""
    if missing:
        _Sampler(denoiser, data, asked).write(missing, count, kind, on_progress)
    loaded, tags = zip(*(_load_chunk(path, own) for _, path in chunks), strict=True)
    if any(set(c) != {"target", "mask", *KEPT[kind]} for c in loaded):
        raise CharanimError(
            f"'{folder}' holds samples of another kind than {kind} (or an older layout of it); remove it to sample anew."
        )
    if any(tag != asked for tag in tags):
        raise CharanimError(
            f"'{folder}' holds pairs whose warp was drawn otherwise than this run's "
            "(model.refiner.warp_behind); remove it to sample anew."
        )
    joined = {key: torch.cat([c[key] for c in loaded]) for key in loaded[0]}
    pairs = SampledPairs(
        target=joined.pop("target").numpy(),
        mask=joined.pop("mask").numpy().astype(bool),
        **{key: value if key == "latents" else value.numpy() for key, value in joined.items()},
    )
    if len(pairs) != count:
        raise CharanimError(
            f"'{folder}' holds {len(pairs)} sampled pairs, not {count}; remove it to sample anew."
        )
    return pairs


def sampled_pairs_of(recipe, run: Path, on_progress=None, kind: str = "latents") -> SampledPairs:
    """A run's sampled pairs, sampled now where missing: the first ``training.sampled_pairs``
    of each manifest (RUN/sampled/ for the first, RUN/sampled-2/ and on for the others),
    each pair reported to ``on_progress`` as a stage before the steps, and every chunk in
    the run's log."""
    import time

    from charanim.training.trainer import _append_log

    manifests = recipe.data.manifests
    # the refiner's warp is the one it will read, which may not be its denoiser's
    behind = recipe.model.refiner.warp_behind if kind == "frames" else None
    parts = []
    for number, manifest in enumerate(manifests, start=1):
        stage = "Sampling pairs" + (f" ({number} of {len(manifests)})" if len(manifests) > 1 else "")

        def logged(done: int, total: int, stage=stage, manifest=manifest) -> None:
            if on_progress:  # minutes of sampling: say how far it is
                on_progress(done, total, {"stage": stage})
            if done % CHUNK == 0 or done == total:
                record = {"sampled_pairs": done, "of": total, "time": round(time.time(), 1)}
                _append_log(
                    run / "log.jsonl", record if len(manifests) == 1 else {**record, "manifest": manifest}
                )

        folder = run / ("sampled" if number == 1 else f"sampled-{number}")
        data = replace(recipe.data, manifest=manifest)
        parts.append(
            sample_pairs(
                recipe.model.denoiser, data, recipe.training.sampled_pairs, folder, logged, kind, behind
            )
        )
    return joined(parts)


def _denoiser_warp_behind(denoiser: str) -> str:
    """What ``denoiser``'s own warp shows behind moved limbs, from its charanim.json (no
    weights loaded: a resumed run whose chunks are all there loads no model)."""
    from charanim.models.backbones import resolve_model
    from charanim.models.config import ModelConfig, read_model_config
    from charanim.plugins import get_plugins

    _, folder = resolve_model(denoiser, get_plugins().backbones)
    config = read_model_config(folder)
    return (config or ModelConfig).warp_behind  # no charanim.json: the class's default


def _load_chunk(path: Path, own_warp: str) -> tuple[dict[str, torch.Tensor], str]:
    """A chunk's arrays and the ``warp_behind`` of the warp it keeps (``""``: none kept)."""
    from safetensors import safe_open

    with safe_open(path, "pt") as chunk:
        arrays = {key: chunk.get_tensor(key) for key in chunk.keys()}
        metadata = chunk.metadata() or {}
    tag = metadata.get("warp_behind", "model" if "warp" in arrays else "")
    # chunks from before the tag, and those tagged "model", kept the denoiser's own warp
    return arrays, own_warp if tag == "model" else tag


class _Sampler:
    def __init__(self, denoiser: str, data: DataSpec, warp_behind: str = ""):
        from charanim.api import load_pipeline
        from charanim.conditioning import InjectionSite, OutputSpec
        from charanim.training.batch import BatchBuilder
        from charanim.training.data import ManifestData

        self.pipeline = load_pipeline(denoiser)
        self.warp_behind = warp_behind  # the warp that frames keep, resolved; latents keep none
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

    def write(self, chunks: list[tuple[int, Path]], count: int, kind: str, on_progress=None) -> None:
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
                made.append(self._pair(index, kind))
                if on_progress:  # a pair takes about a third of a second: report each
                    on_progress(done + len(made), total)
            arrays = {key: torch.stack([m[key] for m in made]).contiguous() for key in made[0]}
            with atomic_output(path) as tmp:
                save_file(arrays, tmp, metadata={"warp_behind": self.warp_behind})
            done += len(made)

    def _pair(self, index: int, kind: str) -> dict[str, torch.Tensor]:
        """Pair ``index``, sampled for its crop (one window): what ``kind`` keeps, its true
        frames and masks."""
        from charanim.engine.pipeline import SamplingSettings
        from charanim.engine.reference_warp import warped_reference
        from charanim.engine.refine import reference_bones
        from charanim.io.pixels import to_pixels, to_uint8

        builder = self.builder
        sample = self.data.sample(index, np.random.default_rng(index))
        condition, _, _ = builder.motion_condition(
            sample, np.random.default_rng(index), pose_source="retarget"
        )
        reference = to_pixels(builder._fit(sample.reference))
        latents = kind == "latents"
        result = self.pipeline(
            reference,
            [condition],
            self.spec,
            prompt=sample.prompt,
            # latents: no detail pasted back (only the latents are kept); frames: as animate
            # makes them before a refiner, which is what the refiner will be given
            settings=SamplingSettings(restore_detail=0.0) if latents else SamplingSettings(refine=False),
            generator=torch.Generator().manual_seed(index),
            keep_latents=latents,
        )
        # fitted as the frames are (masks are 0/255 or boolean: compare, then scale)
        masks = np.repeat((sample.target_mask[..., None] > 0).astype(np.uint8) * 255, 3, axis=-1)
        kept = {
            "target": torch.from_numpy(np.ascontiguousarray(builder._fit(sample.target))),
            "mask": torch.from_numpy(builder._fit(masks)[..., 0] > 127).to(torch.uint8),
        }
        if latents:
            return {**kept, "latents": result.latents[0][0].half()}
        warp = warped_reference(condition, reference, self.spec.frames, self.warp_behind)
        bones = reference_bones(condition, (self.spec.width, self.spec.height))
        return {
            **kept,
            "frames": torch.from_numpy(result.frames),
            "warp": torch.from_numpy(to_uint8(warp)),
            "motion": torch.from_numpy(to_uint8(condition.video)),
            "reference": torch.from_numpy(np.ascontiguousarray(builder._fit(sample.reference))),
            "bones": bones[0].to(torch.uint8),
            "reference_motion": torch.from_numpy(to_uint8(condition.reference)[0]),
        }
