"""The CLI end to end: through Typer's runner and as a real subprocess."""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from charanim import __version__
from charanim.cli.app import app
from charanim.io import probe_video

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_help_version_and_examples():
    root = invoke("--help")
    assert root.exit_code == 0 and "animate" in root.output and "plugins" in root.output
    assert invoke("--version").output.strip() == f"charanim {__version__}"
    for command in ("animate", "plugins"):
        text = invoke(command, "--help").output
        assert "Examples" in text and f"charanim {command}" in text
    assert "--motion-guidance" in invoke("animate", "--help").output


def _command_paths(command, path=()):
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        yield from _command_paths(sub, (*path, name))


def test_every_help_reads_at_80_columns():
    """No option name cut short, no <bool> on flags, examples continued with a backslash
    rather than wrapped mid-command, prose reflowed rather than broken where the source was."""
    import typer.main

    from charanim.cli.help_format import EXAMPLE_WIDTH

    narrow = CliRunner(env={"COLUMNS": "80", "TERMINAL_WIDTH": "80"})
    paths = list(_command_paths(typer.main.get_command(app)))
    assert ("animate",) in paths and ("bench", "compare") in paths and ("synthesize", "world") in paths
    for path in paths:
        text = narrow.invoke(app, [*path, "--help"]).output
        assert "Usage:" in text, path
        assert "…" not in text and "<bool>" not in text, (path, [ln for ln in text.splitlines() if "…" in ln])
        for line in text.splitlines():  # an example's lines keep their continuation, none wraps
            if line.strip().startswith(("charanim ", "--", "-o ")) and line.rstrip().endswith("\\"):
                assert len(line.rstrip()) <= EXAMPLE_WIDTH + 2, line
    # the source's line breaks inside a paragraph are gone: each paragraph wraps as one
    animate_help = narrow.invoke(app, ["animate", "--help"]).output
    assert "charanim-tiny when no other bundled one covers more of it" in " ".join(animate_help.split())
    assert "charanim-tiny when no\n" not in animate_help


