"""The refiner: a learned pixel pass where the character moved (training.task: refiner)."""

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from test_train_autoencoder import _pose_denoiser
from test_train_autoencoder import _recipe as _vae_recipe

from charanim.config import resolve
from charanim.engine.refine import reference_bones, refine, refine_gate
from charanim.errors import CharanimError, ModelLoadError
from charanim.models.refiner import RefinerSpec, build_refiner
from charanim.training.recipe import Recipe
from charanim.training.trainer import export_latest, train


@pytest.fixture(scope="module")
def denoiser(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny world and a tiny pose model trained on it."""
    from charanim.testing import write_humanoid_world

    root = tmp_path_factory.mktemp("refiner")
    world = write_humanoid_world(root / "world", count=8, seed=3, frames=4, shard_size=4, test_fraction=0.25)
    train(resolve(Recipe, _vae_recipe(root, world, "vae", "steps: 2"), []), root / "vae")
    return world, _pose_denoiser(root, world, root / "vae" / "model")


def _refiner_recipe(tmp_path: Path, world: Path, denoiser: Path, training: str = "steps: 4") -> Path:
    path = tmp_path / "refiner.yaml"
    path.write_text(
        textwrap.dedent(f"""
        model:
          denoiser: {denoiser}
          refiner: {{block_out_channels: [8, 16], dilation: 1}}
        data: {{manifest: {world}, same_plan: true}}
        training: {{task: refiner, batch_size: 4, sampled_pairs: 4, ema: 0, threads: 2, foreground_weight: 2.0, {training}}}
        optim: {{lr: 1.0e-2, warmup: 1}}
        checkpoint: {{every: 2}}
        validation: {{every: 2}}
        log_every: 1
    """)
    )
    return path


def test_the_gate_opens_only_where_something_moved():
    spec = RefinerSpec(dilation=1)
    reference = torch.full((3, 8, 8), -0.5)
    frames = reference[None].repeat(2, 1, 1, 1)
    frames[1, :, 4, 4] = 0.5  # frame 1: one pixel changed
    warp = frames.clone()
    motion = torch.full_like(frames, -1.0)  # no limb drawn
    gate = refine_gate(frames, warp, motion, reference, spec)
    assert gate[0].sum() == 0
    assert gate[1, 0, 3:6, 3:6].eq(1).all() and gate[1].sum() == 9  # the pixel, grown by one
    motion[0, :, 0, 0] = 1.0  # a limb drawn where nothing changed yet opens the gate too
    assert refine_gate(frames, warp, motion, reference, spec)[0, 0, 0, 0] == 1
    assert (
        refine_gate(frames, warp, motion, reference, RefinerSpec(dilation=1, motion_drawn=False))[0].sum()
        == 0
    )


def test_the_gate_opens_near_the_references_bones_only_where_its_spec_says():
    reference = torch.full((3, 8, 8), -0.5)
    frames = reference[None].repeat(2, 1, 1, 1)  # nothing moved, nothing drawn
    warp, motion = frames.clone(), torch.full_like(frames, -1.0)
    bones = torch.zeros(1, 8, 8, dtype=torch.bool)
    bones[0, 2, 2:5] = True  # where a limb of the reference stood, and may stand on as a ghost
    spec = RefinerSpec(dilation=1, reference_bones=True)
    gate = refine_gate(frames, warp, motion, reference, spec, bones)
    assert gate[:, 0, 1:4, 1:6].eq(1).all() and gate[0].sum() == 15  # the bones, grown by one
    assert refine_gate(frames, warp, motion, reference, RefinerSpec(dilation=1), bones).sum() == 0
    assert refine_gate(frames, warp, motion, reference, spec).sum() == 0  # no skeleton: nothing to add


def test_reference_bones_cover_every_persons_skeleton_and_nothing_without_one():
    from charanim.conditioning import Condition, InjectionSite

    points = np.zeros((18, 3))  # openpose18: neck (1) to right shoulder (2) to right elbow (3)
    points[[1, 2, 3]] = [[10, 4, 1], [10, 12, 1], [10, 20, 1]]
    other = points.copy()
    other[:, 0] += 30
    meta = {"reference_keypoints": points, "body_format": "openpose18"}
    one = reference_bones(Condition("pose", InjectionSite.IN_CONTEXT, meta=meta), (48, 32))
    assert one.shape == (1, 32, 48) and one[0, 12, 10] and not one[0, 12, 40] and not one[0, 30, 10]
    both = reference_bones(
        Condition(
            "pose", InjectionSite.IN_CONTEXT, meta={**meta, "people_reference_keypoints": [points, other]}
        ),
        (48, 32),
    )
    assert both[0, 12, 10] and both[0, 12, 40]
    assert reference_bones(Condition("rgb", InjectionSite.IN_CONTEXT, meta={}), (48, 32)) is None
    assert reference_bones(None, (48, 32)) is None


def test_a_refiner_changes_nothing_outside_its_gate_and_starts_as_no_change():
    spec = RefinerSpec(dilation=1)
    reference = torch.rand(3, 16, 16) * 2 - 1
    frames = reference[None].repeat(3, 1, 1, 1)
    frames[2, :, 5:8, 5:8] = 1.0
    warp, motion = frames.clone(), torch.full_like(frames, -1.0)
    fresh = build_refiner(spec, (8, 16))
    assert torch.equal(refine(fresh, spec, frames, warp, motion, reference), frames)
    torch.nn.init.normal_(fresh.conv_out.weight, std=0.5)  # a refiner that changes everything it may
    refined = refine(fresh, spec, frames, warp, motion, reference)
    gate = refine_gate(frames, warp, motion, reference, spec)
    assert torch.equal(refined[gate.expand_as(refined) == 0], frames[gate.expand_as(frames) == 0])
    assert not torch.equal(refined[2], frames[2])


def test_what_another_conditioner_drives_is_kept_out_of_the_gate():
    spec = RefinerSpec(dilation=0)
    reference = torch.zeros(3, 8, 8)
    frames = torch.full((1, 3, 8, 8), 0.5)  # everything moved: the gate is open everywhere
    net = build_refiner(spec, (8, 16))
    torch.nn.init.normal_(net.conv_out.weight, std=0.5)
    keep_out = torch.zeros(1, 1, 8, 8)
    keep_out[..., 2:5, 2:5] = 1
    refined = refine(net, spec, frames, frames.clone(), None, reference, keep_out=keep_out)
    assert torch.equal(refined[..., 2:5, 2:5], frames[..., 2:5, 2:5])
    assert (refined != frames).float().mean() > 0.5


def test_a_refiner_trains_on_the_models_own_frames_and_animate_runs_it(tmp_path, denoiser):
    from charanim.api import load_pipeline
    from charanim.conditioning import OutputSpec
    from charanim.engine.pipeline import SamplingSettings
    from charanim.io.pixels import to_pixels
    from charanim.training.batch import BatchBuilder
    from charanim.training.data import ManifestData

    world, model = denoiser
    recipe = resolve(Recipe, _refiner_recipe(tmp_path, world, model), [])
    summary = train(recipe, tmp_path / "run")
    refined_model = Path(summary["model"])
    config = json.loads((refined_model / "charanim.json").read_text())
    assert config["refiner"]["dilation"] == 1 and config["provenance"]["refiner"]["steps"] == 4
    assert config["provenance"]["refiner"]["warm_start"] is None  # a new refiner, no model.init
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    scores = [r["validation"] for r in log if "validation" in r]
    assert len(scores) == 2 and all(0 < s["psnr_character"] < 60 for s in scores)
    # the model's own frames before refining: the same in validation every time
    assert scores[0]["psnr_model"] == scores[1]["psnr_model"]
    assert scores[0]["stray_model"] == scores[1]["stray_model"]
    assert all(0.0 <= s["stray"] <= 1.0 for s in scores)

    pipeline = load_pipeline(str(refined_model), device="cpu")
    assert pipeline.backbone.refiner is not None
    spec = OutputSpec(32, 32, 4, 8.0)
    builder = BatchBuilder(pipeline.backbone, pipeline.conditioners, spec, "retarget")
    sample = ManifestData(recipe.data, frames=4).sample(0, np.random.default_rng(0))
    condition, _, _ = builder.motion_condition(sample, np.random.default_rng(0))
    reference = to_pixels(builder._fit(sample.reference))

    def run(settings, pipe=pipeline):
        return pipe(
            reference, [condition], spec, settings=settings, generator=torch.Generator().manual_seed(1)
        )

    refined, plain = run(SamplingSettings()), run(SamplingSettings(refine=False))
    assert refined.settings.refine and not plain.settings.refine
    original = run(SamplingSettings(), load_pipeline(str(model), device="cpu"))
    assert np.array_equal(plain.frames, original.frames)  # without it: exactly the model it refines
    assert not np.array_equal(refined.frames, plain.frames)
    # with no motion condition to read (a voice alone), the frames are left as the model made them
    from charanim.engine.pipeline import AnimatePipeline
    from charanim.errors import InvalidOptionError

    unmoved = AnimatePipeline(pipeline.backbone, [])
    assert not unmoved(reference, [], spec, settings=SamplingSettings()).settings.refine
    with pytest.raises(InvalidOptionError, match="this run has none"):
        unmoved(reference, [], spec, settings=SamplingSettings(refine=True))

    # beside an adapter that says it drives the face, the refiner runs but leaves the face
    # box as the model drew it; beside one that does not say, it stays off unless asked
    from charanim.conditioning import Condition, Conditioner, InjectionSite
    from charanim.pose.face_region import face_boxes

    class Voice(Conditioner):
        name, kind, site, feature_dim, needs = "test-voice", "audio", InjectionSite.TOKENS, 4, frozenset()
        drives = frozenset({"face"})

        def prepare(self, driving, reference, spec):
            raise NotImplementedError

    class Hum(Voice):
        name, drives = "test-hum", frozenset()

    from charanim.engine.injection import build_adapter

    for adapter in (Voice, Hum):  # untrained, zero: they change nothing the model draws
        zero = build_adapter(InjectionSite.TOKENS, pipeline.backbone.dims, feature_dim=4)
        pipeline.backbone.adapters[adapter.name] = (InjectionSite.TOKENS, zero)

    def beside(adapter, refine=None):
        conditions = [condition, Condition(adapter.name, InjectionSite.TOKENS, features=torch.zeros(4, 4))]
        return AnimatePipeline(pipeline.backbone, [pipeline.conditioners[0], adapter()])(
            reference, conditions, spec, settings=SamplingSettings(refine=refine),
            generator=torch.Generator().manual_seed(1),
        )  # fmt: skip

    assert not beside(Hum).settings.refine
    kept, unrefined = beside(Voice), beside(Voice, refine=False)
    assert kept.settings.refine and kept.refiner_kept_out == ("face",)
    assert refined.refiner_kept_out == () and unrefined.refiner_kept_out == ()
    face = face_boxes(condition.meta["keypoints"], condition.meta["body_format"], 32, 32)
    assert face.any() and not face.all()
    assert np.array_equal(kept.frames[face], unrefined.frames[face])
    assert not np.array_equal(kept.frames, unrefined.frames)


def test_a_denoiser_trained_on_from_a_refined_model_keeps_its_refiner(tmp_path, denoiser):
    """Its charanim.json names the refiner, so the model it exports carries the folder (and
    loads); the refiner's provenance still names the denoiser it was trained on."""
    from safetensors.torch import load_file

    from charanim.api import load_pipeline

    world, model = denoiser
    refined = Path(
        train(resolve(Recipe, _refiner_recipe(tmp_path, world, model), []), tmp_path / "r")["model"]
    )
    denoiser_recipe = model.parent.parent / "denoiser.yaml"
    summary = train(
        resolve(Recipe, denoiser_recipe, [f"model.init={refined}", "training.steps=1"]), tmp_path / "d"
    )
    exported = Path(summary["model"])
    weights = "refiner/diffusion_pytorch_model.safetensors"
    a, b = load_file(refined / weights), load_file(exported / weights)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    config = json.loads((exported / "charanim.json").read_text())
    assert config["refiner"]["dilation"] == 1 and config["provenance"]["refiner"]["denoiser"] == str(model)
    assert load_pipeline(str(exported), device="cpu").backbone.refiner is not None
    # from a model without one, none
    plain = train(
        resolve(Recipe, denoiser_recipe, [f"model.init={model}", "training.steps=1"]), tmp_path / "p"
    )
    assert not (Path(plain["model"]) / "refiner").exists()
    assert load_pipeline(plain["model"], device="cpu").backbone.refiner is None


def test_a_refiner_run_resumes_exactly_and_exports(tmp_path, denoiser):
    world, model = denoiser
    recipe = _refiner_recipe(tmp_path, world, model)
    straight = train(resolve(Recipe, recipe, []), tmp_path / "straight")
    train(resolve(Recipe, recipe, ["training.steps=2"]), tmp_path / "resumed")
    train(resolve(Recipe, recipe, []), tmp_path / "resumed", resume=True)
    weights = "refiner/diffusion_pytorch_model.safetensors"
    from safetensors.torch import load_file

    a, b = (load_file(Path(p) / weights) for p in (straight["model"], tmp_path / "resumed" / "model"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    # the samples were drawn once: the resumed run read them, and --export rebuilds the model
    assert len(list((tmp_path / "resumed" / "sampled").glob("chunk-*.safetensors"))) == 1
    exported = export_latest(resolve(Recipe, recipe, []), tmp_path / "resumed")
    c = load_file(Path(exported["model"]) / weights)
    assert all(torch.equal(a[k], c[k]) for k in a)


def test_a_refiner_trains_on_several_manifests_each_sampled_and_held_out_on_its_own(tmp_path, denoiser):
    from charanim.testing import write_humanoid_world
    from charanim.training.sampled_pairs import HeldOutFrames, sampled_pairs_of
    from charanim.training.trainer import check_recipe

    world, model = denoiser
    other = write_humanoid_world(
        tmp_path / "other", count=8, seed=4, frames=4, shard_size=4, test_fraction=0.25
    )
    recipe = _refiner_recipe(tmp_path, world, model)
    both = resolve(Recipe, recipe, [f"data.manifest=[{world},{other}]"])
    check_recipe(both)
    summary = train(both, tmp_path / "both")
    provenance = json.loads((Path(summary["model"]) / "charanim.json").read_text())["provenance"]
    assert provenance["refiner"]["data"] == [str(world), str(other)]
    # each manifest's pairs sampled into a folder of its own, as a run on it alone samples them
    alone = tmp_path / "alone"
    train(resolve(Recipe, recipe, [f"data.manifest={other}", "training.steps=1"]), alone)
    pairs = sampled_pairs_of(both, tmp_path / "both", kind="frames")  # all there: no model loaded
    assert pairs.sources == [4, 4] and len(pairs) == 8
    assert np.array_equal(
        pairs.frames[4:],
        sampled_pairs_of(resolve(Recipe, recipe, [f"data.manifest={other}"]), alone, kind="frames").frames,
    )
    assert not np.array_equal(pairs.frames[:4], pairs.frames[4:])
    # the last tenth of each manifest's pairs (one of four) is held out, never trained on
    frames = HeldOutFrames(pairs)
    assert sorted({p for p, _ in frames.held_out_picks()}) == [3, 7]
    picked = {frames.pick(np.random.default_rng(seed))[0] for seed in range(200)}
    assert picked == {0, 1, 2, 4, 5, 6}

    with pytest.raises(CharanimError, match="training.task: autoencoder reads one manifest"):
        check_recipe(
            resolve(Recipe, recipe, [f"data.manifest=[{world},{other}]", "training.task=autoencoder"])
        )
    with pytest.raises(CharanimError, match="each once"):
        train(resolve(Recipe, recipe, [f"data.manifest=[{world},{world}]"]), tmp_path / "twice")
    with pytest.raises(CharanimError, match="'missing.jsonl' does not exist"):
        check_recipe(resolve(Recipe, recipe, [f"data.manifest=[{world},missing.jsonl]"]))
    assert not (tmp_path / "d").exists() and not (tmp_path / "twice").exists()


def test_the_absolute_error_trains_another_refiner_and_only_the_refiner_task_takes_it(tmp_path, denoiser):
    from safetensors.torch import load_file

    world, model = denoiser
    recipe = _refiner_recipe(tmp_path, world, model)
    weights = "refiner/diffusion_pytorch_model.safetensors"
    squared = load_file(Path(train(resolve(Recipe, recipe, []), tmp_path / "l2")["model"]) / weights)
    absolute = train(resolve(Recipe, recipe, ["training.pixel_loss=l1"]), tmp_path / "l1")
    assert absolute["final_loss"] > 0
    trained = load_file(Path(absolute["model"]) / weights)
    assert not torch.equal(squared["conv_out.weight"], trained["conv_out.weight"])
    with pytest.raises(CharanimError, match="pixel_loss is the refiner task's loss"):
        train(
            resolve(Recipe, recipe, ["training.task=autoencoder", "training.pixel_loss=l1"]), tmp_path / "ae"
        )
    assert not (tmp_path / "ae").exists()


def _first_loss(run: Path) -> float:
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return next(r["loss"] for r in records if r.get("step") == 1 and "loss" in r)


def test_the_edge_loss_adds_to_the_first_step_and_trains_another_refiner(tmp_path, denoiser):
    from safetensors.torch import load_file

    world, model = denoiser
    recipe = _refiner_recipe(tmp_path, world, model)
    weights = "refiner/diffusion_pytorch_model.safetensors"
    runs = {
        name: train(
            resolve(Recipe, recipe, ["training.pixel_loss=l1", "log_every=1", *extra]), tmp_path / name
        )
        for name, extra in (("plain", []), ("edges", ["training.edge_weight=1.0"]))
    }
    first = {name: _first_loss(tmp_path / name) for name in runs}
    # the same batch from the same start: the gradients' error can only add
    assert first["edges"] > first["plain"] > 0
    trained = {name: load_file(Path(run["model"]) / weights)["conv_out.weight"] for name, run in runs.items()}
    assert not torch.equal(trained["plain"], trained["edges"])
    with pytest.raises(CharanimError, match="edge_weight is a loss of the autoencoder and refiner"):
        train(resolve(Recipe, recipe, ["training.task=denoiser", "training.edge_weight=1.0"]), tmp_path / "d")
    with pytest.raises(CharanimError, match="edge_weight must be 0"):
        train(resolve(Recipe, recipe, ["training.edge_weight=-1"]), tmp_path / "negative")
    assert not (tmp_path / "d").exists() and not (tmp_path / "negative").exists()


def test_the_foreground_weight_inset_leaves_the_outline_weighed_as_the_backdrop(tmp_path, denoiser):
    from charanim.training.refiner import inset

    mask = torch.zeros(1, 1, 9, 9)
    mask[..., 2:7, 2:7] = 1.0  # a 5x5 character
    assert torch.equal(inset(mask, 0), mask)
    shrunk = inset(mask, 1)
    assert shrunk.sum() == 9 and shrunk[..., 3:6, 3:6].all()
    assert inset(mask, 3).sum() == 0  # a part narrower than 2 x inset + 1 pixels keeps no extra weight

    world, model = denoiser
    recipe = _refiner_recipe(tmp_path, world, model)
    first = {}
    for name, extra in (("whole", []), ("inset", ["training.foreground_inset=1"])):
        train(resolve(Recipe, recipe, ["training.pixel_loss=l1", "log_every=1", *extra]), tmp_path / name)
        first[name] = _first_loss(tmp_path / name)
    assert first["inset"] != first["whole"]  # the same first batch, weighed otherwise
    with pytest.raises(CharanimError, match="foreground_inset shapes the refiner task's loss"):
        train(
            resolve(Recipe, recipe, ["training.task=autoencoder", "training.foreground_inset=1"]),
            tmp_path / "a",
        )
    with pytest.raises(CharanimError, match="foreground_inset must be 0"):
        train(resolve(Recipe, recipe, ["training.foreground_inset=-1"]), tmp_path / "negative")
    assert not (tmp_path / "a").exists() and not (tmp_path / "negative").exists()


def _refine_calls(pipeline, condition, reference, spec, monkeypatch) -> list[dict]:
    """The keyword arguments of every ``refine`` call one animation of ``condition`` makes,
    and the warp it was given."""
    from charanim.engine import pipeline as engine_pipeline
    from charanim.engine.pipeline import SamplingSettings

    given = []
    real = engine_pipeline.refine
    monkeypatch.setattr(
        engine_pipeline, "refine", lambda *a, **k: given.append({**k, "warp": a[3]}) or real(*a, **k)
    )
    pipeline(
        reference, [condition], spec, settings=SamplingSettings(), generator=torch.Generator().manual_seed(1)
    )
    return given


def test_a_refiner_gated_at_the_references_bones_keeps_them_and_animate_gives_them(
    tmp_path, denoiser, monkeypatch
):
    from safetensors.torch import load_file

    from charanim.api import load_pipeline
    from charanim.conditioning import OutputSpec
    from charanim.io.pixels import to_pixels
    from charanim.training.batch import BatchBuilder
    from charanim.training.data import ManifestData

    world, model = denoiser
    recipe = resolve(
        Recipe,
        _refiner_recipe(tmp_path, world, model),
        ["model.refiner.reference_bones=true", "training.steps=2"],
    )
    summary = train(recipe, tmp_path / "run")
    assert json.loads((Path(summary["model"]) / "charanim.json").read_text())["refiner"]["reference_bones"]
    # each sampled pair keeps where its reference's skeleton lies, as animate will find it
    stored = load_file(tmp_path / "run" / "sampled" / "chunk-00000.safetensors")["bones"]
    pipeline = load_pipeline(summary["model"], device="cpu")
    spec = OutputSpec(32, 32, 4, 8.0)
    builder = BatchBuilder(pipeline.backbone, pipeline.conditioners, spec, "retarget")
    sample = ManifestData(recipe.data, frames=4).sample(0, np.random.default_rng(0))
    condition, _, _ = builder.motion_condition(sample, np.random.default_rng(0), pose_source="retarget")
    bones = reference_bones(condition, (32, 32))
    assert bones.any() and not bones.all()
    assert torch.equal(stored[0].bool(), bones[0])

    given = _refine_calls(pipeline, condition, to_pixels(builder._fit(sample.reference)), spec, monkeypatch)
    assert len(given) == 1 and torch.equal(given[0]["bones"], bones)


def test_a_refiner_reads_the_references_pose_map_and_nothing_drawn_without_one():
    spec = RefinerSpec(inputs=("frame", "reference_motion"), dilation=0)
    reference = torch.zeros(3, 8, 8)
    frames = torch.full((1, 3, 8, 8), 0.5)  # the gate open everywhere
    net = build_refiner(spec, (8, 16))
    torch.nn.init.normal_(net.conv_out.weight, std=0.5)
    drawn = torch.full((3, 8, 8), -1.0)
    drawn[:, 2:4, 2:6] = 1.0  # a limb where the reference stood
    blank = refine(net, spec, frames, frames.clone(), None, reference)
    assert torch.equal(
        blank,
        refine(net, spec, frames, frames.clone(), None, reference, reference_motion=-torch.ones(3, 8, 8)),
    )
    assert not torch.equal(
        blank, refine(net, spec, frames, frames.clone(), None, reference, reference_motion=drawn)
    )


def test_a_refiner_reading_the_references_pose_map_gets_it_in_training_and_in_animate(
    tmp_path, denoiser, monkeypatch
):
    from safetensors.torch import load_file

    from charanim.api import load_pipeline
    from charanim.conditioning import OutputSpec
    from charanim.io.pixels import to_pixels, to_uint8
    from charanim.training.batch import BatchBuilder
    from charanim.training.data import ManifestData

    world, model = denoiser
    inputs = "model.refiner.inputs=[frame,warp,motion,reference,reference_motion]"
    recipe = resolve(Recipe, _refiner_recipe(tmp_path, world, model), [inputs, "training.steps=2"])
    summary = train(recipe, tmp_path / "run")
    config = json.loads((Path(summary["model"]) / "charanim.json").read_text())
    assert config["refiner"]["inputs"][-1] == "reference_motion"
    pipeline = load_pipeline(summary["model"], device="cpu")
    assert pipeline.backbone.refiner.config.in_channels == 15
    # each sampled pair keeps its reference's pose map, the one animate's condition carries
    stored = load_file(tmp_path / "run" / "sampled" / "chunk-00000.safetensors")["reference_motion"]
    spec = OutputSpec(32, 32, 4, 8.0)
    builder = BatchBuilder(pipeline.backbone, pipeline.conditioners, spec, "retarget")
    sample = ManifestData(recipe.data, frames=4).sample(0, np.random.default_rng(0))
    condition, _, _ = builder.motion_condition(sample, np.random.default_rng(0), pose_source="retarget")
    own = condition.reference[:, 0]
    assert own.amax() > -0.9 and np.array_equal(stored[0].numpy(), to_uint8(own))

    given = _refine_calls(pipeline, condition, to_pixels(builder._fit(sample.reference)), spec, monkeypatch)
    assert len(given) == 1 and torch.equal(given[0]["reference_motion"], own)


def test_a_refiner_reads_the_warp_it_was_trained_on_in_training_and_in_animate(
    tmp_path, denoiser, monkeypatch
):
    from safetensors.torch import load_file

    from charanim.api import load_pipeline
    from charanim.conditioning import OutputSpec
    from charanim.engine.reference_warp import warped_reference
    from charanim.io.pixels import to_pixels, to_uint8
    from charanim.training.batch import BatchBuilder
    from charanim.training.data import ManifestData

    world, model = denoiser
    assert load_pipeline(str(model), device="cpu").backbone.config.warp_behind == "reference"
    # a refiner that reads the warp cleared behind moved limbs, on a denoiser that is not given it
    recipe = resolve(
        Recipe,
        _refiner_recipe(tmp_path, world, model),
        ["model.refiner.warp_behind=filled", "training.steps=2"],
    )
    summary = train(recipe, tmp_path / "run")
    assert (
        json.loads((Path(summary["model"]) / "charanim.json").read_text())["refiner"]["warp_behind"]
        == "filled"
    )
    pipeline = load_pipeline(summary["model"], device="cpu")
    spec = OutputSpec(32, 32, 4, 8.0)
    builder = BatchBuilder(pipeline.backbone, pipeline.conditioners, spec, "retarget")
    sample = ManifestData(recipe.data, frames=4).sample(0, np.random.default_rng(0))
    condition, _, _ = builder.motion_condition(sample, np.random.default_rng(0), pose_source="retarget")
    reference = to_pixels(builder._fit(sample.reference))
    filled = warped_reference(condition, reference, 4, "filled")
    assert not torch.equal(filled, warped_reference(condition, reference, 4))  # something moved
    # each sampled pair keeps that warp, and animate gives the refiner the same
    stored = load_file(tmp_path / "run" / "sampled" / "chunk-00000.safetensors")["warp"]
    assert np.array_equal(stored[0].numpy(), to_uint8(filled))
    given = _refine_calls(pipeline, condition, reference, spec, monkeypatch)
    assert len(given) == 1 and torch.allclose(given[0]["warp"], filled.transpose(0, 1), atol=1e-6)
    # a run resumed under another warp does not train on the pairs sampled with this one
    from charanim.training.sampled_pairs import sample_pairs

    sampled = tmp_path / "run" / "sampled"
    assert len(sample_pairs(str(model), recipe.data, 4, sampled, kind="frames", warp_behind="filled")) == 4
    for other in ("reference", None):
        with pytest.raises(CharanimError, match="warp was drawn otherwise"):
            sample_pairs(str(model), recipe.data, 4, sampled, kind="frames", warp_behind=other)
    # pairs drawn with the denoiser's own warp serve a run that names that same warp
    own = tmp_path / "own"
    sample_pairs(str(model), recipe.data, 2, own, kind="frames")
    assert len(sample_pairs(str(model), recipe.data, 2, own, kind="frames", warp_behind="reference")) == 2
    with pytest.raises(CharanimError, match="warp was drawn otherwise"):
        sample_pairs(str(model), recipe.data, 2, own, kind="frames", warp_behind="filled")
    with pytest.raises(CharanimError, match="warp_behind"):
        resolve(Recipe, _refiner_recipe(tmp_path, world, model), ["model.refiner.warp_behind=blank"])
    with pytest.raises(ValueError, match="refiner warp_behind must be one of"):
        RefinerSpec(warp_behind="blank")


def test_refiner_folders_and_settings_come_together(tmp_path, denoiser):
    import shutil

    from charanim.api import load_pipeline
    from charanim.models.config import read_model_config, write_model_config

    _, model = denoiser
    copy = tmp_path / "model"
    shutil.copytree(model, copy)
    (copy / "refiner").mkdir()
    with pytest.raises(ModelLoadError, match="refiner/ folder but no refiner settings"):
        load_pipeline(str(copy), device="cpu")
    (copy / "refiner").rmdir()
    config = read_model_config(copy)
    config.refiner = RefinerSpec().to_json()
    write_model_config(copy, config)
    with pytest.raises(ModelLoadError, match="its refiner/ folder is missing"):
        load_pipeline(str(copy), device="cpu")


def test_refine_asked_of_a_model_without_one_is_refused(denoiser):
    from charanim.api import load_pipeline
    from charanim.conditioning import OutputSpec
    from charanim.engine.pipeline import SamplingSettings
    from charanim.errors import InvalidOptionError

    _, model = denoiser
    pipeline = load_pipeline(str(model), device="cpu")
    with pytest.raises(InvalidOptionError, match="this model has no refiner"):
        pipeline(
            torch.zeros(3, 32, 32), [], OutputSpec(32, 32, 4, 8.0), settings=SamplingSettings(refine=True)
        )


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.denoiser=null", "needs model.denoiser"),
        ("model.refiner.inputs=[frame,depth]", "refiner inputs must be some of"),
        ("training.sampled_pairs=1", "sampled_pairs must be at least 2"),
    ],
)
def test_bad_refiner_recipes_are_refused(tmp_path, denoiser, override, message):
    world, model = denoiser
    with pytest.raises(CharanimError, match=message):
        train(resolve(Recipe, _refiner_recipe(tmp_path, world, model), [override]), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_refiner_is_trained_for_charanims_own_models_only(tmp_path, denoiser, tiny_wan_i2v):
    world, _ = denoiser
    recipe = resolve(Recipe, _refiner_recipe(tmp_path, world, tiny_wan_i2v), [])
    with pytest.raises(CharanimError, match="refiners are trained for charanim's own models"):
        train(recipe, tmp_path / "run")
    assert not (tmp_path / "run").exists()
