"""Wan-Animate backbones (tiny random WanAnimatePipeline saved to disk) and the memory
options, end to end through the CLI where they are user-facing."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from charanim.cli.app import app
from charanim.errors import ConditionerInputError, IncompatibleError, InvalidOptionError
from charanim.io.video import write_video
from charanim.models.memory import MemorySettings, apply_memory, plan_memory
from charanim.pose.face_crops import crop_faces, face_boxes

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def animate_args(model, out, *extra):
    return (
        "animate", EXAMPLES / "reference.png", EXAMPLES / "driving.mp4", "-o", out, "--model", model,
        "--pose", EXAMPLES / "driving.keypoints.jsonl", "--reference-pose", EXAMPLES / "reference.keypoints.jsonl",
        "--size", "32x32", "--fps", "8", "--steps", "2", *extra,
    )  # fmt: skip


# ---------------------------------------------------------------------------- face crops


def _head(cx, cy, half):
    """coco17 keypoints with the head points around (cx, cy), ears ``2 * half`` apart."""
    points = np.zeros((17, 3))
    points[0] = (cx, cy, 1)  # nose
    points[1], points[2] = (cx + half / 2, cy - 1, 1), (cx - half / 2, cy - 1, 1)  # eyes
    points[3], points[4] = (cx + half, cy, 1), (cx - half, cy, 1)  # ears
    return points


def test_face_boxes_follow_the_head_fill_hidden_frames_and_refuse_no_face():
    frames = np.stack([_head(20, 30, 5), np.zeros((17, 3)), _head(40, 30, 5)])
    boxes = face_boxes(frames, "coco17", smooth=1)
    # ears 10 px apart -> side 18 px; centre moved down by 8 % of it from the head points' mean
    assert boxes[0] == pytest.approx((20, 30 - 0.4 + 0.08 * 18, 18), abs=1e-6)
    assert boxes[1][0] == pytest.approx(30)  # the hidden frame lies between its neighbours
    with pytest.raises(ConditionerInputError, match="No face found"):
        face_boxes(np.zeros((4, 17, 3)), "coco17")


def test_face_crops_cut_out_the_face():
    frame = np.zeros((64, 64, 3), np.uint8)
    frame[20:40, 10:30] = (250, 10, 10)  # a red face around (20, 30)
    crops = crop_faces(frame[None], np.array([[20.0, 30.0, 16.0]]), 16)
    assert crops.shape == (1, 16, 16, 3)
    assert crops[0, 2:-2, 2:-2, 0].min() > 200 and crops[0, ..., 1].max() < 40
    # a box past the edge is padded with black, not stretched
    edge = crop_faces(frame[None], np.array([[2.0, 30.0, 16.0]]), 16)
    assert edge[0, :, :3].max() == 0


# ---------------------------------------------------------------------------- end to end


def test_animate_runs_wan_animate_in_segments(tmp_path, tiny_wan_animate):
    out = tmp_path / "out.mp4"
    result = invoke(*animate_args(tiny_wan_animate, out, "--window", "9", "--overlap", "1", "--json"))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["backbone"] == "wan-animate" and summary["frames"] == 16
    assert summary["windows"] == 2  # 16 frames: 9, then 8 new ones continuing from 1
    from charanim.io import probe_video

    assert probe_video(out).frames == 16


def test_face_and_pose_reach_the_model(tiny_wan_animate):
    from charanim.api import animate, load_pipeline

    pipeline = load_pipeline(tiny_wan_animate, device="cpu")
    common = dict(
        pipeline=pipeline, size=(32, 32), fps=8.0, steps=2, window=9, overlap=1,
        reference_pose=EXAMPLES / "reference.keypoints.jsonl", pose=EXAMPLES / "driving.keypoints.jsonl",
    )  # fmt: skip
    base = animate(EXAMPLES / "reference.png", EXAMPLES / "driving.mp4", **common)["result"].frames
    again = animate(EXAMPLES / "reference.png", EXAMPLES / "driving.mp4", **common)["result"].frames
    assert np.array_equal(base, again)

    run = pipeline.__class__.__call__
    seen = {}

    def blank_face(self, reference, conditions, spec, **kwargs):
        face = next(c for c in conditions if c.conditioner == "face")
        seen["face"] = tuple(face.video.shape)
        conditions = [
            c if c is not face else face.replace(video=torch.full_like(face.video, -1)) for c in conditions
        ]
        return run(self, reference, conditions, spec, **kwargs)

    pipeline.__class__.__call__ = blank_face
    try:
        blank = animate(EXAMPLES / "reference.png", EXAMPLES / "driving.mp4", **common)["result"].frames
    finally:
        pipeline.__class__.__call__ = run
    assert seen["face"] == (3, 16, 16, 16)  # 16 crops at the motion encoder's 16² size
    assert not np.array_equal(base, blank)


def test_replace_mode_with_a_mask(tmp_path, tiny_wan_animate):
    mask = np.zeros((16, 64, 64, 3), np.uint8)
    mask[:, 8:56, 4:32] = 255
    write_video(tmp_path / "mask.mp4", mask, 8.0)
    out = tmp_path / "swap.mp4"
    result = invoke(
        *animate_args(
            tiny_wan_animate,
            out,
            "--window",
            "9",
            "--mode",
            "replace",
            "--mask",
            tmp_path / "mask.mp4",
            "--json",
        )
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["mode"] == "replace"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--conditioner", "rgb"), "cannot use conditioner 'rgb'"),
        (("--overlap", "3"), "from 1 or 5 frames"),
        (("--window", "10"), "4k+1 frames"),
        (("--sampler", "euler"), "own UniPC scheduler"),
        (("--offload", "model"), "on the CPU everything already lives in RAM"),
        (("--max-vram", "24"), "this run is on the CPU"),
        (("--attention", "xformers"), "--attention xformers"),
        (("--attention", "nope"), "Unknown --attention 'nope'"),
    ],
)
def test_bad_wan_animate_options_are_one_line(tmp_path, tiny_wan_animate, extra, message):
    result = invoke(*animate_args(tiny_wan_animate, tmp_path / "o.mp4", *extra))
    assert result.exit_code != 0
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_replace_mode_needs_a_model_that_has_it(tmp_path, tiny_model, media):
    result = invoke(
        "animate",
        media["reference"],
        media["drive"],
        "-o",
        tmp_path / "o.mp4",
        "--model",
        tiny_model,
        "--mode",
        "replace",
    )
    assert result.exit_code != 0 and "replace mode needs a Wan-Animate model" in result.output
    result = invoke(
        "animate",
        media["reference"],
        media["drive"],
        "-o",
        tmp_path / "o.mp4",
        "--model",
        tiny_model,
        "--mask",
        media["drive"],
    )
    assert result.exit_code != 0 and "--mask is used only with --mode replace" in result.output


def test_a_diffusers_directory_of_another_pipeline_is_named(tmp_path, media):
    folder = tmp_path / "t2v"
    folder.mkdir()
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "WanPipeline"}))
    result = invoke(
        "animate", media["reference"], media["drive"], "-o", tmp_path / "o.mp4", "--model", folder
    )
    assert result.exit_code != 0
    assert "is a diffusers WanPipeline directory" in result.output and "wan-animate" in result.output


def test_progress_reaches_the_step_callback_per_segment(tiny_wan_animate, tiny_wan_animate2):
    from charanim.api import animate

    for model, conditioner in ((tiny_wan_animate, "pose"), (tiny_wan_animate2, "rgb")):
        seen = []
        animate(
            EXAMPLES / "reference.png", EXAMPLES / "driving.mp4", model=model, conditioners=conditioner,
            size=(32, 32), fps=8.0, steps=2, window=9, overlap=1, device="cpu",
            pose=EXAMPLES / "driving.keypoints.jsonl", reference_pose=EXAMPLES / "reference.keypoints.jsonl",
            callback=lambda window, step, steps, latents, seen=seen: seen.append((window.index, step, steps)),
        )  # fmt: skip
        assert seen == [(0, 0, 2), (0, 1, 2), (1, 0, 2), (1, 1, 2)], model.name


def test_wan_animate2_is_driven_by_the_rgb_video(tmp_path, tiny_wan_animate2):
    out = tmp_path / "out.mp4"
    args = ("animate", EXAMPLES / "reference.png", EXAMPLES / "driving.mp4", "-o", out, "--model", tiny_wan_animate2,
            "--size", "32x32", "--fps", "8", "--steps", "2", "--window", "9")  # fmt: skip
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert (summary["backbone"], summary["conditioners"], summary["windows"]) == ("wan-animate-2", ["rgb"], 2)
    for extra, message in (
        (("--conditioner", "pose"), "cannot use conditioner 'pose'"),
        (("--sampler", "unipc"), "its own scheduler"),
        (("--overlap", "9"), "give 1 to 8 frames"),
    ):
        result = invoke(*args, *extra)
        assert result.exit_code != 0 and message in result.output, result.output


def test_wan_animate2_directory_without_a_component_is_refused(tmp_path, tiny_wan_animate2, media):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_wan_animate2, broken)
    shutil.rmtree(broken / "image_encoder")
    result = invoke(
        "animate", media["reference"], media["drive"], "-o", tmp_path / "o.mp4", "--model", broken
    )
    assert result.exit_code != 0 and "lacks the component folder(s) image_encoder" in result.output


# ---------------------------------------------------------------------------- memory


def test_attention_and_vae_tiling_are_switched_in_diffusers(tiny_wan_animate):
    from charanim.api import load_pipeline

    pipeline = load_pipeline(
        tiny_wan_animate, device="cpu", memory=MemorySettings(attention="sdpa", vae_tiling=True)
    )
    pipe = pipeline.backbone.pipe
    assert pipe.vae.use_tiling and pipe.vae.use_slicing
    assert pipeline.backbone.runtime_options == ["attention=sdpa", "vae_tiling"]
    backends = {
        str(getattr(m.processor, "_attention_backend", None))
        for m in pipe.transformer.modules()
        if hasattr(m, "processor") and hasattr(m.processor, "_attention_backend")
    }
    assert backends == {"AttentionBackendName.NATIVE"}


class _RecordingPipe:
    """Stands in for a diffusers pipeline on a machine without a GPU: records the calls."""

    def __init__(self):
        self.calls = []

    def enable_model_cpu_offload(self, device):
        self.calls.append(("model", str(device)))

    def enable_sequential_cpu_offload(self, device):
        self.calls.append(("sequential", str(device)))

    def enable_group_offload(self, onload_device, **kwargs):
        self.calls.append(("group", str(onload_device), kwargs["offload_type"]))


class _Backbone:
    family = "wan-animate"

    def __init__(self):
        self.pipe, self.transformer, self.autoencoder = _RecordingPipe(), None, None
        self.device, self.offloaded, self.text = torch.device("cpu"), False, type("T", (), {"device": None})()

    def place(self, device):
        self.device = self.text.device = device


@pytest.mark.parametrize("offload", ["model", "sequential", "group"])
def test_offload_calls_diffusers_and_computes_on_the_gpu(offload):
    backbone, cuda = _Backbone(), torch.device("cuda")
    done = apply_memory(backbone, MemorySettings(offload=offload), cuda)
    assert done == [f"offload={offload}"]
    assert backbone.pipe.calls[0][:2] == (offload, "cuda")
    assert backbone.device == cuda and backbone.text.device == cuda and backbone.offloaded


def test_offload_is_refused_for_the_tiny_model(tiny_model):
    from charanim.api import load_pipeline

    with pytest.raises(IncompatibleError, match="small enough"):
        load_pipeline(tiny_model, "rgb", device="cpu", memory=MemorySettings(offload="group"))


def test_max_vram_picks_offloading_and_tiling():
    gib = 1024**3
    parts = {"transformer": 34 * gib, "text_encoder": 11 * gib, "vae": gib // 4}
    plan = lambda budget: plan_memory(parts, budget, MemorySettings())  # noqa: E731
    assert (plan(80).offload, plan(80).vae_tiling) == ("none", False)
    assert (plan(60).offload, plan(60).vae_tiling) == ("model", False)
    assert (plan(24).offload, plan(24).vae_tiling) == ("group", False)
    assert (plan(16).offload, plan(16).vae_tiling) == ("group", True)
    # an explicit choice wins over the plan
    assert plan_memory(parts, 80, MemorySettings(offload="sequential")).offload == "sequential"
    with pytest.raises(InvalidOptionError, match="--max-vram"):
        MemorySettings(max_vram_gb=0).validate()


def test_wan_i2v_runs_end_to_end_over_several_windows(tmp_path, tiny_wan_i2v):
    out = tmp_path / "i2v.mp4"
    result = invoke(
        "animate", EXAMPLES / "reference.png", EXAMPLES / "driving.mp4", "-o", out, "--model", tiny_wan_i2v,
        "--conditioner", "rgb", "--size", "32x32", "--fps", "8", "--steps", "2", "--window", "9", "--overlap", "5",
        "--prompt", "a knight waves", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "no charanim motion weights" in result.stderr  # a base checkpoint: the warning is one line
    summary = json.loads(result.stdout)
    assert summary["backbone"] == "wan-i2v" and summary["frames"] == 16 and summary["windows"] >= 3


def test_a_reused_wan_animate_pipeline_does_not_carry_settings_over(tiny_wan_animate):
    from charanim.api import animate, load_pipeline

    pipeline = load_pipeline(tiny_wan_animate, device="cpu")
    common = dict(
        pipeline=pipeline, size=(32, 32), fps=8.0, steps=2, window=9, overlap=1,
        reference_pose=EXAMPLES / "reference.keypoints.jsonl", pose=EXAMPLES / "driving.keypoints.jsonl",
    )  # fmt: skip

    def run(**extra):
        return animate(EXAMPLES / "reference.png", EXAMPLES / "driving.mp4", **common, **extra)[
            "result"
        ].frames

    first = run()
    shifted = run(flow_shift=1.5)
    assert not np.array_equal(first, shifted)
    assert np.array_equal(run(), first)
