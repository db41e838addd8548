"""The house rules of the code (issue 15): a URL leads to its code in one step, services never import
the web layer, no module grows past what one reads at once."""
import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_each_url_prefix_belongs_to_one_blueprint_as_the_readme_says(app):
    owners: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        blueprint = rule.endpoint.split(".")[0] if "." in rule.endpoint else "static"
        if blueprint in ("static", "auth"):
            continue  # auth answers at the root: /, /identifiant-oublie, /accessibilite, /healthz…
        prefix = "/" + rule.rule.strip("/").split("/")[0] + "/"
        owners.setdefault(prefix, set()).add(blueprint)
    assert {p: b for p, b in owners.items() if len(b) > 1} == {}
    readme = (ROOT / "README.md").read_text()
    table = dict(re.findall(r"^\| `(/[^`]*)`[^|]*\| `blueprints/([a-z]+)", readme, re.M))
    for prefix, (blueprint,) in owners.items():
        assert table.get(prefix) == blueprint, (prefix, blueprint)
    assert set(table.values()) - {"auth"} == {b for (b,) in owners.values()}
    assert "/compte/" in owners and owners["/compte/"] == {"account"}  # the family space has its own address


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_services_and_models_never_import_the_web_layer():
    upward = {}
    for path in [*sorted((ROOT / "services").rglob("*.py")), ROOT / "models.py", ROOT / "db.py"]:
        bad = {m for m in imports_of(path) if m == "app" or m.startswith("blueprints")}
        if bad:
            upward[str(path.relative_to(ROOT))] = bad
    assert upward == {}


def test_imports_are_at_the_top_unless_a_comment_says_why():
    hidden = []
    for path in [*sorted((ROOT / "services").rglob("*.py")), *sorted((ROOT / "blueprints").rglob("*.py")),
                 ROOT / "app.py", ROOT / "models.py", ROOT / "db.py"]:
        lines = path.read_text().split("\n")
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for inner in ast.walk(node):
                    if isinstance(inner, (ast.Import, ast.ImportFrom)):
                        above = lines[inner.lineno - 2].strip()
                        if not above.startswith("#") and "#" not in lines[inner.lineno - 1]:
                            hidden.append(f"{path.relative_to(ROOT)}:{inner.lineno}")
    assert hidden == []


def test_no_module_of_services_or_blueprints_is_over_450_lines():
    long = {str(p.relative_to(ROOT)): n for p in [*(ROOT / "services").rglob("*.py"), *(ROOT / "blueprints").rglob("*.py")]
            if (n := len(p.read_text().split("\n"))) > 450}
    assert long == {}


def test_test_modules_share_helpers_only_through_conftest_and_factories():
    borrowed = {path.name: bad for path in sorted((ROOT / "tests").glob("test_*.py"))
                if (bad := {m for m in imports_of(path) if m.startswith("tests.test_")})}
    assert borrowed == {}


def test_only_the_demo_journeys_read_the_demo_town():
    """A test that names the demo's families, centre or logins walks the demo as a visitor of `make run`
    would, and says so (``pytest.mark.demo``); every other test starts from ``tests.factories.make_town``."""
    unmarked = [path.name for path in sorted((ROOT / "tests").glob("test_*.py"))
                if re.search(r"Léa|Lutins|Jules-Ferry|@demo\.test", text := path.read_text())
                and "pytestmark = pytest.mark.demo" not in text]
    assert unmarked == []
