"""The layering rule of DESIGN §1, read from the code with ``ast``: no cycle between packages; core
imports no feature and never app/stack/demo/cli; nothing but those four imports them; a feature
imports another feature's ``operations``/``queries`` (and models for its tables), plus the portal
and staff-nav hooks, never its views, api, tv pages or private names; no function-local import of
another package.

What the code still does against the rule is listed in ``KNOWN`` (debt, to be paid off): the test
fails on anything new, and on an entry that is no longer true (so the list only shrinks).
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("portal_server", "stb_app", "streaming", "epg", "device_fleet")
#: The top of the house: only these know every package, and only they import each other.
TOP = {"portal_server.app", "portal_server.stack", "portal_server.deploy", "portal_server.demo", "portal_server.cli"}
#: Modules that are plumbing, not a feature (may be imported by anyone below the top).
CORE = "portal_server.core"
#: What a feature may import of another feature.
PUBLIC = {"operations", "queries", "models", "protocol"}
#: Hooks a feature may use to plug in (DESIGN §1): the portal's (tiles, personal state, what the
#: pages list, the item page for content's staff preview), the staff web's and the household
#: page's / data comparison's (base data) hook functions
#: (``from portal_server import admin`` then ``admin.add_nav(...)`` counts too).
HOOKS = {("stb_app", "add_section_action"), ("stb_app", "add_state_provider"), ("stb_app", "set_item_source"),
         ("stb_app", "set_alert_source"), ("stb_app", "render_item_page"), ("portal_server.admin", "add_nav"),
         ("portal_server.admin", "add_home_card"), ("portal_server.admin", None),
         ("portal_server.registry", "add_household_panel"), ("portal_server.registry", "add_comparison_check"),
         ("portal_server.registry", None)}
#: Wiring modules that list every feature (below the top, above the features).
WIRING = {"portal_server.features", "portal_server.models"}

#: Known debt (kind, importer module, imported module). Pay it off and delete the line. All paid
#: (issue 21): a new entry needs a reason and an issue that pays it.
KNOWN: set[tuple[str, str, str]] = set()


def _unit(mod: str) -> str:
    """The package a module belongs to: ``portal_server.<x>`` or the top-level package."""
    parts = mod.split(".")
    return ".".join(parts[:2]) if parts[0] == "portal_server" and len(parts) > 1 else parts[0]


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for p in (ROOT / pkg).rglob("*.py"):
            if "migrations" in p.parts:
                continue
            name = ".".join(p.relative_to(ROOT).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = p
    return out


def _imports(name: str, path: Path, modules: dict) -> list[tuple[str, str | None, bool]]:
    """(imported module, imported name or None, function-local?) for every import in the file."""
    tree = ast.parse(path.read_text())
    pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = []

    def visit(node, local):
        for child in ast.iter_child_nodes(node):
            inner = local or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                out.extend((a.name, None, local) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = pkg.split(".")[:len(pkg.split(".")) - child.level + 1]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module
                for a in child.names:
                    full = f"{target}.{a.name}"
                    out.append((full, None, local) if full in modules else (target, a.name, local))
            visit(child, inner)

    visit(tree, False)
    return [i for i in out if i[0].split(".")[0] in PACKAGES]


def _graph():
    modules = _modules()
    edges: dict[str, set[str]] = {}
    found: set[tuple[str, str, str]] = set()
    for name, path in modules.items():
        unit = _unit(name)
        for target, imported, local in _imports(name, path, modules):
            tunit = _unit(target)
            if tunit == unit:
                continue
            edges.setdefault(unit, set()).add(tunit)
            if unit == CORE and tunit != CORE:
                found.add(("core-up", name, target))
            if tunit in TOP and unit not in TOP:
                found.add(("up", name, target))
            feature = unit not in TOP | WIRING and unit != CORE
            tfeature = tunit not in TOP | WIRING and tunit != CORE
            if feature and tfeature and (tunit, imported) not in HOOKS:
                leaf = target.split(".")[-1] if target != tunit else None
                if (leaf not in PUBLIC) or (imported or "").startswith("_"):
                    found.add(("private", name, target + (f".{imported}" if imported and imported.startswith("_")
                                                          else "")))
            if local and unit != tunit and not (unit in TOP and tunit in TOP):
                found.add(("local", name, target))
    return edges, found


def _cycles(edges) -> set[tuple[str, str, str]]:
    def reach(a):
        seen, todo = set(), [a]
        while todo:
            for b in edges.get(todo.pop(), ()):
                if b not in seen:
                    seen.add(b)
                    todo.append(b)
        return seen
    return {("cycle", *sorted((a, b))) for a in edges for b in edges[a] if a in reach(b)}


def test_the_layering_rule_holds():
    edges, found = _graph()
    found |= _cycles(edges)
    structural = {f for f in found if f[0] != "local"}
    new = sorted(structural - KNOWN)
    gone = sorted(KNOWN - structural)
    assert not new, "imports against DESIGN §1 (fix them; see the module docstring):\n" + "\n".join(map(str, new))
    assert not gone, "debt paid off: delete these lines from KNOWN:\n" + "\n".join(map(str, gone))


def test_core_imports_no_feature_and_nothing_imports_the_top():
    _edges, found = _graph()
    assert sorted(f for f in found if f[0] in ("core-up", "up")) == []


#: Function-local imports of another package still in the code (DESIGN §1 forbids them when they
#: hide a cycle; none does now); the figure may only go down. What remains: the CLI and the
#: process supervisor (top modules) and ``models.load_all_models`` load lazily on purpose;
#: ``device_fleet.init_app`` keeps prometheus_client out of the box agent; the TV hooks and
#: core imports of cases, meetings, epg and streaming are left to their owners' next change.
LOCAL_IMPORTS_AT_MOST = 29


def test_function_local_imports_only_go_down():
    _edges, found = _graph()
    local = sorted(f for f in found if f[0] == "local")
    assert len(local) <= LOCAL_IMPORTS_AT_MOST, "\n".join(map(str, local))
