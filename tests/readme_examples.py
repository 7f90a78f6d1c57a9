"""Run the README's Python examples as they are written: each is the ```python block after a
``<!-- test: NAME -->`` line, executed in a fresh folder, and its printed lines are returned."""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_example(name: str) -> str:
    """The source of the README example marked ``<!-- test: name -->``."""
    pattern = rf"<!-- test: {re.escape(name)} -->\n```python\n(.*?)```"
    found = re.search(pattern, README.read_text(encoding="utf-8"), re.DOTALL)
    assert found, f"README.md has no python example marked <!-- test: {name} -->"
    return found.group(1)


def run_readme_example(name: str, folder: Path) -> list[str]:
    """Execute the example with ``folder`` as the working directory; its printed lines."""
    out = io.StringIO()
    previous = Path.cwd()
    os.chdir(folder)
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(readme_example(name), f"README.md[{name}]", "exec"), {"__name__": "__readme__"})
    finally:
        os.chdir(previous)
    return out.getvalue().splitlines()
