"""Import structure of the package: no import cycles, and imports only run leftward in the room order.

DESIGN.md: data -> envs -> models -> agents -> eval -> train -> pipeline / live. A module may import
from its own room and from rooms to its left; `datasets` belongs to data; the top-level
`jaxtrade/__init__.py` is exempt. No cycle is allowed, not even between two files of one room.

Edges come from `ast`, so every `import` counts wherever it is written: at module level, inside an
`if TYPE_CHECKING:` block, or inside a function (a lazy import still couples the two modules).
`from pkg.a import b` is an edge to `pkg.a.b` when that is a module, else to `pkg.a`; importing a
submodule is not an edge to its parent package's `__init__` (only importing the package itself is).
Imports built from strings (`importlib.import_module`) are not seen.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import jaxtrade

# The room order of DESIGN.md, left to right. Rooms in one tuple share a place: pipeline and live
# are siblings, neither to the left of the other, so neither imports the other.
ROOM_ORDER = (("data",), ("envs",), ("models",), ("agents",), ("eval",), ("train",), ("pipeline", "live"))
RANK = {room: i for i, rooms in enumerate(ROOM_ORDER) for room in rooms}
PART_OF = {"datasets": "data"}             # top-level packages that belong to a room

Graph = dict[str, dict[str, int]]          # importer -> {imported module: line of the first import}


def package_modules(root: Path, package: str) -> dict[str, Path]:
    """{dotted module name: file} of every .py file under root (root is the package directory)."""
    mods = {}
    for path in sorted(root.rglob("*.py")):
        parts = (package, *path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


def _resolve(name: str, modules) -> str | None:
    """The longest prefix of a dotted name that is a module of the package (None: not ours)."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in modules:
            return ".".join(parts[:n])
    return None


def _imports(module: str, path: Path, modules) -> list[tuple[str, int]]:
    """(imported module of the package, line) for every import statement in the file."""
    is_package = path.name == "__init__.py"
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(_resolve(a.name, modules), node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:                                   # relative: from the importer's package
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                base = ".".join(base + ([node.module] if node.module else []))
            else:
                base = node.module
            for a in node.names:
                full = f"{base}.{a.name}"
                out.append((full if full in modules else _resolve(base, modules), node.lineno))
    return [(m, line) for m, line in out if m is not None and m != module]


def import_graph(root: Path, package: str) -> tuple[Graph, dict[str, Path]]:
    modules = package_modules(root, package)
    graph: Graph = {}
    for module, path in modules.items():
        edges = graph.setdefault(module, {})
        for target, line in _imports(module, path, modules):
            edges.setdefault(target, line)
    return graph, modules


def find_cycles(graph: Graph) -> list[list[str]]:
    """One cycle [a, b, ..., a] per strongly connected component that has one (Tarjan, iterative)."""
    index, low, on_stack, stack, comps, counter = {}, {}, set(), [], [], [0]
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = set()
                    while True:
                        m = stack.pop()
                        on_stack.discard(m)
                        comp.add(m)
                        if m == node:
                            break
                    if len(comp) > 1:
                        comps.append(comp)
            elif child not in index:
                index[child] = low[child] = counter[0]
                counter[0] += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph.get(child, ())))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    cycles = []
    for comp in comps:                                       # shortest way back to the first module
        start = min(comp)
        paths, seen, found = [[start]], {start}, None
        while paths and found is None:
            nxt = []
            for p in paths:
                for child in sorted(graph[p[-1]]):
                    if child == start:
                        found = p + [start]
                        break
                    if child in comp and child not in seen:
                        seen.add(child)
                        nxt.append(p + [child])
                if found:
                    break
            paths = nxt
        cycles.append(found)
    return sorted(cycles)


def describe_cycle(cycle: list[str], graph: Graph, modules: dict[str, Path], root: Path) -> str:
    where = [f"{modules[a].relative_to(root.parent)}:{graph[a][b]} imports {b}"
             for a, b in zip(cycle, cycle[1:], strict=False)]
    return " -> ".join(cycle) + "  (" + "; ".join(where) + ")"


def room_violations(graph: Graph, modules: dict[str, Path], root: Path, package: str) -> list[str]:
    """Every import of a room to the right of (or beside) the importer's room, and every module in no room."""
    room = lambda m: PART_OF.get(m.split(".")[1], m.split(".")[1]) if m != package else None
    bad = []
    for module in sorted(graph):
        src = room(module)
        if src is None:
            continue                                         # the top-level __init__ is exempt
        if src not in RANK:
            bad.append(f"{module} is in no room of DESIGN.md (rooms: {', '.join(RANK)})")
            continue
        for target, line in sorted(graph[module].items()):
            dst = room(target)
            if dst is None or dst == src:
                continue
            if dst not in RANK or RANK[dst] >= RANK[src]:     # same place, other room: siblings
                bad.append(f"{modules[module].relative_to(root.parent)}:{line}: {module} ({src}) imports "
                           f"{target} ({dst}), which is not to the left of {src} in "
                           + " -> ".join("/".join(r) for r in ROOM_ORDER))
    return bad


