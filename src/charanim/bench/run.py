"""One bench run: cases + contenders + metrics -> report folder."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from charanim.bench import report
from charanim.bench.cases import speed_suite, world_suite, yaml_suite
from charanim.bench.runner import (
    baseline_contenders,
    cached_output,
    driven_by_target_skeleton,
    model_contender,
    run_cases,
)
from charanim.errors import CharanimError, InvalidOptionError, UnknownNameError

SUITES = ("world", "real", "speed")
#: ablations that add contenders, each model again: without its text prompt, without
#: detail restoration, driven by the target's own true skeleton (pose models; world cases),
#: with the reference's scene kept where the model generates it or the other way round
ABLATIONS = ("text", "detail", "target-pose", "scene", "refiner")


@dataclass
class BenchOptions:
    suite: str = "world"
    models: list[str] = field(default_factory=list)
    out: Path = Path("bench-report")
    cases: int = 24
    data: Path | None = None
    steps: int | None = None
    seed: int = 0
    #: one contender per model and conditioner (empty: each model's own)
    conditioners: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    shard: tuple[int, int] = (0, 1)
    device: str = "auto"
    strips: int = 8
    ablations: list[str] = field(default_factory=list)
    #: sampling strength for every model (None: each model's own; see ``animate --strength``)
    strength: float | None = None
    #: world suite made here: how references are posed (``other``, or ``first-frame`` for
    #: relative motion; see ``synthesize world --reference-pose``)
    reference_pose: str = "other"


def load_cases(options: BenchOptions):
    if options.suite == "world":
        return world_suite(options.out, options.cases, options.data, reference_pose=options.reference_pose)
    if options.suite == "speed":
        return speed_suite()
    if options.suite == "real":
        return yaml_suite(real_suite_file(), suite="real")
    path = Path(options.suite)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise CharanimError(f"Suite file '{path}' does not exist.")
        return yaml_suite(path)
    raise UnknownNameError("suite", options.suite, list(SUITES) + ["<file>.yaml"])


def real_suite_file() -> Path:
    """Drawn characters driven by sprite animations, shipped in the package (see
    tools/make_real_suite.py and the folder's LICENSES.md)."""
    from importlib import resources

    return Path(str(resources.files("charanim") / "assets" / "bench" / "real" / "suite.yaml"))


def choose_metrics(names: list[str]):
    from charanim.plugins import get_plugins

    registry = get_plugins().metrics
    return [registry.get(n)() for n in (names or registry.names())]


def _runnable(metrics: list, explicit: bool) -> tuple[list, dict]:
    """Metrics that can run here; the others are left out with the reason (an error if
    the user asked for them by name)."""
    kept, unavailable = [], {}
    for metric in metrics:
        why = metric.available() if hasattr(metric, "available") else None
        if why is None:
            kept.append(metric)
        elif explicit:
            from charanim.bench.inception import MetricUnavailable

            raise MetricUnavailable(f"--metric {metric.name}: {why}")
        else:
            unavailable[metric.name] = why
    return kept, unavailable


def model_contenders(options: BenchOptions) -> list:
    """Every model x conditioner (pose vs RGB on one model, say), plus the ablated variants."""
    conditioners = options.conditioners or [None]
    contenders = []
    for model in options.models:
        for conditioner in conditioners:
            label = f" [{conditioner}]" if len(conditioners) > 1 else ""
            contender = model_contender(
                model, options.steps, options.seed, conditioner, options.device, label=label, strength=options.strength
            )  # fmt: skip
            contenders.append(contender)
            if "target-pose" in options.ablations and "pose" in contender.details["conditioners"]:
                contenders.append(driven_by_target_skeleton(contender))
            if "text" in options.ablations:
                contenders.append(
                    model_contender(
                        model, options.steps, options.seed, conditioner, options.device, text=False,
                        label=f"{label} (no text)", strength=options.strength,
                    )
                )  # fmt: skip
            if "detail" in options.ablations:
                contenders.append(
                    model_contender(
                        model, options.steps, options.seed, conditioner, options.device,
                        label=f"{label} (no detail restore)", strength=options.strength, restore_detail=0.0,
                    )
                )  # fmt: skip
            if "refiner" in options.ablations and contender.details["refine"]:
                contenders.append(
                    model_contender(
                        model, options.steps, options.seed, conditioner, options.device,
                        label=f"{label} (no refiner)", strength=options.strength, refine=False,
                    )
                )  # fmt: skip
            if "scene" in options.ablations:  # the other way of treating the scene than the model's
                other = "generate" if contender.details["scene"] == "keep" else "keep"
                contenders.append(
                    model_contender(
                        model, options.steps, options.seed, conditioner, options.device,
                        label=f"{label} (scene {'kept' if other == 'keep' else 'generated'})",
                        strength=options.strength, scene=other,
                    )
                )  # fmt: skip
    return contenders


def run_bench(options: BenchOptions, on_progress=None) -> dict:
    fresh = not options.out.exists()
    try:
        options.out.mkdir(parents=True, exist_ok=True)
        if options.suite == "speed":
            return _speed(options)
        metrics, unavailable = _runnable(choose_metrics(options.metrics), explicit=bool(options.metrics))
        unknown = set(options.ablations) - set(ABLATIONS)
        if unknown:
            raise UnknownNameError("ablation", sorted(unknown)[0], list(ABLATIONS))
        cases = load_cases(options)
        contenders = model_contenders(options) + baseline_contenders()
    except CharanimError:
        if fresh:  # a bad option or input leaves no report folder behind
            shutil.rmtree(options.out, ignore_errors=True)
        raise
    rows = run_cases(cases, contenders, metrics, options.out, options.shard, on_progress)
    results = report.write_results(options.out, options.suite, rows, contenders, metrics, None, unavailable)
    strips = []
    for case in [c for c in cases if c.error is None][: options.strips]:
        outputs = {k.name: cached_output(options.out, k, case)[0] for k in contenders}
        strips.append(report.frame_strip(options.out, case, outputs))
    report.write_html(options.out, results, strips, report.plots(options.out, results))
    return results


def _speed(options: BenchOptions) -> dict:
    if not options.models:
        raise InvalidOptionError("The speed suite needs at least one --model.")
    from charanim.bench.speed import measure

    choose_metrics(options.metrics)  # an unknown --metric is still an error here
    speed = {
        m: [measure(m, c.size[0], len(c.driving), options.steps, options.device) for c in speed_suite()]
        for m in options.models
    }
    results = report.write_results(options.out, "speed", [], [], [], speed)
    report.write_html(options.out, results, [], [])
    return results
