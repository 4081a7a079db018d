"""Claims about how the package is put together: seams, not behaviour."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import churnguard

PACKAGE = Path(churnguard.__file__).parent
HEAVY = ("lightgbm", "mlflow", "duckdb", "sklearn")


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _absolute(node: ast.ImportFrom, here: str, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = here.split(".") if is_package else here.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _private_imports(path: Path, root: Path = PACKAGE) -> list[str]:
    """Every ``from churnguard.x import _y``, and every ``x._y`` on a name imported from churnguard, in `path`."""
    here = _module_name(path, root)
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    bound: dict[str, str] = {}  # local name -> what it was imported as
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = _absolute(node, here, path.name == "__init__.py")
            if not source.startswith("churnguard"):
                continue
            for alias in node.names:
                if alias.name.startswith("_") and source != here:
                    found.append(f"{here}:{node.lineno} from {source} import {alias.name}")
                bound[alias.asname or alias.name] = f"{source}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "churnguard":
                    bound[alias.asname or "churnguard"] = alias.name if alias.asname else "churnguard"
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")):
            continue
        target, chain = node.value, [node.attr]
        while isinstance(target, ast.Attribute):
            chain.insert(0, target.attr)
            target = target.value
        if isinstance(target, ast.Name) and target.id in bound and bound[target.id] != here:
            found.append(f"{here}:{node.lineno} {target.id}.{'.'.join(chain)}")
    return found


def test_the_private_import_check_catches_both_forms(tmp_path):
    fake = tmp_path / "churnguard" / "spark" / "probe.py"
    fake.parent.mkdir(parents=True)
    fake.write_text(
        "from churnguard.scoring import _subset, score\n"
        "import churnguard.outreach.frames as frames\n"
        "frames._write\n"
        "frames.write_lists\n"
        "from . import _own_package_private\n"
    )
    hits = _private_imports(fake, tmp_path / "churnguard")
    assert [h.split(" ", 1)[1] for h in hits] == [
        "from churnguard.scoring import _subset",
        "from churnguard.spark import _own_package_private",
        "frames._write",
    ]


def test_no_module_imports_another_modules_private_names():
    offenders = [hit for path in _modules() for hit in _private_imports(path)]
    assert offenders == []


def test_importing_the_cli_loads_no_heavy_library():
    code = (
        "import sys, churnguard.cli; "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={"PYTHONPATH": str(PACKAGE.parent), "PATH": ""})
    assert done.stdout.strip() == ""


def test_every_public_name_resolves_lazily_and_is_listed_by_dir():
    for name in churnguard.__all__:
        assert getattr(churnguard, name) is not None, name
    assert set(churnguard.__all__) <= set(dir(churnguard))
    with pytest.raises(AttributeError, match="no_such_name"):
        churnguard.no_such_name  # noqa: B018


def test_spark_drivers_import_the_kernel_not_the_single_machine_driver_insides():
    source = (PACKAGE / "spark" / "scoring.py").read_text()
    imported = {
        alias.name
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom) and node.module == "churnguard.scoring"
        for alias in node.names
    }
    # ScoreResult: the result type the report reads, filled from Spark frames by report_result.
    assert imported <= {"load_models", "model_info", "ScoreResult"}