def test_animate_writes_the_requested_video(tmp_path, media, tiny_model):
    out = tmp_path / "out.mp4"
    result = invoke(
        "animate",
        media["reference_rgba"],
        media["drive"],
        "-o",
        out,
        "--model",
        tiny_model,
        "--size",
        "32x32",
        "--fps",
        "6",
        "--max-frames",
        "7",
        "--steps",
        "2",
        "--json",
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    info = probe_video(out)
    assert (info.frames, info.width, info.height) == (7, 32, 32)
    assert info.fps == pytest.approx(6.0)
    assert summary["frames"] == 7 and summary["fps"] == 6.0 and summary["conditioners"] == ["rgb"]
    assert summary["output"] == str(out) and summary["seconds"] > 0


def test_animate_as_a_real_process(tmp_path, media, tiny_model):
    out = tmp_path / "out.webm"
    process = subprocess.run(
        [
            shutil.which("charanim") or "charanim",
            "animate",
            str(media["reference"]),
            str(media["drive"]),
            "-o",
            str(out),
            "--model",
            str(tiny_model),
            "--steps",
            "2",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == 0, process.stderr
    assert json.loads(process.stdout)["frames"] == probe_video(out).frames == 12
    assert "Traceback" not in process.stderr


BAD_INPUTS = [
    (["{missing}", "{drive}"], "does not exist"),
    (["{ref}", "{missing}"], "does not exist"),
    (["{drive}", "{drive}"], "not an image"),
    (["{ref}", "{ref}"], "still image"),
    (["{ref}", "{corrupt}"], "corrupt or not a video"),
    (["{ref}", "{empty}"], "empty"),
    (["{ref}", "{drive}", "--model", "no-such-model"], "Unknown model"),
    (["{ref}", "{drive}", "--model", "{tmp}"], "not a model directory"),
    (
        ["{ref}", "{drive}", "--conditioner", "skeleton"],
        "Unknown conditioner 'skeleton'. Known conditioners:",
    ),
    (["{ref}", "{drive}", "--conditioner", "rgb++rgb"], "Malformed conditioner list"),
    (["{ref}", "{drive}", "--size", "30x32"], "multiples of 4"),
    (["{ref}", "{drive}", "--device", "cuda"], "CUDA was requested"),
    (["{ref}", "{drive}", "--sampler", "ddim"], "Unknown sampler"),
    (["{ref}", "{drive}", "--prompt-file", "{missing}"], "Prompt file"),
    (["{ref}", "{drive}", "--prompt-file", "{badjson}"], "not valid JSON"),
    (["{ref}", "{drive}", "--window", "4", "--overlap", "4"], "overlap must be between"),
    (["{ref}", "{drive}", "--fit", "squash"], "Unknown fit mode"),
    (["{ref}", "{drive}", "--dtype", "int8"], "Unknown dtype"),
    (
        ["{ref}", "{drive}", "--conditioner", "pose", "--driving-background", "remove"],
        "applies to conditioners",
    ),
    (["{ref}", "{drive}", "--driving-background", "blur"], "Unknown driving background"),
    (["{ref}", "{drive}", "--colour-correction", "auto"], "Unknown colour correction"),
]


@pytest.mark.parametrize(("arguments", "message"), BAD_INPUTS)
def test_bad_input_is_one_line_exit_1_and_nothing_written(tmp_path, media, tiny_model, arguments, message):
    (tmp_path / "corrupt.mp4").write_bytes(b"\x00\x01garbage" * 200)
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "bad.json").write_text("{nope")
    model_dir = tmp_path / "not-a-model"
    model_dir.mkdir()
    values = {
        "ref": media["reference"],
        "drive": media["drive"],
        "missing": tmp_path / "missing.png",
        "corrupt": tmp_path / "corrupt.mp4",
        "empty": tmp_path / "empty.mp4",
        "badjson": tmp_path / "bad.json",
        "tmp": model_dir,
    }
    args = [a.format(**values) for a in arguments]
    if "--model" not in args:
        args += ["--model", str(tiny_model)]
    out = tmp_path / "out" / "video.mp4"
    out.parent.mkdir()
    result = invoke("animate", *args, "-o", out)
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert "Traceback" not in result.output
    assert list(out.parent.iterdir()) == []


@pytest.mark.parametrize(
    "arguments",
    [
        ["animate", "a.png"],
        ["animate", "a.png", "b.mp4", "-o", "x.mp4", "--steps", "0"],
        ["animate", "--bogus"],
        ["nonsense"],
    ],
)
def test_usage_errors_exit_2(arguments):
    assert invoke(*arguments).exit_code == 2


def test_bad_output_names(tmp_path, media, tiny_model):
    for out, message in [
        (tmp_path / "v.avi", "must end in one of"),
        (tmp_path / "no" / "v.mp4", "does not exist"),
        (_folder(tmp_path / "x.mp4"), "is a folder"),
    ]:
        result = invoke("animate", media["reference"], media["drive"], "-o", out, "--model", tiny_model)
        assert result.exit_code == 1 and message in result.stderr


def _folder(path):
    path.mkdir()
    return path


def test_default_model_not_installed_is_a_clear_error(media, tmp_path, monkeypatch):
    from charanim.models import tiny

    monkeypatch.setattr(tiny.TinyFamily, "named_models", classmethod(lambda cls: {"charanim-tiny": tmp_path}))
    result = invoke("animate", media["reference"], media["drive"], "-o", tmp_path / "o.mp4")
    assert result.exit_code == 1
    assert "No trained default model is installed" in result.stderr


def test_plugins_json_lists_versions_and_registrations():
    result = invoke("plugins", "--json")
    assert result.exit_code == 0
    plugins = {p["name"]: p for p in json.loads(result.stdout)["plugins"]}
    assert plugins["charanim"]["registered"]["backbone"] == [
        "tiny",
        "wan-animate",
        "wan-animate-2",
        "wan-i2v",
    ]
    # our three conditioners, each its own distribution with its version
    for name, conditioner in (("rgb", "rgb"), ("pose", "pose"), ("audio_face", "audio-face")):
        assert plugins[name]["version"] == "0.1.0"
        assert plugins[name]["registered"] == {"conditioner": [conditioner]}


def _fake_distribution(root, name, module_source):
    """An installed-looking distribution on PYTHONPATH: dist-info with an entry point."""
    (root / f"{name}.py").write_text(textwrap.dedent(module_source))
    info = root / f"{name}-0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text(f"[charanim]\n{name} = {name}\n")


def test_a_broken_installed_plugin_is_reported_and_animate_still_works(tmp_path, media, tiny_model):
    _fake_distribution(tmp_path, "broken_plugin", "raise ImportError('missing dependency xyz')\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    listed = subprocess.run(
        [sys.executable, "-m", "charanim.cli.app", "plugins", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    broken = next(p for p in json.loads(listed.stdout)["plugins"] if p["name"] == "broken_plugin")
    assert broken["version"] == "0.3" and "missing dependency xyz" in broken["errors"][0]
    assert "warning: charanim plugin 'broken_plugin'" in listed.stderr
    out = tmp_path / "o.mp4"
    ran = subprocess.run(
        [
            sys.executable,
            "-m",
            "charanim.cli.app",
            "animate",
            str(media["reference"]),
            str(media["drive"]),
            "-o",
            str(out),
            "--model",
            str(tiny_model),
            "--steps",
            "1",
            "-q",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stderr and out.exists()
    disabled = subprocess.run(
        [sys.executable, "-m", "charanim.cli.app", "plugins", "--json"],
        capture_output=True,
        text=True,
        env=dict(env, CHARANIM_DISABLE_PLUGINS="broken_plugin"),
        timeout=120,
    )
    assert "broken_plugin" not in disabled.stdout and "warning" not in disabled.stderr


@pytest.mark.parametrize(
    ("command", "target", "hint"),
    [
        ("train", "charanim.training.trainer.train", "training.gradient_checkpointing=true"),
        ("animate", "charanim.api.animate", "--offload model"),
    ],
)
def test_out_of_memory_is_one_line_with_the_commands_levers(
    tmp_path, media, tiny_model, monkeypatch, command, target, hint
):
    import importlib

    import torch

    module, name = target.rsplit(".", 1)

    def boom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(importlib.import_module(module), name, boom)
    if command == "train":
        recipe = tmp_path / "r.yaml"
        recipe.write_text(
            "model: {width: 32, height: 32}\nconditioners: [rgb]\ndata: {images: " + str(tmp_path) + "}\n"
        )
        result = invoke("train", recipe, "-o", tmp_path / "run")
    else:
        result = invoke(
            "animate", media["reference"], media["drive"], "-o", tmp_path / "o.mp4", "--model", tiny_model
        )
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Out of GPU memory" in lines[0] and hint in lines[0]
