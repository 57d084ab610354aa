"""Print a command from README.md: the code block after ``<!-- readme-command: NAME -->``.

CI runs the README's own commands through this, so the README cannot drift from
what is tested.
"""

import re
import sys
from pathlib import Path


def readme_command(name: str, readme: Path = Path(__file__).resolve().parent.parent / "README.md") -> str:
    text = readme.read_text(encoding="utf-8")
    match = re.search(rf"<!-- readme-command: {re.escape(name)} -->\s*```(?:bash|sh)?\n(.*?)```", text, re.S)
    if not match:
        raise SystemExit(f"README.md has no command block named {name!r}")
    return match.group(1).strip()


if __name__ == "__main__":
    print(readme_command(sys.argv[1]))
