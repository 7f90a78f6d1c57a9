"""The package root is the public face: every exported name resolves, and importing it stays light."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import winnow

README = Path(__file__).resolve().parents[1] / "README.md"
# Extras live in their own modules on purpose: importing one is what asks for its optional package.
EXTRA_MODULES = re.compile(r"winnow\.(integrations|stores)\.\w+$")


def test_every_exported_name_resolves():
    missing = [name for name in winnow.__all__ if getattr(winnow, name, None) is None]
    assert missing == []


def test_errors_raised_on_purpose_are_winnow_errors():
    errors = [name for name in winnow.__all__ if name.endswith("Error")]
    assert len(errors) >= 10
    assert [name for name in errors if not issubclass(getattr(winnow, name), winnow.WinnowError)] == []


def test_import_winnow_loads_no_torch_or_numpy():
    code = "import sys, winnow; print(sorted({'torch', 'numpy', 'transformers'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_readme_imports_only_the_public_face_or_an_extra():
    modules = re.findall(r"^\s*from (winnow[\w.]*) import", README.read_text(encoding="utf-8"), re.M)
    assert modules, "the README shows no winnow import"
    internal = [m for m in modules if m != "winnow" and not EXTRA_MODULES.match(m)]
    assert internal == []
