"""Check a LightGBM text model before LightGBM sees it, and rebuild it from checked arrays.

LightGBM trusts its model text: a truncated file, a ``tree_sizes`` line that does not match
the trees, a ``split_feature`` beyond the feature count or a ``left_child`` outside its tree
crash the process (SIGSEGV / abort) while loading or predicting. A ranker file is user
input, so :func:`safe_model_text` parses the text in Python, checks every value a
prediction reads, and returns a *new* text written from the parsed numbers alone (only the
keys prediction needs; no ``tree_sizes``, so LightGBM parses the trees one by one).
Predictions of the rebuilt text equal those of the original bit for bit (numbers are
written with Python's round-trip ``repr``).

Checks: a ``tree`` header with one class and one tree per iteration, ``max_feature_idx``
equal to the number of model inputs, as many ``feature_names`` / ``feature_infos`` as
inputs, a known objective; trees numbered 0, 1, ... up to the ``end of trees`` line (so a
truncated text is refused); per tree ``1 <= num_leaves <=
131072``, arrays of exactly the lengths ``num_leaves`` implies, no categorical splits and
no linear trees, every ``split_feature`` below the feature count, ``left_child`` /
``right_child`` forming one binary tree over the tree's own nodes (every node and leaf
reached once from the root, so no cycles), finite thresholds, leaf values and shrinkage;
when ``tree_sizes`` is given, every tree's text is exactly as long as it says. Before any
tree is parsed, the text may hold at most :data:`~rankzc.ranking.budget.MAX_TREES` trees
and :data:`~rankzc.ranking.budget.MAX_TOTAL_LEAVES` leaves in all.
"""

from __future__ import annotations

import math
import re

from rankzc.errors import RankzcError
from rankzc.ranking.budget import MAX_TOTAL_LEAVES, MAX_TREES

__all__ = ["safe_model_text", "MAX_LEAVES"]

#: LightGBM's own upper bound on leaves per tree
MAX_LEAVES = 131_072
_OBJECTIVE = re.compile(
    r"(lambdarank|rank_xendcg|regression|regression_l1|huber|fair|binary|cross_entropy)"
    r"( [a-z_]+:[-+0-9.eE]+)*"
)
_NAME = re.compile(r"[A-Za-z0-9_.\-]+")
_INFO = re.compile(r"none|\[[-+0-9.eE]+:[-+0-9.eE]+\]")
_HEADER_KEYS = {
    "version",
    "num_class",
    "num_tree_per_iteration",
    "label_index",
    "max_feature_idx",
    "objective",
    "feature_names",
    "feature_infos",
    "monotone_constraints",
    "tree_sizes",
}
_TREE_KEYS = {
    "num_leaves",
    "num_cat",
    "split_feature",
    "split_gain",
    "threshold",
    "decision_type",
    "left_child",
    "right_child",
    "leaf_value",
    "leaf_weight",
    "leaf_count",
    "internal_value",
    "internal_weight",
    "internal_count",
    "is_linear",
    "shrinkage",
}


class _Bad(Exception):
    pass


def _int(text: str, what: str) -> int:
    if not re.fullmatch(r"-?[0-9]{1,10}", text):
        raise _Bad(f"{what}: {text[:20]!r} is not an integer")
    return int(text)


