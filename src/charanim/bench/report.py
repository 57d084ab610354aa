"""The bench report: ``results.json`` (stable schema), ``index.html`` with tables, plots
and frame strips, a text summary, and ``compare`` between two reports."""

from __future__ import annotations

import html
import json
import math
import time
from pathlib import Path

import numpy as np

from charanim import __version__
from charanim.bench.cases import MOTION_BANDS
from charanim.errors import InputFileError
from charanim.io.atomic import write_text_atomic

SCHEMA = 1


def _mean(values: list) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return round(float(np.mean(finite)), 4) if finite else None


def summarise(rows: list[dict], contenders: list, metrics: list, key: str = "group") -> tuple[dict, dict]:
    """Mean scores per contender over all rows, and per value of ``row[key]`` (rows
    without one are in the whole only)."""
    names = [c.name for c in contenders]
    summary = {
        n: {m.name: _mean([r["scores"].get(n, {}).get(m.name) for r in rows]) for m in metrics} for n in names
    }
    for n in names:
        seconds = [r["seconds"][n] for r in rows if n in r["seconds"]]
        summary[n]["seconds_per_case"] = _mean(seconds)
    parts = sorted({r.get(key) for r in rows} - {None})
    by_part = {
        g: {
            n: {
                m.name: _mean([r["scores"].get(n, {}).get(m.name) for r in rows if r.get(key) == g])
                for m in metrics
            }
            for n in names
        }
        for g in parts
    }
    return summary, by_part


def set_scores(out: Path, rows: list[dict], contenders: list, metrics: list) -> tuple[dict, dict]:
    """Set metrics (FID) per contender over all cases, and per group: from the features
    the runner cached for every scored case."""
    from charanim.bench.runner import features_file

    overall: dict = {c.name: {} for c in contenders}
    grouped: dict = {}
    for metric in (m for m in metrics if getattr(m, "set_level", False)):
        for contender in contenders:
            per_group: dict = {}
            for row in rows:
                if contender.name not in row["scores"]:
                    continue
                mine = features_file(out, contender.key, row["id"], metric.name)
                truth = features_file(out, "target", row["id"], metric.name)
                if mine.is_file() and truth.is_file():
                    pair = per_group.setdefault(row["group"], ([], []))
                    pair[0].append(np.load(mine, allow_pickle=False))
                    pair[1].append(np.load(truth, allow_pickle=False))
            if not per_group:
                continue
            everything = [np.concatenate(sum((p[i] for p in per_group.values()), [])) for i in (0, 1)]
            overall[contender.name][metric.name] = round(metric.score(*everything), 4)
            for group, (outputs, targets) in per_group.items():
                score = metric.score(np.concatenate(outputs), np.concatenate(targets))
                grouped.setdefault(group, {}).setdefault(contender.name, {})[metric.name] = round(score, 4)
    return overall, grouped


def write_results(
    out: Path,
    suite: str,
    rows: list[dict],
    contenders: list,
    metrics: list,
    speed: dict | None,
    unavailable: dict | None = None,
) -> dict:
    summary, by_group = summarise(rows, contenders, metrics)
    overall, grouped = set_scores(out, rows, contenders, metrics)
    for name, scores in overall.items():
        summary.setdefault(name, {}).update(scores)
    for group, per_contender in grouped.items():
        for name, scores in per_contender.items():
            by_group.setdefault(group, {}).setdefault(name, {}).update(scores)
    # by how far each target stands from its reference (world cases). No FID per band: each
    # would cost as much as the whole's, and over a few cases' frames it mostly measures
    # how few frames there are
    _, by_motion = summarise(rows, contenders, metrics, key="motion_band")
    results = {
        "schema": SCHEMA, "charanim": __version__, "created": time.strftime("%Y-%m-%d %H:%M:%S"), "suite": suite,
        "contenders": [{"name": c.name, "kind": c.kind, "parameters": c.parameters, **(c.details or {})} for c in contenders],
        "metrics": [m.describe() for m in metrics],
        "cases": rows, "summary": summary, "by_group": by_group, "by_motion": by_motion, "speed": speed or {},
        "failed_cases": [{"id": r["id"], "error": r["error"]} for r in rows if r["error"]],
        "unavailable_metrics": unavailable or {},
    }  # fmt: skip
    write_text_atomic(out / "results.json", json.dumps(results, indent=2) + "\n")
    return results


