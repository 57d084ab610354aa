"""Tiny random models of the real architectures, saved to folders, for tests and benchmarks.

They are built from seeded random weights with real diffusers/transformers classes,
so loading, packing, guidance and decoding run the same code as the full models.
"""

from __future__ import annotations

from pathlib import Path

import torch

from charanim.models.config import ModelConfig, SamplerDefaults


def tiny_transformer(latent_channels: int = 3, seed: int = 0, **overrides):
    """A seeded tiny ``WanTransformer3DModel`` for the tiny in-context layout."""
    from diffusers import WanTransformer3DModel

    from charanim.models.tiny import tiny_transformer_config

    config = tiny_transformer_config(
        latent_channels=latent_channels,
        num_attention_heads=2,
        attention_head_dim=12,
        ffn_dim=32,
        num_layers=2,
        text_dim=16,
        freq_dim=16,
        rope_max_seq_len=64,
    )
    config.update(overrides)
    torch.manual_seed(seed)
    return WanTransformer3DModel(**config).eval()


def tiny_vae(seed: int = 0):
    from diffusers import AutoencoderKLWan

    torch.manual_seed(seed)
    z_dim = 4
    return AutoencoderKLWan(
        base_dim=8,
        z_dim=z_dim,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
        attn_scales=[],
        latents_mean=[0.0] * z_dim,
        latents_std=[1.0] * z_dim,
    ).eval()


def make_tiny_model(
    directory: Path,
    *,
    conditioners: tuple[str, ...] = ("rgb",),
    adapter_conditioners: dict | None = None,
    layout: str = "spatial",
    size: tuple[int, int] = (32, 32),
    window_frames: int = 8,
    window_overlap: int = 2,
    vae: bool = False,
    fps: float = 8.0,
    steps: int = 3,
    seed: int = 0,
    reference_timestep_zero: bool = True,
) -> Path:
    """Save a seeded random charanim-format model. ``adapter_conditioners`` maps the name
    of a channels/tokens/residual conditioner class to the class, to save (zero-init,
    perturbed to be non-trivial) adapter weights for it."""
    from charanim.engine.injection import build_adapter, dims_of
    from charanim.models.tiny import save_tiny_model

    autoencoder = tiny_vae(seed) if vae else None
    channels = autoencoder.config.z_dim if vae else 3
    patch = (1, 2, 2) if vae else (1, 4, 4)
    transformer = tiny_transformer(channels, seed, patch_size=patch)
    adapters = {}
    for name, cls in (adapter_conditioners or {}).items():
        adapter = build_adapter(
            cls.site,
            dims_of(transformer),
            channels=channels if cls.channels == 3 else cls.channels,
            feature_dim=cls.feature_dim or 0,
        )
        generator = torch.Generator().manual_seed(seed + 1)
        with torch.no_grad():  # trained adapters are not zero: give the last layers some weight
            for parameter in adapter.parameters():
                parameter.add_(0.05 * torch.randn(parameter.shape, generator=generator))
        adapters[name] = adapter
    config = ModelConfig(
        backbone="tiny",
        layout=layout,
        conditioners=list(conditioners) + list(adapters),
        width=size[0],
        height=size[1],
        fps=fps,
        window_frames=window_frames,
        window_overlap=window_overlap,
        reference_timestep_zero=reference_timestep_zero,
        sampler=SamplerDefaults(name="euler", steps=steps),
        provenance={"note": "random weights for tests"},
    )
    save_tiny_model(Path(directory), config, transformer, autoencoder, adapters)
    return Path(directory)


