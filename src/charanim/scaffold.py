"""``charanim plugins new``: write a working conditioner plugin distribution to start from.

The generated folder is a complete, installable package (``pip install -e DIR``)
whose conditioner already runs (an edge-map motion signal) and whose tests run
charanim's shared conditioner contract, so an author starts from green tests and
changes one file. Templates live in ``charanim/templates/conditioner_plugin``.
"""

from __future__ import annotations

import keyword
import re
from importlib import resources
from pathlib import Path
from string import Template

from charanim import __version__
from charanim.errors import InvalidOptionError

#: template file -> path in the new distribution (``$package`` is substituted)
LAYOUT = {
    "pyproject.toml.tmpl": "pyproject.toml",
    "README.md.tmpl": "README.md",
    "__init__.py.tmpl": "src/$package/__init__.py",
    "plugin.py.tmpl": "src/$package/plugin.py",
    "conditioner.py.tmpl": "src/$package/conditioner.py",
    "test_conditioner.py.tmpl": "tests/test_$name_under.py",
}
NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


def scaffold_values(name: str, description: str) -> dict[str, str]:
    if not NAME.match(name):
        raise InvalidOptionError(
            f"Plugin name '{name}' is not valid: use lower-case letters, digits and single hyphens, e.g. 'depth' or 'line-art'."
        )
    under = name.replace("-", "_")
    package = f"charanim_{under}"
    if keyword.iskeyword(under):
        raise InvalidOptionError(f"Plugin name '{name}' is a Python keyword; choose another.")
    base_version = ".".join(__version__.split(".")[:2])
    return {
        "name": name, "name_under": under, "package": package, "distribution": f"charanim-{name}",
        "class_name": "".join(part.capitalize() for part in name.split("-")) + "Conditioner",
        "description": description.replace('"', "'"), "charanim_version": base_version,
    }  # fmt: skip


def new_conditioner_plugin(
    name: str, out: Path, description: str = "edge map of the driving video"
) -> list[Path]:
    """Write the distribution into ``out`` (which must not exist or be empty)."""
    values = scaffold_values(name, description)
    from charanim.plugins import get_plugins

    if name in get_plugins().conditioners.names():  # two plugins may not register one name
        raise InvalidOptionError(f"A conditioner named '{name}' is already installed; choose another name.")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidOptionError(f"'{out}' already exists and is not an empty folder; choose a new one.")
    templates = resources.files("charanim") / "templates" / "conditioner_plugin"
    written = []
    for template_name, target in LAYOUT.items():
        relative = Template(target).substitute(package=values["package"], name_under=values["name_under"])
        text = Template((templates / template_name).read_text(encoding="utf-8")).substitute(values)
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
