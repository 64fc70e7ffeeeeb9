"""The shipped packages import without the test and bench extras.

Faker comes only with the `test` and `bench` extras, and `bench/` is not in the wheel: a
module of the wheel that imports either breaks an installed reelcast. Evaluation-only
code lives in `bench/evalkit/`.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

#: Importable only with an extra or from a checkout, never from the installed wheel.
BLOCKED = ("faker", "bench")


def _shipped_packages() -> list[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    return list(config["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"])


def _shipped_modules() -> list[str]:
    """Every module of the wheel's packages, by dotted name, sorted."""
    modules = []
    for package in _shipped_packages():
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules.append(".".join(parts))
    return sorted(modules)


# Run in a fresh interpreter: the test session itself has Faker and bench imported.
_IMPORT_ALL = """
import importlib, json, sys
repo, blocked, modules = sys.argv[1], sys.argv[2].split(","), sys.argv[3].split(",")
sys.path.insert(0, repo)
for name in blocked:
    sys.modules[name] = None  # `import faker` now raises ModuleNotFoundError
failed = {}
for module in modules:
    try:
        found = importlib.import_module(module).__file__ or ""
    except BaseException as error:
        failed[module] = f"{type(error).__name__}: {error}"
    else:  # not another checkout's copy (an editable install puts one on the path)
        if not found.startswith(repo):
            failed[module] = f"imported from {found}, not from {repo}"
print(json.dumps(failed))
"""


@pytest.mark.slow
def test_every_shipped_module_imports_without_faker_or_bench() -> None:
    modules = _shipped_modules()
    assert "recs.evaluation.metrics" in modules and "compliance.pii.scan" in modules
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_ALL, str(REPO), ",".join(BLOCKED), ",".join(modules)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    failed: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    assert not failed, "shipped modules that need faker or bench (or fail to import):\n" + (
        "\n".join(f"  {module}: {error}" for module, error in failed.items())
    )


def test_no_shipped_module_mentions_faker_or_bench_in_an_import() -> None:
    """Also the imports inside functions, which importing the module does not run."""
    offenders = []
    for package in _shipped_packages():
        for path in sorted((REPO / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    names = [node.module or ""]
                else:
                    continue
                for name in names:
                    if name.split(".")[0] in BLOCKED:
                        offenders.append(f"{path.relative_to(REPO)}:{node.lineno}: {name}")
    assert not offenders, "shipped modules importing faker or bench:\n" + "\n".join(offenders)
