"""Speed options, through diffusers' own mechanisms: the first-block cache (skip the
rest of the transformer on a step whose first block changed less than a threshold
since the previous step) and ``torch.compile`` of the repeated transformer blocks
(compiled once, reused by every block: short compile times)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from charanim.errors import IncompatibleError, InvalidOptionError

CACHES = ("none", "first-block")


@dataclass
class SpeedSettings:
    cache: str = "none"
    #: relative change of the first block's output below which the other blocks are skipped
    cache_threshold: float = 0.05
    compile: bool = False

    def validate(self) -> None:
        if self.cache not in CACHES:
            raise InvalidOptionError(f"Unknown --cache '{self.cache}'; use one of {', '.join(CACHES)}.")
        if not 0 < self.cache_threshold < 1:
            raise InvalidOptionError("--cache-threshold must be between 0 and 1.")


def apply_speed(backbone, settings: SpeedSettings) -> list[str]:
    settings.validate()
    done = []
    transformers = [backbone.transformer]
    second = getattr(getattr(backbone, "pipe", None), "transformer_2", None)
    if second is not None:
        transformers.append(second)
    if settings.cache == "first-block":
        from diffusers import FirstBlockCacheConfig

        for transformer in transformers:
            if not hasattr(transformer, "enable_cache"):
                raise IncompatibleError(
                    f"--cache first-block: {backbone.family} models do not support diffusers' caches."
                )
            transformer.enable_cache(FirstBlockCacheConfig(threshold=settings.cache_threshold))
        backbone.cache_enabled = True
        done.append(f"cache=first-block@{settings.cache_threshold:g}")
    if settings.compile:
        for transformer in transformers:
            if not getattr(transformer, "_repeated_blocks", None):
                raise IncompatibleError(
                    f"--compile: {backbone.family} models name no repeated blocks to compile."
                )
            transformer.compile_repeated_blocks(dynamic=True)
        done.append("compile=repeated-blocks")
    return done


def cache_context(backbone, name: str):
    """The context diffusers' cache hooks key their state by (one per guidance pass);
    nothing when no cache is enabled."""
    if getattr(backbone, "cache_enabled", False):
        return backbone.transformer.cache_context(name)
    return contextlib.nullcontext()


def reset_cache(backbone) -> None:
    """Forget cached residuals (a new window starts from pure noise)."""
    if getattr(backbone, "cache_enabled", False):
        backbone.transformer._reset_stateful_cache()
