"""The package's own shape: no module reaches into another package's private modules."""

from __future__ import annotations

import ast
from pathlib import Path

import amasskit

SRC = Path(amasskit.__file__).resolve().parent
SHARED_PRIVATE = {"_util", "_version"}  # the package-wide internals every sub-package may use


def _imported_modules(path: Path) -> list[tuple[int, str]]:
    """``(line, absolute module name)`` of every import in the module at ``path``."""
    module = ".".join(("amasskit", *path.relative_to(SRC).with_suffix("").parts))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    package = package.removesuffix(".__init__")
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((node.lineno, name))
            found += [(node.lineno, f"{name}.{a.name}") for a in node.names]  # `from .. import _x` too
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
    return found


def test_no_private_module_is_imported_across_packages() -> None:
    """A sub-package uses another through its public names (``amasskit.body``, not ``amasskit.body._lbs``)."""
    wrong = []
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC).parts
        own = parts[0] if len(parts) > 1 else None
        for line, name in _imported_modules(path):
            pieces = name.split(".")
            if pieces[0] != "amasskit" or len(pieces) < 3:
                continue
            other, rest = pieces[1], pieces[2:]
            if other == own or other in SHARED_PRIVATE:
                continue
            if any(p.startswith("_") for p in rest):
                wrong.append(f"{path.relative_to(SRC)}:{line}: {name}")
    assert not wrong, "private modules imported across packages:\n" + "\n".join(wrong)
