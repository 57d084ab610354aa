"""Mistakes a user makes at the shell: each is one line on stderr, a non-zero exit, and
nothing left behind. (Per-command errors live beside their commands' tests; these are
the shared checks: output paths, manifests, recipe files, usage errors.)"""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from charanim.cli.app import app
from charanim.config import load_yaml
from charanim.errors import CharanimError, InputFileError
from charanim.io.atomic import check_output_file, check_output_folder
from charanim.io.video import _decoder_reason
from charanim.manifest import read_manifest

runner = CliRunner()
STAGE1 = Path(__file__).resolve().parents[1] / "recipes" / "tiny" / "stage1-pose.yaml"


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def _one_line_error(result, code: int = 1) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == code, result.output
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["animate", "--bogus"], "No such option: --bogus"),
        (["animate", "a.png", "b.mp4", "-o", "x.mp4", "--steps", "0"], "--steps"),
        (["nonsense"], "No such command 'nonsense'"),
        (["synthesize", "world", "-o", "w", "--size", "0x0"], "at least 1"),
    ],
)
def test_usage_errors_are_one_line_with_where_to_look(arguments, message):
    line = _one_line_error(invoke(*arguments), code=2)
    assert message in line and "--help" in line


def test_a_command_given_nothing_prints_its_help():
    result = invoke("animate")
    assert result.exit_code == 2 and "Examples" in result.output


def test_output_file_checks(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("x")
    for path, message in [
        (tmp_path / "folder", "is a folder"),
        (tmp_path / "file" / "out.mp4", "is a file, not a folder"),
        (tmp_path / "missing" / "out.mp4", "does not exist"),
    ]:
        with pytest.raises(CharanimError, match=message):
            check_output_file(path)
    assert check_output_file(tmp_path / "out.mp4") == tmp_path / "out.mp4"


def test_output_folder_checks(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(CharanimError, match="is a file; give a folder"):
        check_output_folder(tmp_path / "file")
    with pytest.raises(CharanimError, match="is a file, not a folder"):
        check_output_folder(tmp_path / "file" / "run" / "deeper")
    assert check_output_folder(tmp_path / "new" / "run") == tmp_path / "new" / "run"
    assert not (tmp_path / "new").exists()  # checked, not made


def test_read_manifest_says_what_is_wrong_and_where(tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"id": "a"}) + "\n\n" + json.dumps({"id": "b"}) + "\n")
    assert [e["id"] for e in read_manifest(good)] == ["a", "b"]
    (tmp_path / "folder").mkdir()
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    (tmp_path / "text.jsonl").write_text('{"id": "a"}\nnot json\n')
    (tmp_path / "list.jsonl").write_text("[1, 2]\n")
    for name, message in [
        ("missing.jsonl", "does not exist"),
        ("folder", "is a folder"),
        ("image.png", "is not text"),
        ("text.jsonl", "line 2 is not valid JSON"),
        ("list.jsonl", "line 1 is not an entry"),
    ]:
        with pytest.raises(InputFileError, match=message):
            read_manifest(tmp_path / name)


def test_recipe_files_that_are_not_recipes(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    (tmp_path / "empty.yaml").write_text("\n# nothing\n")
    (tmp_path / "broken.yaml").write_text("model:\n  width: 64\ntraining: [1, 2\nsteps: 3\n")
    for name, message in [
        ("folder", "is a folder"),
        ("image.png", "is not text"),
        ("empty.yaml", "is empty"),
        ("broken.yaml", "at line 4, column 6"),
    ]:
        with pytest.raises(CharanimError, match=message):
            load_yaml(tmp_path / name)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.backbone=giant", "Unknown model.backbone 'giant'; use tiny or wan-i2v"),
        ("model.init=/no/such/model", "model.init '/no/such/model' is not a folder"),
    ],
)
def test_dry_run_checks_what_a_real_run_would_fail_on(tmp_path, override, message):
    result = invoke("train", STAGE1, override, "-o", tmp_path / "run", "--dry-run")
    assert message in _one_line_error(result)


