"""Injection of non-in-context conditions into a diffusers Wan transformer, without forking it.

Each conditioner whose site is ``channels``, ``tokens`` or ``residual`` owns an
adapter module built here; :class:`Injector` attaches the adapters to an unmodified
``WanTransformer3DModel`` with forward hooks:

- ``channels``: a strided Conv3d shaped like the patch embedding reads the extra
  latent channels; its output is added to the patch embedding's output;
- ``residual``: an MLP maps each latent frame's feature vector to the model width and
  adds it to every target token of that frame;
- ``tokens``: in every block, a decoupled cross-attention (IP-Adapter style) from the
  tokens to the condition vectors of the same latent frame is added to ``attn2``'s
  output.

Every adapter's last layer starts at zero, so attaching an untrained adapter leaves
the backbone's output exactly unchanged (tested), and training starts from the
pretrained behaviour.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from charanim.conditioning import InjectionSite


@dataclass(frozen=True)
class BackboneDims:
    """What an adapter needs to know about the transformer it attaches to."""

    inner_dim: int
    num_heads: int
    num_layers: int
    patch_size: tuple[int, int, int]
    latent_channels: int


def dims_of(transformer) -> BackboneDims:
    config = transformer.config
    return BackboneDims(
        inner_dim=config.num_attention_heads * config.attention_head_dim,
        num_heads=config.num_attention_heads,
        num_layers=config.num_layers,
        patch_size=tuple(config.patch_size),
        latent_channels=config.out_channels,
    )


class ChannelAdapter(nn.Module):
    """Extra patch-embedding inputs: ``[B, C, T, H, W]`` -> ``[B, D, T', H', W']``."""

    def __init__(self, in_channels: int, dims: BackboneDims):
        super().__init__()
        self.proj = nn.Conv3d(
            in_channels, dims.inner_dim, dims.patch_size, stride=dims.patch_size, bias=False
        )
        nn.init.zeros_(self.proj.weight)

    def forward(self, extra: torch.Tensor) -> torch.Tensor:
        return self.proj(extra)


class ResidualAdapter(nn.Module):
    """Per-latent-frame features ``[B, T', Df]`` -> ``[B, D, T', 1, 1]`` added to every token of the frame."""

    def __init__(self, feature_dim: int, dims: BackboneDims):
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(feature_dim),
            nn.Linear(feature_dim, dims.inner_dim),
            nn.SiLU(),
            nn.Linear(dims.inner_dim, dims.inner_dim),
        )
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features).permute(0, 2, 1)[..., None, None]


