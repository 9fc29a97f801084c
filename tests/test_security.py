"""No code path unpickles what a user passes in.

A static scan of the package source: ``pickle``/``dill``/``joblib`` loads,
``torch.load`` without ``weights_only=True``, ``np.load`` without
``allow_pickle=False``, ``yaml.load`` and ``eval``/``exec`` on data are refused.
"""

from __future__ import annotations

import ast
from pathlib import Path

import miragelab

PACKAGE = Path(miragelab.__file__).parent


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return f"{_name(func.value)}.{func.attr}"
    if isinstance(func, ast.Name):
        return func.id
    return ""


def _keyword(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name and isinstance(kw.value, ast.Constant):
            return kw.value.value
    return None


def test_no_unsafe_deserialisation_in_the_package() -> None:
    problems = []
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 20
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names]
                module = getattr(node, "module", None) or ""
                if any(n.split(".")[0] in ("pickle", "dill", "cloudpickle") for n in names) or (
                    module.split(".")[0] in ("pickle", "dill", "cloudpickle")
                ):
                    problems.append(f"{path.name}:{node.lineno} imports a pickle module")
        for call in _calls(tree):
            name = _name(call.func)
            where = f"{path.relative_to(PACKAGE)}:{call.lineno} {name}"
            if name.endswith("torch.load") and _keyword(call, "weights_only") is not True:
                problems.append(f"{where} without weights_only=True")
            if name in ("np.load", "numpy.load") and _keyword(call, "allow_pickle") is not False:
                problems.append(f"{where} without allow_pickle=False")
            if name in ("yaml.load", "joblib.load", "pd.read_pickle", "pandas.read_pickle"):
                problems.append(where)
            if name in ("eval", "exec"):
                problems.append(where)
    assert problems == []


def test_the_scan_catches_what_it_looks_for(tmp_path: Path) -> None:
    # the checks above must be able to fail: run them on code that does it wrong
    bad = "import torch, numpy as np\ntorch.load(p)\nnp.load(p)\neval(s)\n"
    tree = ast.parse(bad)
    names = [_name(c.func) for c in _calls(tree)]
    assert names == ["torch.load", "np.load", "eval"]
    assert all(_keyword(c, "weights_only") is None for c in _calls(tree))
