"""The house's layers import one way (README "Layout"): a module may import its own layer and the
layers below it, never one above. Every import of the project's own modules is at the top of its
module, so none can hide a cycle inside a function, and the module graph has no cycle at all.

The checks read the source with `ast` (nothing is imported), so they see function-level and
`TYPE_CHECKING` imports as well as the module-level ones.
"""

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ("clusters", "jobs", "hacenter")

# Bottom first. A module belongs to the layer of its longest matching prefix.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("inventory", ("clusters.models", "clusters.inventory", "clusters.migrations")),
    ("access", ("clusters.access",)),
    # Event subscriptions sit beside the alerts: recording an event queues both.
    ("alerts", ("clusters.alerts", "clusters.subscriptions")),
    ("jobs", ("jobs",)),
    ("monitoring", ("clusters.monitoring",)),
    (
        "web",
        (
            "clusters.web",
            "clusters.templatetags",
            "clusters.admin",
            "clusters.management",
            "hacenter",
        ),
    ),
]
# Package markers that hold no code and belong to no layer.
EMPTY_PACKAGES = ("clusters", "jobs")


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module (a name imported from a module counts as the module)
    line: int
    top_level: bool  # False inside a function, class or `if` (TYPE_CHECKING included)


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules(root: Path) -> dict[str, Path]:
    return {
        module_name(path, root): path
        for package in PROJECT
        if (root / package).is_dir()
        for path in sorted((root / package).rglob("*.py"))
    }


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    """The project's modules that `name` imports, from its source."""
    tree = ast.parse(path.read_text(), filename=str(path))
    top = set(map(id, tree.body))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from pkg import module` imports the module; `from module import name` the module
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            if target.split(".")[0] in PROJECT:
                found.append(Import(name, target, node.lineno, id(node) in top))
    return found


def layer_of(module: str) -> int | None:
    best, best_len = None, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    return best


def problems(root: Path) -> list[str]:
    """Every back-import, function-level project import, module without a layer, and cycle."""
    modules = project_modules(root)
    found: list[str] = []
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        if layer_of(name) is None and name not in EMPTY_PACKAGES:
            found.append(f"{name} belongs to no layer: add it to LAYERS")
        for imp in imports_of(name, path, modules):
            where = f"{path.relative_to(root)}:{imp.line}"
            if not imp.top_level:
                found.append(
                    f"{where}: {name} imports {imp.target} inside a function, class or `if`; "
                    "import it at the top (if that makes a cycle, a module sits in the wrong "
                    "layer: move the module, not the import)"
                )
            mine, theirs = layer_of(name), layer_of(imp.target)
            if mine is not None and theirs is not None and theirs > mine:
                found.append(
                    f"{where}: {name} ({LAYERS[mine][0]}) imports {imp.target} "
                    f"({LAYERS[theirs][0]}), a layer above it"
                )
            if imp.target in graph and imp.target != name:
                graph[name].add(imp.target)
    found += [f"import cycle: {' -> '.join(cycle)}" for cycle in cycles(graph)]
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected group of modules (depth-first search, iterative)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    found = []
    for start in sorted(graph):
        if start in state:
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                found.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return found


def test_the_project_imports_one_way_with_no_hidden_or_circular_import() -> None:
    assert problems(ROOT) == []


def test_every_layer_prefix_names_an_existing_package_or_module() -> None:
    modules = project_modules(ROOT)
    for _, prefixes in LAYERS:
        for prefix in prefixes:
            assert any(m == prefix or m.startswith(prefix + ".") for m in modules), prefix


# The SSH layer: the only modules that talk paramiko (key parsing, connections, their errors).
PARAMIKO_USERS = {"clusters.inventory.ssh_keys", "jobs.ssh", "jobs.ssh_results"}


def test_only_the_ssh_layer_imports_paramiko() -> None:
    users = set()
    for name, path in project_modules(ROOT).items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            if any(n == "paramiko" or n.startswith("paramiko.") for n in names):
                users.add(name)
    assert users == PARAMIKO_USERS


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for package in ("clusters", "clusters/inventory", "clusters/web", "jobs"):
        (tmp_path / package).mkdir(parents=True, exist_ok=True)
        (tmp_path / package / "__init__.py").touch()
    return tmp_path


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (  # the inventory reaching up into the web console
            {
                "clusters/inventory/a.py": "from clusters.web import views\n",
                "clusters/web/views.py": "",
            },
            "clusters.inventory.a (inventory) imports clusters.web.views (web), a layer above it",
        ),
        (  # the same by a relative import
            {"clusters/inventory/a.py": "from ..web import views\n", "clusters/web/views.py": ""},
            "clusters.inventory.a (inventory) imports clusters.web.views (web)",
        ),
        (  # the old dodge: a lazy import inside a function
            {
                "clusters/inventory/a.py": "def f():\n    from jobs import services\n",
                "jobs/services.py": "",
            },
            "imports jobs.services inside a function",
        ),
        (  # a type-only import is still an import
            {
                "jobs/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                "    from jobs import b\n",
                "jobs/b.py": "",
            },
            "imports jobs.b inside a function, class or `if`",
        ),
        (
            {"jobs/a.py": "from jobs import b\n", "jobs/b.py": "import jobs.a\n"},
            "import cycle: jobs.a -> jobs.b -> jobs.a",
        ),
        (
            {"clusters/newthing/a.py": "x = 1\n", "clusters/newthing/__init__.py": ""},
            "clusters.newthing belongs to no layer",
        ),
    ],
)
def test_a_back_import_a_hidden_import_a_cycle_and_an_unplaced_module_are_each_caught(
    tmp_path: Path, files: dict[str, str], expected: str
) -> None:
    found = problems(_tree(tmp_path, files))
    assert any(expected in line for line in found), found


def test_an_import_downwards_passes(tmp_path: Path) -> None:
    files = {
        "clusters/web/views.py": "from clusters.inventory import forms\nfrom jobs import ssh\n",
        "clusters/inventory/forms.py": "",
        "jobs/ssh.py": "from clusters.inventory import forms\n",
    }
    assert problems(_tree(tmp_path, files)) == []