def text_summary(results: dict) -> str:
    metrics = [m["name"] for m in results["metrics"]]
    lines = [f"{'contender':<16}" + "".join(f"{m[:14]:>15}" for m in metrics)]
    for name, scores in results["summary"].items():
        lines.append(f"{name[:16]:<16}" + "".join(f"{_fmt(scores.get(m)):>15}" for m in metrics))
    for name, why in results.get("unavailable_metrics", {}).items():
        lines.append(f"{name}: not computed ({why})")
    if results["failed_cases"]:
        lines.append(
            f"{len(results['failed_cases'])} case(s) failed to load: "
            + ", ".join(c["id"] for c in results["failed_cases"])
        )
    return "\n".join(lines)


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def plots(out: Path, results: dict) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results["summary"])
    files = []
    for metric in results["metrics"]:
        values = [results["summary"][n].get(metric["name"]) for n in names]
        if all(v is None for v in values):
            continue
        # horizontal bars: contender names (ablations are long) read at any count
        figure, axis = plt.subplots(figsize=(6, 0.9 + 0.32 * len(names)), dpi=100)
        axis.barh(
            names,
            [v if v is not None else 0 for v in values],
            color=["#888" if "baseline" in str(k) else "#3a7" for k in _kinds(results)],
        )
        axis.invert_yaxis()  # first contender on top, as in the tables
        axis.set_title(f"{metric['name']} ({metric['direction']} is better)", fontsize=9)
        axis.tick_params(labelsize=8)
        figure.tight_layout()
        name = f"plot-{metric['name']}.png"
        figure.savefig(out / name)
        plt.close(figure)
        files.append(name)
    return files


def _kinds(results: dict) -> list[str]:
    kinds = {c["name"]: c["kind"] for c in results["contenders"]}
    return [kinds.get(n, "model") for n in results["summary"]]