def test_dry_run_checks_the_denoiser_a_decoder_would_sample(tmp_path):
    recipe = STAGE1.with_name("vae-decoder-sampled.yaml")
    for denoiser, message in [("/no/such/model", "does not exist"), ("nosuch", "Unknown model 'nosuch'")]:
        result = invoke("train", recipe, f"model.denoiser={denoiser}", "-o", tmp_path / "run", "--dry-run")
        assert message in _one_line_error(result)


def test_a_run_folder_under_a_file_fails_before_any_work(tmp_path):
    (tmp_path / "file").write_text("x")
    result = invoke("train", STAGE1, "-o", tmp_path / "file" / "run")
    assert "is a file, not a folder" in _one_line_error(result)


def test_bad_sampling_values_are_refused(tmp_path, media, tiny_model):
    for option, value, message in [
        ("--fps", "0", "--fps must be above 0"),
        ("--flow-shift", "-1", "--flow-shift must be above 0"),
        ("--guidance", "-2", "--guidance must be 0 or more"),
    ]:
        out = tmp_path / "out.mp4"
        result = invoke(
            "animate", media["reference"], media["drive"], "-o", out, "--model", tiny_model, option, value
        )
        assert message in _one_line_error(result) and not out.exists()


def test_a_bad_render_path_fails_before_the_keypoints_are_written(tmp_path, media):
    out = tmp_path / "keypoints.jsonl"
    result = invoke("extract-pose", media["drive"], "-o", out, "--render", tmp_path / "render.txt")
    assert "--render must end in one of" in _one_line_error(result) and not out.exists()


def test_caption_output_and_manifest_errors(tmp_path, media):
    (tmp_path / "folder").mkdir()
    result = invoke("caption", media["drive"], "-r", media["reference"], "-o", tmp_path / "folder")
    assert "is a folder" in _one_line_error(result)
    result = invoke("caption", "--manifest", tmp_path / "folder", "-o", tmp_path / "c.jsonl")
    assert "is a folder; give its manifest.jsonl" in _one_line_error(result)


@pytest.fixture(scope="module")
def test_world(tmp_path_factory) -> Path:
    from charanim.testing import write_humanoid_world

    out = tmp_path_factory.mktemp("world")
    return write_humanoid_world(out, count=2, seed=3, frames=4, shard_size=2, test_fraction=1.0)


def test_a_bench_that_cannot_start_leaves_no_report_folder(tmp_path, test_world):
    report = tmp_path / "report"
    result = invoke("bench", "-m", "no-such-model", "--data", test_world, "--cases", 1, "-o", report)
    assert "Unknown model 'no-such-model'" in _one_line_error(result)
    assert not report.exists()
    result = invoke("bench", "-m", "charanim-tiny", "--shard", "2/1", "-o", report)
    assert "--shard 2/1 is not valid" in _one_line_error(result) and not report.exists()


def test_a_bootstrap_that_cannot_start_leaves_no_folder(tmp_path, test_world):
    from charanim.synthesis.bootstrap import BootstrapJob, run_bootstrap

    out = tmp_path / "bootstrap"
    with pytest.raises(CharanimError, match="Unknown model 'no-such-model'"):
        run_bootstrap(BootstrapJob("no-such-model", test_world, test_world, out, count=1))
    assert not out.exists()  # so the corrected command is not refused as "other settings"


def test_bench_compare_refuses_what_is_not_a_report(tmp_path):
    (tmp_path / "notes.json").write_text("not json")
    (tmp_path / "other.json").write_text(json.dumps({"summary": {}}))
    result = invoke("bench", "compare", tmp_path / "notes.json", tmp_path / "notes.json")
    assert "is not a bench report's results.json (not JSON)" in _one_line_error(result)
    result = invoke("bench", "compare", tmp_path / "other.json", tmp_path / "other.json")
    assert "(no metrics or summary)" in _one_line_error(result)


def test_the_video_decoders_own_words_become_a_reason():
    log = "[03:24:54] /github/workspace/src/video/video_reader.cc:270: could not seek"
    assert _decoder_reason(RuntimeError(log)) == "could not seek"
    assert _decoder_reason(RuntimeError("av_read_frame failed with 1094995529")) == (
        "its stream ends early or is damaged"
    )