def _float(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _Bad(f"{what}: {text[:20]!r} is not a number") from None
    if not math.isfinite(value):
        raise _Bad(f"{what}: {text} is not finite")
    return value


def _ints(text: str, n: int, what: str) -> list[int]:
    items = text.split()
    if len(items) != n:
        raise _Bad(f"{what}: {len(items)} values, expected {n}")
    return [_int(t, what) for t in items]


def _floats(text: str, n: int, what: str) -> list[float]:
    items = text.split()
    if len(items) != n:
        raise _Bad(f"{what}: {len(items)} values, expected {n}")
    return [_float(t, what) for t in items]


def _key_values(lines: list[str], allowed: set[str], where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.partition("=")
        if not sep or key not in allowed:
            raise _Bad(f"{where}: unexpected line {line[:40]!r}")
        if key in out:
            raise _Bad(f"{where}: {key} given twice")
        out[key] = value
    return out


def _check_structure(left: list[int], right: list[int], n_leaves: int, where: str) -> None:
    """Children form one binary tree: root 0, every node and leaf reached exactly once."""
    n_inner = n_leaves - 1
    seen_inner = [False] * n_inner
    seen_leaf = [False] * n_leaves
    seen_inner[0] = True
    stack = [0]
    while stack:
        node = stack.pop()
        for child in (left[node], right[node]):
            if child >= 0:
                if child >= n_inner:
                    raise _Bad(f"{where}: child {child} outside the tree's {n_inner} nodes")
                if seen_inner[child]:
                    raise _Bad(f"{where}: node {child} reached twice (not a tree)")
                seen_inner[child] = True
                stack.append(child)
            else:
                leaf = ~child
                if leaf >= n_leaves:
                    raise _Bad(f"{where}: leaf {leaf} outside the tree's {n_leaves} leaves")
                if seen_leaf[leaf]:
                    raise _Bad(f"{where}: leaf {leaf} reached twice (not a tree)")
                seen_leaf[leaf] = True
    if not all(seen_inner) or not all(seen_leaf):
        raise _Bad(f"{where}: nodes not reachable from the root")


def _tree(index: int, lines: list[str], n_features: int) -> str:
    where = f"Tree={index}"
    kv = _key_values(lines, _TREE_KEYS, where)
    for key in ("num_leaves", "leaf_value"):
        if key not in kv:
            raise _Bad(f"{where}: no {key}")
    n = _int(kv["num_leaves"], f"{where} num_leaves")
    if not 1 <= n <= MAX_LEAVES:
        raise _Bad(f"{where}: num_leaves {n} outside 1..{MAX_LEAVES}")
    if _int(kv.get("num_cat", "0"), f"{where} num_cat") != 0:
        raise _Bad(f"{where}: categorical splits are not supported")
    if _int(kv.get("is_linear", "0"), f"{where} is_linear") != 0:
        raise _Bad(f"{where}: linear trees are not supported")
    leaf_value = _floats(kv["leaf_value"], n, f"{where} leaf_value")
    shrinkage = _float(kv.get("shrinkage", "1"), f"{where} shrinkage")
    out = [f"Tree={index}", f"num_leaves={n}", "num_cat=0"]
    inner = n - 1
    if inner:
        for key in ("split_feature", "threshold", "decision_type", "left_child", "right_child"):
            if key not in kv:
                raise _Bad(f"{where}: no {key}")
        feature = _ints(kv["split_feature"], inner, f"{where} split_feature")
        bad = [f for f in feature if not 0 <= f < n_features]
        if bad:
            raise _Bad(f"{where}: split_feature {bad[0]} outside 0..{n_features - 1}")
        threshold = _floats(kv["threshold"], inner, f"{where} threshold")
        decision = _ints(kv["decision_type"], inner, f"{where} decision_type")
        for d in decision:
            if not 0 <= d <= 15 or d & 1 or (d >> 2) & 3 == 3:
                raise _Bad(f"{where}: decision_type {d} is not a numerical split")
        left = _ints(kv["left_child"], inner, f"{where} left_child")
        right = _ints(kv["right_child"], inner, f"{where} right_child")
        _check_structure(left, right, n, where)
    else:
        feature, threshold, decision, left, right = [], [], [], [], []
    out += [
        "split_feature=" + " ".join(map(str, feature)),
        "threshold=" + " ".join(map(repr, threshold)),
        "decision_type=" + " ".join(map(str, decision)),
        "left_child=" + " ".join(map(str, left)),
        "right_child=" + " ".join(map(str, right)),
        "leaf_value=" + " ".join(map(repr, leaf_value)),
        "is_linear=0",
        f"shrinkage={shrinkage!r}",
    ]
    return "\n".join(out) + "\n\n"


def _header(lines: list[str], n_features: int) -> tuple[list[str], list[int] | None]:
    if not lines or lines[0] != "tree":
        raise _Bad("does not start with 'tree'")
    kv = _key_values(lines[1:], _HEADER_KEYS, "header")
    for key in ("version", "num_class", "max_feature_idx", "objective", "feature_names"):
        if key not in kv:
            raise _Bad(f"header: no {key}")
    if kv["version"] not in ("v3", "v4"):
        raise _Bad(f"header: version {kv['version'][:10]!r}")
    if _int(kv["num_class"], "num_class") != 1:
        raise _Bad("header: num_class must be 1")
    if _int(kv.get("num_tree_per_iteration", "1"), "num_tree_per_iteration") != 1:
        raise _Bad("header: num_tree_per_iteration must be 1")
    label_index = _int(kv.get("label_index", "0"), "label_index")
    max_idx = _int(kv["max_feature_idx"], "max_feature_idx")
    if max_idx != n_features - 1:
        raise _Bad(f"header: max_feature_idx {max_idx}, but the model has {n_features} inputs")
    if not _OBJECTIVE.fullmatch(kv["objective"]):
        raise _Bad(f"header: objective {kv['objective'][:30]!r}")
    names = kv["feature_names"].split()
    if len(names) != n_features or not all(_NAME.fullmatch(s) for s in names):
        raise _Bad(f"header: feature_names must be {n_features} plain names")
    infos = kv.get("feature_infos", " ".join(["none"] * n_features)).split()
    if len(infos) != n_features or not all(_INFO.fullmatch(s) for s in infos):
        raise _Bad(f"header: feature_infos must be {n_features} numerical ranges")
    out = [
        "tree",
        f"version={kv['version']}",
        "num_class=1",
        "num_tree_per_iteration=1",
        f"label_index={label_index}",
        f"max_feature_idx={max_idx}",
        f"objective={kv['objective']}",
        "feature_names=" + " ".join(names),
        "feature_infos=" + " ".join(infos),
    ]
    if "monotone_constraints" in kv:
        mono = _ints(kv["monotone_constraints"], n_features, "monotone_constraints")
        if any(m not in (-1, 0, 1) for m in mono):
            raise _Bad("header: monotone_constraints must be -1, 0 or 1")
        out.append("monotone_constraints=" + " ".join(map(str, mono)))
    sizes = None
    if "tree_sizes" in kv:
        items = kv["tree_sizes"].split()
        sizes = _ints(kv["tree_sizes"], len(items), "tree_sizes")
    return out, sizes


def safe_model_text(text: str, n_features: int) -> str:
    """The LightGBM model ``text`` rebuilt from its checked numbers (see the module doc).

    Args:
        text: ``Booster.model_to_string()`` output, as stored in a ranker file.
        n_features: number of model inputs (columns LightGBM will be given).

    Raises:
        RankzcError: ``"LightGBM model: <rule broken>"`` (one line).
    """
    try:
        return _rebuild(text, int(n_features))
    except _Bad as err:
        raise RankzcError(f"LightGBM model: {err}") from None


def _rebuild(text: str, n_features: int) -> str:
    if n_features < 1:
        raise _Bad("the model has no inputs")
    lines = text.split("\n")
    try:
        end = lines.index("end of trees")
    except ValueError:
        raise _Bad("no 'end of trees' line (truncated?)") from None
    body = lines[:end]
    first = next((i for i, ln in enumerate(body) if ln.startswith("Tree=")), None)
    if first is None:
        raise _Bad("no trees")
    header, sizes = _header([ln for ln in body[:first] if ln], n_features)
    # the budget, before any tree is parsed: the file chooses how much work this is
    n_trees = sum(1 for ln in body[first:] if ln.startswith("Tree="))
    if n_trees > MAX_TREES:
        raise _Bad(f"{n_trees} trees (the limit for a ranker file is {MAX_TREES})")
    leaves = 0
    for ln in body[first:]:
        if ln.startswith("num_leaves="):
            leaves += max(0, _int(ln[11:], "num_leaves"))
            if leaves > MAX_TOTAL_LEAVES:
                raise _Bad(f"over {MAX_TOTAL_LEAVES} leaves in all (the limit for a ranker file)")
    trees: list[str] = []
    block: list[str] = []  # raw lines of the current tree, blank lines included
    byte_sizes: list[int] = []
    for line in body[first:] + ["Tree=end"]:
        if line.startswith("Tree="):
            if block:
                byte_sizes.append(sum(len(ln.encode()) + 1 for ln in block))
                trees.append(_tree(len(trees), [ln for ln in block[1:] if ln], n_features))
            if line != "Tree=end" and line != f"Tree={len(trees)}":
                raise _Bad(f"trees out of order: {line[:20]!r} after {len(trees)} trees")
            block = [line]
        else:
            block.append(line)
    if sizes is not None:
        if len(sizes) != len(trees):
            raise _Bad(f"tree_sizes lists {len(sizes)} trees, the text holds {len(trees)}")
        if sizes != byte_sizes:
            k = next(i for i, (a, b) in enumerate(zip(sizes, byte_sizes, strict=True)) if a != b)
            raise _Bad(f"tree_sizes says Tree={k} is {sizes[k]} bytes, it is {byte_sizes[k]}")
    return "\n".join(header) + "\n\n" + "".join(trees) + "end of trees\n"