class FrameCrossAttention(nn.Module):
    """Cross-attention from video tokens to condition vectors, restricted by a mask."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(dim, dim)
        self.to_k = nn.Linear(dim, dim)
        self.to_v = nn.Linear(dim, dim)
        self.to_out = nn.Linear(dim, dim)
        nn.init.zeros_(self.to_out.weight)
        nn.init.zeros_(self.to_out.bias)

    def forward(self, hidden: torch.Tensor, context: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = hidden.shape

        def heads(x):
            return x.view(batch, -1, self.heads, dim // self.heads).transpose(1, 2)

        q, k, v = heads(self.to_q(hidden)), heads(self.to_k(context)), heads(self.to_v(context))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None])
        return self.to_out(out.transpose(1, 2).reshape(batch, tokens, dim))


class TokenAdapter(nn.Module):
    """One :class:`FrameCrossAttention` per transformer block, fed by projected condition
    vectors. Each video token attends to the condition vectors of its own latent frame
    plus a learned null vector (so reference tokens, which have none, stay defined)."""

    def __init__(self, feature_dim: int, dims: BackboneDims):
        super().__init__()
        self.proj_in = nn.Sequential(nn.LayerNorm(feature_dim), nn.Linear(feature_dim, dims.inner_dim))
        self.null = nn.Parameter(torch.zeros(1, 1, dims.inner_dim))
        self.layers = nn.ModuleList(
            FrameCrossAttention(dims.inner_dim, dims.num_heads) for _ in range(dims.num_layers)
        )

    def context(self, features: torch.Tensor) -> torch.Tensor:
        """``[B, M, Df]`` -> ``[B, 1 + M, D]`` (null first)."""
        projected = self.proj_in(features)
        return torch.cat([self.null.expand(projected.shape[0], -1, -1).to(projected.dtype), projected], dim=1)


def build_adapter(
    site: InjectionSite, dims: BackboneDims, channels: int = 0, feature_dim: int = 0
) -> nn.Module:
    if site is InjectionSite.CHANNELS:
        return ChannelAdapter(channels, dims)
    if site is InjectionSite.RESIDUAL:
        return ResidualAdapter(feature_dim, dims)
    if site is InjectionSite.TOKENS:
        return TokenAdapter(feature_dim, dims)
    raise ValueError(f"site {site.value} has no adapter (in-context conditions use the layout)")


@dataclass
class InjectionInput:
    """What one adapter receives for one forward pass (already batched, in the packed layout).

    - channels: ``extra`` ``[B, C, T, H, W]`` on the packed latent grid;
    - residual: ``features`` ``[B, T', Df]`` per frame of the token grid (packed latent
      frames // the temporal patch) and ``token_mask`` ``[B, 1, T', H', W']`` (1 on target
      tokens);
    - tokens: ``features`` ``[B, M, Df]``, ``feature_frames`` ``[M]`` (token-grid frame of
      each vector) and ``token_frames`` ``[N]`` (token-grid frame of each video token,
      -1 = none).
    """

    extra: torch.Tensor | None = None
    features: torch.Tensor | None = None
    token_mask: torch.Tensor | None = None
    feature_frames: torch.Tensor | None = None
    token_frames: torch.Tensor | None = None


class Injector:
    """Attaches adapters to a transformer with forward hooks for as long as it lives.

    Set the inputs for each forward pass with :meth:`feeding`; with no inputs set
    (or an input of ``None``) the adapters add nothing.
    """

    def __init__(self, transformer: nn.Module, adapters: dict[str, tuple[InjectionSite, nn.Module]]):
        self.transformer = transformer
        self.adapters = adapters
        self._inputs: dict[str, InjectionInput] = {}
        self._handles: list = []
        if any(site in (InjectionSite.CHANNELS, InjectionSite.RESIDUAL) for site, _ in adapters.values()):
            self._handles.append(
                transformer.patch_embedding.register_forward_hook(self._after_patch_embedding)
            )
        if any(site is InjectionSite.TOKENS for site, _ in adapters.values()):
            for index, block in enumerate(transformer.blocks):
                self._handles.append(block.attn2.register_forward_hook(self._token_hook(index)))

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    @contextlib.contextmanager
    def feeding(self, inputs: dict[str, InjectionInput]) -> Iterator[None]:
        self._inputs = inputs
        try:
            yield
        finally:
            self._inputs = {}

    def _after_patch_embedding(self, module, args, output):
        for name, (site, adapter) in self.adapters.items():
            given = self._inputs.get(name)
            if given is None:
                continue
            if site is InjectionSite.CHANNELS and given.extra is not None:
                output = output + adapter(given.extra.to(output.dtype)).to(output.dtype)
            elif site is InjectionSite.RESIDUAL and given.features is not None:
                residual = adapter(given.features.to(output.dtype))
                output = output + residual * given.token_mask.to(output.dtype)
        return output

    def _token_hook(self, index: int):
        def hook(module, args, output):
            hidden = args[0]
            for name, (site, adapter) in self.adapters.items():
                given = self._inputs.get(name)
                if site is not InjectionSite.TOKENS or given is None or given.features is None:
                    continue
                context = adapter.context(given.features.to(hidden.dtype))
                mask = frame_attention_mask(given.token_frames, given.feature_frames, hidden.device)
                mask = mask.expand(hidden.shape[0], -1, -1)
                output = output + adapter.layers[index](hidden, context, mask).to(output.dtype)
            return output

        return hook


def frame_attention_mask(token_frames: torch.Tensor, feature_frames: torch.Tensor, device) -> torch.Tensor:
    """``[1, N, 1 + M]`` booleans: token n may attend the null vector and the condition
    vectors of its own latent frame."""
    same = token_frames.to(device)[:, None] == feature_frames.to(device)[None, :]
    same &= token_frames.to(device)[:, None] >= 0
    null = torch.ones(same.shape[0], 1, dtype=torch.bool, device=device)
    return torch.cat([null, same], dim=1)[None]
