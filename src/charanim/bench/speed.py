"""Speed and memory, measured in a fresh process per (model, size, length): peak RSS is a
process-wide high-water mark, so only a fresh process gives a per-run number."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time


def peak_rss_mb() -> float:
    """This process's peak resident memory. Linux: VmHWM, the high-water mark of the
    process's own address space (``ru_maxrss`` would report the parent's peak too when
    the parent was bigger at fork time); elsewhere ``ru_maxrss``."""
    try:
        for line in open("/proc/self/status", encoding="ascii"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def probe(model: str, size: int, frames: int, steps: int | None, device: str) -> dict:
    """Run in the child: animate a synthetic clip, report seconds and peak memory."""
    import numpy as np
    import torch

    from charanim.api import _fit_reference, load_pipeline
    from charanim.conditioning import Driving, OutputSpec, Reference
    from charanim.engine.pipeline import SamplingSettings
    from charanim.io.image import image_from_array
    from charanim.io.video import Video
    from charanim.testing.media import moving_figure_frames

    started = time.perf_counter()
    pipeline = load_pipeline(model, "rgb", device)
    loaded = time.perf_counter()
    clip = moving_figure_frames(frames, (size, size), seed=1)
    spec = OutputSpec(size, size, frames, 8.0)
    image = image_from_array(clip[0])
    conditions = [
        c.prepare(
            Driving(video=Video(clip, 8.0, 8.0, (size, size), np.arange(frames))), Reference(image), spec
        )
        for c in pipeline.conditioners
    ]
    calls = _record_calls(pipeline.backbone.transformer)
    begin = time.perf_counter()
    pipeline(
        _fit_reference(image, spec),
        conditions,
        spec,
        settings=SamplingSettings(steps=steps),
        generator=torch.Generator().manual_seed(0),
    )
    seconds = time.perf_counter() - begin
    calls.remove()
    bare = bare_replay(pipeline.backbone.transformer, calls.inputs)
    result = {
        "size": size, "frames": frames, "seconds": round(seconds, 3), "seconds_per_frame": round(seconds / frames, 4),
        "fps": round(frames / seconds, 3), "load_seconds": round(loaded - started, 3),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "parameters": pipeline.backbone.parameter_count(),
        "bare_seconds": round(bare, 3), "bare_ratio": round(seconds / bare, 3),
    }  # fmt: skip
    if torch.cuda.is_available():
        result["peak_vram_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return result


class _record_calls:
    """Keep the inputs of every transformer call made while the pipeline runs."""

    def __init__(self, transformer):
        self.inputs: list[tuple[tuple, dict]] = []
        self.handle = transformer.register_forward_pre_hook(self._keep, with_kwargs=True)

    def _keep(self, module, args, kwargs):
        self.inputs.append((args, dict(kwargs)))

    def remove(self):
        self.handle.remove()


def bare_replay(transformer, inputs: list[tuple[tuple, dict]]) -> float:
    """Seconds for a bare diffusers loop making the same transformer calls (same inputs,
    same count) with a flow-matching Euler update after each, nothing else: the yardstick for what
    charanim adds around the model (conditioning, autoencoder, windows, guidance)."""
    import torch

    begin = time.perf_counter()
    with torch.no_grad():
        for args, kwargs in inputs:
            out = transformer(*args, **kwargs)
            velocity = out[0] if isinstance(out, tuple) else out.sample
            sample = torch.zeros_like(velocity)
            sample.sub_(velocity, alpha=1 / len(inputs))  # the Euler update
    return time.perf_counter() - begin


def measure(model: str, size: int, frames: int, steps: int | None, device: str) -> dict:
    command = [
        sys.executable,
        "-m",
        "charanim.bench.speed",
        model,
        str(size),
        str(frames),
        str(steps or 0),
        device,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        return {"size": size, "frames": frames, "error": (done.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    model, size, frames, steps, device = sys.argv[1:6]
    print(json.dumps(probe(model, int(size), int(frames), int(steps) or None, device)))
