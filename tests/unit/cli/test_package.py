"""The command line installs on its own: standard library only, one package, one script."""

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_the_cli_imports_only_the_standard_library_and_itself():
    for path in sorted((ROOT / "hacenter_cli").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top == "hacenter_cli" or top in sys.stdlib_module_names, (path, name)


def test_pyproject_installs_the_hacenter_script_and_nothing_of_the_console():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"] == {"hacenter": "hacenter_cli.main:main"}
    assert project["project"]["dependencies"] == []
    assert project["tool"]["setuptools"]["packages"] == ["hacenter_cli"]


def test_help_documents_the_exit_codes():
    shown = subprocess.run(
        [sys.executable, "-m", "hacenter_cli", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    for line in (
        "0  success",
        "1  the job failed",
        "2  usage error",
        "3  not found",
        "4  refused by the console",
        "5  the console cannot be reached",
    ):
        assert line in shown