def _tiny_tokenizer(directory: Path):
    """A Unigram tokenizer trained offline on a few sentences (the hub's tiny ones are unreachable)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = [
        "a person waves the right hand",
        "a cartoon cat walks to the left",
        "the character jumps and turns around",
        "a red robot dances on a blue background",
    ] * 4
    tokenizer = Tokenizer(models.Unigram())
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=60, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>"
    )
    tokenizer.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
    fast.save_pretrained(directory)
    return fast


def _tiny_umt5(vocab_size: int):
    from transformers import UMT5Config, UMT5EncoderModel

    return UMT5EncoderModel(
        UMT5Config(
            vocab_size=vocab_size,
            d_model=16,
            d_kv=4,
            d_ff=32,
            num_layers=1,
            num_heads=2,
            relative_attention_num_buckets=8,
            pad_token_id=0,
            eos_token_id=1,
            decoder_start_token_id=0,
        )
    ).eval()


def _tiny_text(directory: Path, seed: int):
    """A tiny tokenizer (saved under ``directory``, removed again by ``_save_pipeline``) and UMT5."""
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = _tiny_tokenizer(directory / "_tokenizer")
    torch.manual_seed(seed)
    return tokenizer, _tiny_umt5(len(tokenizer))


#: the transformer shape every tiny Wan pipeline shares (4 latent channels, as tiny_vae)
TINY_WAN = dict(
    patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=2 * 4 + 4, out_channels=4,
    text_dim=16, freq_dim=16, ffn_dim=32, num_layers=2, rope_max_seq_len=64,
)  # fmt: skip


def _tiny_clip_vision():
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    vision = CLIPVisionModel(
        CLIPVisionConfig(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
            projection_dim=16,
        )
    ).eval()
    processor = CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}, do_center_crop=True
    )
    return vision, processor


def _save_pipeline(pipe, directory: Path) -> Path:
    import shutil

    pipe.save_pretrained(str(directory), safe_serialization=True)
    shutil.rmtree(directory / "_tokenizer")
    return directory


def make_tiny_wan_i2v(directory: Path, seed: int = 0, image_encoder: bool = True) -> Path:
    """Save a complete tiny ``WanImageToVideoPipeline`` (UMT5, CLIP vision, VAE, transformer)."""
    from diffusers import UniPCMultistepScheduler, WanImageToVideoPipeline, WanTransformer3DModel

    directory = Path(directory)
    tokenizer, text_encoder = _tiny_text(directory, seed)
    vae = tiny_vae(seed)
    vision, processor = _tiny_clip_vision() if image_encoder else (None, None)
    torch.manual_seed(seed)
    transformer = WanTransformer3DModel(
        **TINY_WAN,
        image_dim=16 if image_encoder else None,
    ).eval()
    scheduler = UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0
    )
    pipe = WanImageToVideoPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        scheduler=scheduler,
        image_processor=processor,
        image_encoder=vision,
        transformer=transformer,
    )
    return _save_pipeline(pipe, directory)


def make_tiny_wan_animate(directory: Path, seed: int = 0) -> Path:
    """Save a complete tiny ``WanAnimatePipeline``: the Wan2.2-Animate architecture (pose
    patch embedding, face motion encoder, face adapters) at test size, 16² face crops."""
    from diffusers import UniPCMultistepScheduler, WanAnimatePipeline, WanAnimateTransformer3DModel

    directory = Path(directory)
    tokenizer, text_encoder = _tiny_text(directory, seed)
    vae = tiny_vae(seed)
    vision, processor = _tiny_clip_vision()
    torch.manual_seed(seed)
    transformer = WanAnimateTransformer3DModel(
        **TINY_WAN,
        latent_channels=4,
        image_dim=16,
        motion_encoder_channel_sizes={"16": 8, "8": 8, "4": 8},
        motion_encoder_size=16,
        motion_style_dim=8,
        motion_dim=4,
        motion_encoder_dim=8,
        face_encoder_hidden_dim=8,
        face_encoder_num_heads=2,
        inject_face_latents_blocks=1,
        motion_encoder_batch_size=4,
    ).eval()
    scheduler = UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=5.0
    )
    pipe = WanAnimatePipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        scheduler=scheduler,
        image_processor=processor,
        image_encoder=vision,
        transformer=transformer,
    )
    return _save_pipeline(pipe, directory)


def make_tiny_wan_animate2(directory: Path, seed: int = 0, distilled: bool = False) -> Path:
    """Save a tiny Wan-Animate-2 modular pipeline (its CLIP width is fixed at 1280 and
    its input at 224², so the image encoder is the largest part, about 7 M parameters)."""
    import diffusers.modular_pipelines as modular
    from diffusers import FlowMatchEulerDiscreteScheduler
    from diffusers.models.transformers.transformer_wan_animate_2 import WanAnimate2Transformer3DModel
    from transformers import CLIPVisionConfig, CLIPVisionModel

    directory = Path(directory)
    tokenizer, text_encoder = _tiny_text(directory, seed)
    vision = CLIPVisionModel(
        CLIPVisionConfig(
            hidden_size=1280, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
            image_size=224, patch_size=32, projection_dim=16,
        )
    ).eval()  # fmt: skip
    transformer = WanAnimate2Transformer3DModel(
        patch_size=(1, 2, 2), text_len=16, in_dim=2 * 4 + 4, dim=24, ffn_dim=32, freq_dim=16,
        text_dim=16, out_dim=4, num_heads=2, num_layers=2,
    ).eval()  # fmt: skip
    blocks = modular.WanAnimate2DistilledBlocks() if distilled else modular.WanAnimate2Blocks()
    pipe = blocks.init_pipeline()
    pipe.update_components(
        text_encoder=text_encoder, tokenizer=tokenizer, vae=tiny_vae(seed), image_encoder=vision,
        transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=5.0),
    )  # fmt: skip
    return _save_pipeline(pipe, directory)
