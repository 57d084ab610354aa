"""Third-party authoring, end to end: `charanim plugins new` writes a distribution, pip
builds and installs it (into a throwaway folder, not this environment), and a fresh
`charanim` lists it, its own tests pass, and `animate` drives a model with it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from charanim.errors import InvalidOptionError
from charanim.scaffold import new_conditioner_plugin, scaffold_values


def _charanim(*args: str, site: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site), "CHARANIM_DEBUG": "0"}
    command = [sys.executable, "-m", "charanim", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    root = tmp_path_factory.mktemp("authoring")
    source, site = root / "charanim-line-art", root / "site"
    new_conditioner_plugin("line-art", source, "edge map of the driving video")
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(site), str(source)]  # fmt: skip
    subprocess.run(pip, check=True, capture_output=True, timeout=600)
    return source, site


def test_the_new_plugin_is_listed_with_its_version(installed):
    _, site = installed
    result = _charanim("plugins", "--json", site=site)
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)["plugins"]}
    assert plugins["line-art"]["distribution"] == "charanim-line-art"
    assert plugins["line-art"]["version"] == "0.1.0"
    assert plugins["line-art"]["registered"] == {"conditioner": ["line-art"]}
    assert not plugins["line-art"]["errors"]


def test_its_generated_tests_pass(installed):
    source, site = installed
    env = {**os.environ, "PYTHONPATH": str(site)}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(source / "tests")]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=source)
    assert result.returncode == 0, result.stdout[-2000:]
    assert "passed" in result.stdout and "failed" not in result.stdout


def test_animate_uses_it(installed, tiny_model, media, tmp_path):
    _, site = installed
    out = tmp_path / "out.mp4"
    result = _charanim(
        "animate", str(media["reference"]), str(media["drive"]), "-o", str(out), "--model", str(tiny_model),
        "--conditioner", "line-art", "--max-frames", "4", "--steps", "2", "--json", site=site,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["conditioners"] == ["line-art"] and summary["frames"] == 4
    assert out.stat().st_size > 0


def test_bad_names_and_occupied_folders_are_refused(tmp_path):
    for bad in ("Line", "line_art", "-x", "9lives", ""):
        with pytest.raises(InvalidOptionError):
            scaffold_values(bad, "x")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    with pytest.raises(InvalidOptionError, match="already exists"):
        new_conditioner_plugin("depth", tmp_path / "taken")
    with pytest.raises(InvalidOptionError, match="named 'pose' is already installed"):
        new_conditioner_plugin("pose", tmp_path / "new")
    assert not (tmp_path / "new").exists()
    assert scaffold_values("line-art", "x")["class_name"] == "LineArtConditioner"
