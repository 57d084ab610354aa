"""Every recipe shipped in recipes/ resolves: no unknown key, no wrong type, known conditioners."""

from pathlib import Path

import pytest

from charanim.config import resolve
from charanim.plugins import get_plugins
from charanim.training.recipe import Recipe

RECIPES = sorted((Path(__file__).resolve().parents[1] / "recipes").rglob("*.yaml"))


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: str(p.relative_to(p.parents[2])))
def test_shipped_recipes_resolve(path):
    recipe = resolve(Recipe, path)
    registry = get_plugins().conditioners
    for name in recipe.conditioners:
        registry.get(name)
    assert recipe.training.batch_size % recipe.training.gradient_accumulation == 0
