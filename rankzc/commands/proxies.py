"""``rankzc proxies``: what each zero-cost proxy is, needs and costs."""

from __future__ import annotations

import csv
import io
import json
import re
from importlib import resources
from typing import Any

import click

from rankzc.commands._common import echo_json, format_option, print_table

#: Relative costs measured by ``benchmarks/proxies.py --write-costs`` (package data).
COSTS_FILE = "data/proxy_costs.json"


def load_costs() -> dict[str, Any] | None:
    """The measured relative costs (see :data:`COSTS_FILE`), or None when absent."""
    try:
        text = resources.files("rankzc").joinpath(COSTS_FILE).read_text()
    except (FileNotFoundError, OSError):
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) and isinstance(data.get("proxies"), dict) else None


def proxy_rows() -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """One row per registered proxy, and the costs record they were read from."""
    import rankzc.proxies.compute  # noqa: F401  (registers every proxy)
    from rankzc.proxies.registry import PROXIES, proxy_names

    costs = load_costs()
    rows = []
    for name in proxy_names():
        spec = PROXIES[name]
        cost = (costs or {}).get("proxies", {}).get(name, {})
        rows.append(
            {
                "proxy": name,
                "direction": "higher is better" if spec.higher_is_better else "lower is better",
                "data": "values" if spec.needs_data else "shape only",
                "labels": spec.labels,
                "gradients": spec.gradients,
                "cost_depth4": cost.get("4"),
                "cost_depth10": cost.get("10"),
                "paper": spec.paper,
                "definition": spec.doc,
            }
        )
    return rows, costs


def _notes(costs: dict[str, Any] | None) -> list[str]:
    from rankzc.proxies.registry import DEFINITIONS
    from rankzc.proxies.synflow import SYNFLOW_NOTE

    if costs:
        # the recorded unit is a plural ("training steps (forward + ...)"): one of them
        unit = re.sub(r"^(\w+ )?steps\b", r"\1step", str(costs.get("unit", "training step")))
        cost = (
            f"cost (cost d4, cost d10): seconds in the shared run as a multiple of one {unit}"
            f", {costs.get('preset')} preset, batch {costs.get('batch_size')}, depths 4 / 10; "
            f"measured by `{costs.get('command')}`."
        )
    else:
        cost = "cost: not measured in this installation (benchmarks/proxies.py --write-costs)."
    return [
        cost,
        f"definitions: version {DEFINITIONS}, as the study's code (docs/proxies.md).",
        f"note: {SYNFLOW_NOTE}",
    ]


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _cost(value: Any) -> str:
    return "-" if value is None else f"{float(value):.2f}"


@click.command("proxies")
@format_option(("table", "json", "csv"))
def proxies(fmt: str) -> None:
    """List the zero-cost proxies: direction, what each needs, relative cost, paper."""
    rows, costs = proxy_rows()
    if fmt == "json":
        echo_json({"proxies": rows, "costs": costs, "notes": _notes(costs)})
        return
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        click.echo(buf.getvalue(), nl=False)
        return
    header = ["proxy", "direction", "data", "labels", "gradients", "cost d4", "cost d10", "paper"]
    table = [
        [
            r["proxy"],
            "higher" if r["direction"].startswith("higher") else "lower",
            r["data"],
            _yes(r["labels"]),
            _yes(r["gradients"]),
            _cost(r["cost_depth4"]),
            _cost(r["cost_depth10"]),
            r["paper"],
        ]
        for r in rows
    ]
    print_table(
        header,
        table,
        title=f"The {len(rows)} zero-cost proxies: which direction is better, what each "
        "needs, relative cost",
        right={"cost d4", "cost d10"},
    )
    for note in _notes(costs):
        click.echo(note)


COMMANDS = [proxies]