def frame_strip(out: Path, case, outputs: dict[str, np.ndarray], columns: int = 4) -> str:
    """reference / driving / each contender / target, ``columns`` frames each."""
    from PIL import Image, ImageDraw

    picks = np.linspace(0, len(case.driving) - 1, columns).round().astype(int)
    height, width = case.reference.shape[:2]
    rows = [("reference", np.repeat(case.reference[None], len(case.driving), 0)), ("driving", case.driving)]
    rows += [(name, frames) for name, frames in outputs.items() if frames is not None]
    if case.target is not None:
        rows.append(("target", case.target))
    label = 72
    canvas = Image.new("RGB", (label + columns * width, len(rows) * height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for r, (name, frames) in enumerate(rows):
        draw.text((2, r * height + height // 2 - 5), name[:11], fill=(0, 0, 0))
        for c, index in enumerate(picks):
            canvas.paste(
                Image.fromarray(frames[min(index, len(frames) - 1)]), (label + c * width, r * height)
            )
    folder = out / "strips"
    folder.mkdir(exist_ok=True)
    canvas.save(folder / f"{case.id}.png")
    return f"strips/{case.id}.png"


_BAND_ORDER = {name: order for order, (_, name) in enumerate(MOTION_BANDS)}
_BAND_NOTE = html.escape(
    "Motion amount: 1 - IoU of the reference's and the target's character silhouettes (mean over "
    f"frames); small < {MOTION_BANDS[0][0]} <= medium < {MOTION_BANDS[1][0]} <= large. The still "
    "reference is hard to beat where little moves."
)


def write_html(out: Path, results: dict, strips: list[str], plot_files: list[str]) -> Path:
    metrics = results["metrics"]
    head = "".join(
        f"<th title='{html.escape(m['description'])}'>{m['name']}<br><small>{m['direction']} better</small></th>"
        for m in metrics
    )

    def table(scores: dict) -> str:
        body = "".join(
            f"<tr><td>{html.escape(n)}</td>"
            + "".join(f"<td>{_fmt(s.get(m['name']))}</td>" for m in metrics)
            + "</tr>"
            for n, s in scores.items()
        )
        return f"<table><tr><th>contender</th>{head}</tr>{body}</table>"

    speed = ""
    if results["speed"]:
        rows = "".join(
            f"<tr><td>{html.escape(n)}</td><td>{r.get('size')}</td><td>{r.get('frames')}</td><td>{r.get('seconds_per_frame', '-')}</td>"
            f"<td>{r.get('fps', '-')}</td><td>{r.get('bare_ratio', '-')}</td><td>{r.get('peak_rss_mb', '-')}</td><td>{r.get('parameters', '-')}</td></tr>"
            for n, runs in results["speed"].items() for r in runs
        )  # fmt: skip
        speed = f"<h2>Speed and memory</h2><table><tr><th>model</th><th>size</th><th>frames</th><th>s/frame</th><th>fps</th><th title='wall time over a bare diffusers loop making the same transformer calls'>vs bare loop</th><th>peak RSS MB</th><th>parameters</th></tr>{rows}</table>"
    groups = "".join(f"<h3>{html.escape(g)}</h3>{table(s)}" for g, s in results["by_group"].items())
    bands = "".join(
        f"<h3>{html.escape(band)}</h3>{table(s)}"
        for band, s in sorted(
            results.get("by_motion", {}).items(), key=lambda item: _BAND_ORDER.get(item[0], 9)
        )
    )
    failed = "".join(
        f"<li>{html.escape(c['id'])}: {html.escape(str(c['error']))}</li>" for c in results["failed_cases"]
    )
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>charanim bench: {html.escape(results['suite'])}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}
td:first-child,th:first-child{{text-align:left}}img{{image-rendering:pixelated;margin:4px}}</style></head><body>
<h1>charanim bench — suite <code>{html.escape(results['suite'])}</code></h1>
<p>charanim {results['charanim']}, {results['created']}, {len(results['cases'])} cases.</p>
<h2 id="summary">Summary</h2>{table(results['summary'])}
<h2>By group</h2>{groups}
{f'<h2>By motion</h2><p>{_BAND_NOTE}</p>{bands}' if bands else ''}
{speed}
<h2>Plots</h2>{''.join(f'<img src="{p}" alt="{p}">' for p in plot_files)}
<h2>Cases</h2>{''.join(f'<div><p>{html.escape(Path(s).stem)}</p><img src="{s}" width="{4 * 128 + 144}"></div>' for s in strips)}
{f'<h2>Failed cases</h2><ul>{failed}</ul>' if failed else ''}
</body></html>"""  # fmt: skip
    write_text_atomic(out / "index.html", page)
    return out / "index.html"


def _read_results(path: Path) -> dict:
    """A report's results.json (or the report folder holding it), checked enough to compare."""
    file = path / "results.json" if path.is_dir() else path
    try:
        results = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InputFileError(f"'{file}' is not a bench report's results.json (not JSON).") from None
    if not isinstance(results, dict) or not {"metrics", "summary"} <= results.keys():
        raise InputFileError(f"'{file}' is not a bench report's results.json (no metrics or summary).")
    return results


def compare(first: Path, second: Path) -> dict:
    """Per contender present in both reports: second minus first, and whether it improved."""
    a, b = _read_results(first), _read_results(second)
    direction = {m["name"]: m["direction"] for m in b["metrics"]}
    out = {}
    for name in sorted(set(a["summary"]) & set(b["summary"])):
        rows = {}
        for metric, value in b["summary"][name].items():
            before = a["summary"][name].get(metric)
            if value is None or before is None:
                continue
            delta = round(value - before, 4)
            better = (delta > 0) == (direction.get(metric, "higher") == "higher") if delta else None
            rows[metric] = {"before": before, "after": value, "delta": delta, "improved": better}
        out[name] = rows
    return out