def check(root: Path, package: str) -> tuple[list[str], list[str]]:
    """(cycles, room violations) of the package at root, as messages."""
    graph, modules = import_graph(root, package)
    cycles = [describe_cycle(c, graph, modules, root) for c in find_cycles(graph)]
    return cycles, room_violations(graph, modules, root, package)


PACKAGE_ROOT = Path(jaxtrade.__file__).parent


def test_no_import_cycles():
    cycles, _ = check(PACKAGE_ROOT, "jaxtrade")
    assert not cycles, "import cycles:\n  " + "\n  ".join(cycles)


def test_imports_follow_room_order():
    _, bad = check(PACKAGE_ROOT, "jaxtrade")
    assert not bad, "imports against the room order:\n  " + "\n  ".join(bad)


# The checker itself, on tiny fake packages.

def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for name, text in {"__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        for parent in path.relative_to(root).parents:
            (root / parent / "__init__.py").touch()
        path.write_text(text)
    return root


CLEAN = {
    # the package imports its submodules, and they import each other through the package name:
    # `from pkg.data import features` is an edge to pkg.data.features, not to pkg/data/__init__.py
    "data/__init__.py": "from pkg.data.market import Market\nfrom pkg.data.features import f\n",
    "data/features.py": "import numpy as np\n",
    "data/market.py": "from pkg.data import features as feats\nfrom . import features\n",
    "datasets/__init__.py": "",
    "envs/__init__.py": "from pkg.envs.base import Env\n",
    "envs/base.py": "from pkg.data import Market\nfrom ..data.market import Market\nimport pkg.datasets\n",
    "train/loop.py": "def run():\n    from pkg import envs\n    import pkg.data.features\n",
}


def test_checker_passes_a_clean_package(tmp_path):
    root = _package(tmp_path, CLEAN)
    graph, _ = import_graph(root, "pkg")
    assert graph["pkg.data.market"] == {"pkg.data.features": 1}
    assert graph["pkg.envs.base"] == {"pkg.data": 1, "pkg.data.market": 2, "pkg.datasets": 3}
    assert graph["pkg.train.loop"] == {"pkg.envs": 2, "pkg.data.features": 3}
    assert check(root, "pkg") == ([], [])


def test_checker_finds_cycles(tmp_path):
    root = _package(tmp_path, {
        **CLEAN,
        # market -> splits at module level, splits -> market lazily inside a function
        "data/market.py": "from pkg.data import features\nfrom .splits import cut\n",
        "data/splits.py": "def cut(md):\n    from pkg.data.market import Market\n",
        # a three-module cycle in another room, through relative imports
        "train/a.py": "from . import b\n",
        "train/b.py": "from .c import x\n",
        "train/c.py": "def g():\n    from pkg.train import a\n",
    })
    cycles, bad = check(root, "pkg")
    assert bad == []
    assert len(cycles) == 2
    assert cycles[0].startswith("pkg.data.market -> pkg.data.splits -> pkg.data.market  (")
    assert "pkg/data/splits.py:2 imports pkg.data.market" in cycles[0]
    assert cycles[1].startswith("pkg.train.a -> pkg.train.b -> pkg.train.c -> pkg.train.a  (")
    with pytest.raises(AssertionError, match="pkg.data.market -> pkg.data.splits -> pkg.data.market"):
        assert not cycles, "import cycles:\n  " + "\n  ".join(cycles)


def test_checker_finds_imports_against_the_room_order(tmp_path):
    root = _package(tmp_path, {
        **CLEAN,
        "data/extra.py": "def f():\n    from pkg.envs import base\n",        # data reaching right
        "pipeline/registry.py": "from pkg.live import broker\n",               # sibling rooms
        "live/broker.py": "from pkg.train import loop\nfrom pkg.datasets import x\n",   # fine
        "extras/thing.py": "",                                                  # in no room
    })
    cycles, bad = check(root, "pkg")
    assert cycles == []
    assert len(bad) == 4, bad
    assert bad[0].startswith("pkg/data/extra.py:2: pkg.data.extra (data) imports pkg.envs.base (envs)")
    rooms = ", ".join(RANK)
    assert bad[1:3] == [f"pkg.extras is in no room of DESIGN.md (rooms: {rooms})",
                        f"pkg.extras.thing is in no room of DESIGN.md (rooms: {rooms})"]
    assert bad[3].startswith("pkg/pipeline/registry.py:1: pkg.pipeline.registry (pipeline) imports "
                             "pkg.live.broker (live)")


# THE FRAME KNOWS NO TENANT BY NAME (DESIGN.md): outside agents/ no module imports a specific agent, and
# outside envs/ no module compares a name with an env's name or asks isinstance of an env class.

FRAME_ROOMS = ("train", "pipeline", "eval", "live")


def tenant_imports(graph: Graph, package: str, agents: tuple[str, ...]) -> list[str]:
    """Every import by a module of FRAME_ROOMS of a specific agent's package (`<package>.agents.<name>`)."""
    bad = []
    for module in sorted(graph):
        parts = module.split(".")
        if len(parts) < 2 or parts[1] not in FRAME_ROOMS:
            continue
        for target, line in sorted(graph[module].items()):
            t = target.split(".")
            if len(t) >= 3 and t[1] == "agents" and t[2] in agents:
                bad.append(f"{module}:{line} imports {target} (ask {package}.agents.registry instead)")
    return bad


def tenant_branches(root: Path, package: str, env_names, env_classes, agent_names) -> list[str]:
    """`x == "<env name>"` (or !=, in) outside envs/, `x == "<agent name>"` outside agents/, and
    `isinstance(x, <env class>)` outside envs/: the frame asking which tenant it holds."""
    bad = []
    for path in sorted(root.rglob("*.py")):
        room = path.relative_to(root).parts[0]
        names = ((set() if room == "envs" else set(env_names))
                 | (set() if room == "agents" else set(agent_names)))
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                sides = [node.left, *node.comparators]
                sides += [e for s in sides if isinstance(s, ast.Tuple | ast.List | ast.Set) for e in s.elts]
                hit = [s.value for s in sides if isinstance(s, ast.Constant) and s.value in names]
                if hit:
                    bad.append(f"{path.relative_to(root.parent)}:{node.lineno} compares with {hit[0]!r}")
            if (room != "envs" and isinstance(node, ast.Call)
                    and getattr(node.func, "id", None) == "isinstance" and len(node.args) == 2):
                classes = node.args[1].elts if isinstance(node.args[1], ast.Tuple) else [node.args[1]]
                for c in classes:
                    name = c.attr if isinstance(c, ast.Attribute) else getattr(c, "id", None)
                    if name in env_classes:
                        bad.append(f"{path.relative_to(root.parent)}:{node.lineno} isinstance(..., {name})")
    return bad


def _env_classes() -> set[str]:
    """Names of the env classes (core envs and wrappers) defined in jaxtrade.envs."""
    out = set()
    for path in (PACKAGE_ROOT / "envs").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and (node.name.endswith("Env") or node.name.endswith("Reset")):
                out.add(node.name)
    return out


def test_the_frame_imports_no_specific_agent():
    from jaxtrade.agents import registry

    graph, _ = import_graph(PACKAGE_ROOT, "jaxtrade")
    bad = tenant_imports(graph, "jaxtrade", registry.registered())
    assert not bad, "the frame imports a specific agent:\n  " + "\n  ".join(bad)


def test_the_frame_asks_no_tenant_its_name():
    from jaxtrade import envs
    from jaxtrade.agents import registry

    bad = tenant_branches(PACKAGE_ROOT, "jaxtrade", envs.registered(), _env_classes(), registry.registered())
    assert not bad, "the frame branches on a tenant (ask its registration instead):\n  " + "\n  ".join(bad)


def test_tenant_checkers_catch_a_branch_and_an_import(tmp_path):
    root = _package(tmp_path, {
        "agents/ppo/__init__.py": "",
        "agents/registry.py": "",
        "train/loop.py": "from pkg.agents import ppo\nfrom pkg.agents import registry\n",
        "eval/baselines.py": "def f(env, name):\n    if name == 'options':\n        pass\n"
                             "    return isinstance(env, SingleEnv)\n",
        "envs/registry.py": "def g(name):\n    return name == 'options'\n",          # its own room: fine
        "agents/ensemble.py": "def h(name):\n    return name in ('single', 'x')\n",
    })
    graph, _ = import_graph(root, "pkg")
    assert tenant_imports(graph, "pkg", ("ppo",)) == [
        "pkg.train.loop:1 imports pkg.agents.ppo (ask pkg.agents.registry instead)"]
    bad = tenant_branches(root, "pkg", ("options", "single"), {"SingleEnv"}, ("ppo",))
    assert bad == ["pkg/agents/ensemble.py:2 compares with 'single'",
                   "pkg/eval/baselines.py:2 compares with 'options'",
                   "pkg/eval/baselines.py:4 isinstance(..., SingleEnv)"], bad
