"""One vocabulary: metric, tag and report-key names are spelt once, in ``graft_hpo/_names.py``.

Every other module imports them. A name whose string has no other use (``"val_acc"``,
``"mlflow.parentRunId"``) may appear as a literal nowhere else; a name that is also an ordinary
word or a JSON key (``"strategy"``, ``"error"``, ``"sweep_id"``) may not appear where a run's tags
are written or read (``set_tag``, ``set_tags``, ``tags=``, ``.tags[...]``, ``.tags.get(...)``,
``drop_tags=``, ``tag_filter``). Docstrings and f-string parts are prose, not names.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from graft_hpo import _names

PACKAGE = Path(__file__).resolve().parents[1] / "graft_hpo"

# names whose strings are also ordinary words, config fields or JSON keys of graft-hpo's output
WORDS = frozenset(
    {
        _names.TAG_STRATEGY,
        _names.TAG_OBJECTIVES,
        _names.TAG_PARETO,
        _names.TAG_ERROR,
        _names.TAG_NODE,
        _names.TAG_SWEEP_ID,
        _names.TAG_STOP_REASON,
        _names.TAG_ATTEMPTS,
        _names.TAG_SELECTED,
        _names.TAG_MODEL_URI,
        _names.TAG_LINEAGE,
        _names.EXPERIMENT_KIND_TRAINING,
    }
)
VOCABULARY = {
    value: name
    for name, value in vars(_names).items()
    if name.isupper() and isinstance(value, str)
}
_TAG_CALLS = frozenset({"set_tag", "set_tags", "tag_filter"})
_TAG_KEYWORDS = frozenset({"tags", "drop_tags"})


def _prose(tree: ast.AST) -> set[int]:
    """ids of docstrings and of f-strings' parts."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
        elif isinstance(node, ast.JoinedStr):
            out.update(id(part) for part in ast.walk(node))
    return out


def _reads_tags(node: ast.expr) -> bool:
    """``x.tags`` or ``tags``: a run's tags."""
    return (isinstance(node, ast.Attribute) and node.attr == "tags") or (
        isinstance(node, ast.Name) and node.id == "tags"
    )


def _tag_places(tree: ast.AST) -> tuple[set[int], list[ast.Constant]]:
    """ids of the constants where a run's tags are written or read, and the keys among them."""
    places: set[int] = set()
    keys: list[ast.Constant] = []

    def constants(node: ast.AST, *, key: bool = True) -> None:
        """The constants of ``node``; of a dict literal, its keys only."""
        parts = [k for k in node.keys if k is not None] if isinstance(node, ast.Dict) else [node]
        for part in parts:
            found = [n for n in ast.walk(part) if isinstance(n, ast.Constant)]
            places.update(id(n) for n in found)
            keys.extend(n for n in found if key and isinstance(n.value, str))

    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in _TAG_CALLS:
                for i, arg in enumerate(node.args):  # set_tag(run_id, key, value)
                    is_key = called != "set_tag" or i == len(node.args) - 2
                    constants(arg, key=isinstance(arg, ast.Dict) or is_key)
            if called == "get" and isinstance(func, ast.Attribute) and _reads_tags(func.value):
                constants(node.args[0])
            for keyword in node.keywords:
                if keyword.arg in _TAG_KEYWORDS:
                    constants(keyword.value)
        elif isinstance(node, ast.Subscript) and _reads_tags(node.value):
            constants(node.slice)
    return places, keys


def unknown_tags(source: str) -> list[tuple[int, str]]:
    """(line, key) of every tag ``source`` writes or reads under a name not in the vocabulary."""
    _, keys = _tag_places(ast.parse(source))
    return sorted((k.lineno, k.value) for k in keys if k.value not in VOCABULARY)


def spelt_out(source: str) -> list[tuple[int, str]]:
    """(line, value) of every vocabulary name ``source`` spells as a string literal."""
    tree = ast.parse(source)
    prose, (tag_places, _) = _prose(tree), _tag_places(tree)
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            continue
        if node.value not in VOCABULARY or id(node) in prose:
            continue
        if node.value not in WORDS or id(node) in tag_places:
            found.append((node.lineno, node.value))
    return sorted(found)


def test_no_module_spells_a_vocabulary_name() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {value!r} (use _names.{VOCABULARY[value]})"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "_names.py"
        for line, value in spelt_out(path.read_text())
    ]
    assert not offenders, "\n".join(offenders)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('metrics["val_acc"] = 1.0', [(1, "val_acc")]),
        ('run.set_tags({"error": why})', [(1, "error")]),
        ('client.set_tag(run_id, "strategy", "graft")', [(1, "strategy")]),
        ('run.tags.get("stop_reason")', [(1, "stop_reason")]),
        ('x = record.tags["sweep_id"]', [(1, "sweep_id")]),
        ('start(uri, tags={"node": host})', [(1, "node")]),
        ('run.reopen(drop_tags=["killed_reason"])', [(1, "killed_reason")]),
        (
            'report = {"mlflow_run_id": run_id, "trial_done": 1}',
            [(1, "mlflow_run_id"), (1, "trial_done")],
        ),
        # ordinary words outside tags, prose and f-strings are not names
        ('print(result["error"], config["strategy"])', []),
        ('def f():\n    """val_acc and co2_kg."""\n', []),
        ('line = f"val_acc={acc}"', []),
    ],
)
def test_the_check_finds_what_it_should(source: str, expected: list[tuple[int, str]]) -> None:
    assert spelt_out(source) == expected


def test_every_tag_is_a_vocabulary_name() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: tag {key!r} is not in graft_hpo/_names.py"
        for path in sorted(PACKAGE.rglob("*.py"))
        for line, key in unknown_tags(path.read_text())
    ]
    assert not offenders, "\n".join(offenders)
    # ... and the check sees them
    assert unknown_tags('run.set_tags({"colour": "red"})') == [(1, "colour")]
    assert unknown_tags('client.set_tag(run_id, "colour", "red")') == [(1, "colour")]
    assert unknown_tags('client.set_tag(run_id, TAG_PARETO, "true")') == []


def test_every_name_is_spelt_once() -> None:
    values = [v for n, v in vars(_names).items() if n.isupper() and isinstance(v, str)]
    assert len(values) == len(set(values))
    assert set(_names.METRICS) <= set(values)
