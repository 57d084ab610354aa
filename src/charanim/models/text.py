"""Prompt encoders: none (a zero embedding), a transformers encoder, or a Wan pipeline's UMT5."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch


class TextEncoder(ABC):
    #: False for models without a text encoder: prompts are then ignored
    available: bool = True

    @abstractmethod
    def encode(self, prompts: list[str]) -> torch.Tensor:
        """``[B, L, D]`` embeddings, in the transformer's dtype and device."""

    def release(self) -> None:
        """Free the encoder's weights once the prompts are encoded (big encoders on GPU)."""
        return None


class NoTextEncoder(TextEncoder):
    """Models trained without text take one zero token (Wan needs a non-empty sequence)."""

    available = False

    def __init__(self, text_dim: int, device, dtype):
        self.text_dim, self.device, self.dtype = text_dim, device, dtype

    def encode(self, prompts):
        return torch.zeros(len(prompts), 1, self.text_dim, device=self.device, dtype=self.dtype)


class TransformersTextEncoder(TextEncoder):
    """Any transformers encoder (UMT5, T5, BERT-like) with its tokenizer, from local folders.

    Padding positions are zeroed, as Wan does, so the embedding of a prompt does not
    depend on how long the padding is.
    """

    def __init__(self, tokenizer, model, max_length: int, device, dtype, cache_size: int = 4096):
        self.tokenizer, self.model, self.max_length = tokenizer, model, max_length
        self.device, self.dtype = device, dtype
        self.cache_size = cache_size
        self._cache: dict[str, torch.Tensor] = {}  # training sees the same captions again and again

    @torch.no_grad()
    def encode(self, prompts):
        if len(self._cache) + len(set(prompts)) > self.cache_size:
            self._cache.clear()  # before looking up, so every prompt of this call is encoded
        missing = [p for p in dict.fromkeys(prompts) if p not in self._cache]
        if missing and getattr(self, "_released", False):  # released after an earlier clip: back it comes
            self.model.to(self.device)
            self._released = False
        if missing:
            tokens = self.tokenizer(
                missing,
                padding="max_length",
                max_length=self.max_length,
                truncation=True,
                return_tensors="pt",
            )
            ids, mask = tokens.input_ids.to(self.model.device), tokens.attention_mask.to(self.model.device)
            hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
            for prompt, embedding in zip(missing, hidden * mask[..., None], strict=True):
                self._cache[prompt] = embedding.to("cpu", self.dtype)
        return torch.stack([self._cache[p] for p in prompts]).to(self.device)

    def release(self):
        if self.model is not None and self.device.type == "cuda":
            self.model.to("cpu")
            self._released = True


class WanPipelineTextEncoder(TextEncoder):
    """The UMT5 encoder of a Wan diffusers pipeline, through the pipeline's own ``encode_prompt``."""

    def __init__(self, pipe, device, dtype, max_length: int = 512):
        self.pipe, self.device, self.dtype, self.max_length = pipe, device, dtype, max_length

    @torch.no_grad()
    def encode(self, prompts):
        if getattr(self, "_released", False):  # released after an earlier clip: back it comes
            self.pipe.text_encoder.to(self.device)
            self._released = False
        embeds, _ = self.pipe.encode_prompt(
            prompt=prompts,
            do_classifier_free_guidance=False,
            max_sequence_length=self.max_length,
            device=self.device,
        )
        return embeds.to(self.dtype)

    def release(self):
        if self.pipe.text_encoder is not None and self.device.type == "cuda":
            self.pipe.text_encoder.to("cpu")
            self._released = True
