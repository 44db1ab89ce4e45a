"""``make mutation``'s tables (issue 20): every module and test file they name exists,
every equivalent mutant has a reason and names a listed module."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_mutation_tables_name_real_files_and_give_reasons():
    with open(ROOT / "pyproject.toml", "rb") as fh:
        modules = tomllib.load(fh)["tool"]["alsprog"]["mutation"]["modules"]
    assert modules
    for module, tests in modules.items():
        assert (ROOT / module).is_file(), module
        assert tests and all((ROOT / t).is_file() for t in tests), module
    slugs = {m.removesuffix(".py").replace("/", ".") for m in modules}
    for path in (ROOT / "scripts" / "equivalent_mutants").glob("*.toml"):
        assert path.stem in slugs, path.name
        with open(path, "rb") as fh:
            table = tomllib.load(fh)
        for name, why in table.items():
            assert name.startswith(path.stem + "."), name
            assert "__mutmut_" in name, name
            assert isinstance(why, str) and len(why.split()) >= 3, name
