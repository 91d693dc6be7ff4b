"""The apps form a stack (pyproject.toml [tool.importlinter], docs/development.md): imports only go down, and no
module imports another in a loop — function-local imports count too (grimp reads every import statement)."""

import os
import subprocess
import sys
from pathlib import Path

import grimp
import pytest
from importlinter.api import read_configuration  # noqa: F401 (configures import-linter's adapters)
from importlinter.application.use_cases import _register_contract_types, create_report, read_user_options

ROOT = Path(__file__).resolve().parent.parent
CONFIG = str(ROOT / "pyproject.toml")
LINT = "import sys; from importlinter.cli import lint_imports_command as lint; sys.exit(lint())"


@pytest.fixture(scope="module")
def options():
    user_options = read_user_options(config_filename=CONFIG)
    _register_contract_types(user_options)
    return user_options


def broken_contracts(options) -> list[str]:
    """One line per import that runs up the stack: "importer -> imported (lines)"."""
    report = create_report(options, cache_dir=None)
    return [f"{link['importer']} -> {link['imported']} {link['line_numbers']}"
            for _, check in report.get_contracts_and_checks() if not check.kept
            for dependency in check.metadata["invalid_dependencies"]
            for route in dependency["routes"] for link in route["chain"]]


def test_imports_only_go_down_the_stack(options):
    assert broken_contracts(options) == []


def test_no_module_imports_another_in_a_loop(options):
    graph = grimp.build_graph(*options.session_options["root_packages"], cache_dir=None)
    loops = set()
    for importer in graph.modules:
        for imported in graph.find_modules_directly_imported_by(importer):
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back is not None:
                loops.add(tuple(sorted(back)))
    assert sorted(loops) == []


def test_an_upward_import_breaks_the_contract(options, tmp_path):
    """The check can fail: import-linter, run on a copy of the apps with one function-local import from prices up
    to portfolio, refuses it (in another process: this one has imported the real apps already)."""
    for package in options.session_options["root_packages"]:
        for source in (ROOT / package).rglob("*.py"):
            target = tmp_path / source.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(source.read_text())
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    with (tmp_path / "prices" / "selectors.py").open("a") as selectors:
        selectors.write("\n\ndef _upward():\n    from portfolio.models import Portfolio\n\n    return Portfolio\n")
    run = subprocess.run(
        [sys.executable, "-c", LINT, "--config", "pyproject.toml", "--no-cache"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path)}, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "prices.selectors -> portfolio.models" in run.stdout
