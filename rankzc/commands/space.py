"""``rankzc space``: sample and inspect GCN-NAS architectures."""

from __future__ import annotations

import json
from pathlib import Path

import click

from rankzc.atomicfile import write_text
from rankzc.commands._common import (
    aliased,
    check_output_path,
    deprecated_argument,
    echo_csv,
    format_option,
    out_option,
    print_table,
    quiet_option,
    sampling_option,
    start_line,
)
from rankzc.errors import RankzcError
from rankzc.space import DEPTHS, load_architectures, parse_depths, sample_architectures

# the names of rankzc.models.PRESETS, listed here so that the CLI starts without torch
# (tests/test_startup.py checks that both lists agree)
PRESET_NAMES = ("cpu", "ntu60", "tiny")


def count_params(arch, preset: str = "ntu60") -> int:
    """Trainable parameters of ``arch`` at ``preset`` size (built on the meta device)."""
    import torch

    from rankzc.models import build_model, count_parameters

    with torch.device("meta"):
        return count_parameters(build_model(arch, preset=preset))


@click.group("space")
def space() -> None:
    """Sample and inspect architectures of the GCN-NAS search space."""


@space.command("sample")
@click.option(
    "--sample",
    "n",
    type=int,
    default=None,
    help="Draw N architectures (required).",
)
@deprecated_argument("N", "--sample N", dest="n", type=int)
@click.option(
    "--depths",
    default=",".join(map(str, DEPTHS)),
    show_default=True,
    help="Comma-separated depths (blocks) to draw from, e.g. 4,6.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the draw.")
@sampling_option()
@click.option(
    "--exclude",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="JSON list of architectures never to draw.",
)
@out_option("Write the JSON list here (default: standard output).")
def sample(
    n: int, depths: str, seed: int, sampling: str, exclude: Path | None, out: Path | None
) -> None:
    """Draw --sample N distinct valid architectures (JSON list of {space, depth, blocks})."""
    n = aliased("n", n)
    if n is None:
        from rankzc.errors import UsageError

        raise UsageError("--sample N: how many architectures to draw (e.g. --sample 10)")
    if n < 1:
        raise RankzcError(f"--sample: must be >= 1, got {n}")
    if out is not None:
        check_output_path(out)
    excluded = load_architectures(exclude) if exclude else []
    archs = sample_architectures(
        n, depths=_depths(depths), seed=seed, exclude=excluded, sampling=sampling
    )
    text = json.dumps([a.to_dict() for a in archs], indent=1)
    if out is None:
        click.echo(text)
    else:
        write_text(out, text + "\n")  # whole or not at all, never over a good file
        click.echo(f"wrote {len(archs)} architectures to {out}")


@space.command("info")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--preset",
    type=click.Choice(PRESET_NAMES),
    default="cpu",
    show_default=True,
    help="Model size the parameters are counted at (ntu60: the study's full size).",
)
@quiet_option()
@format_option()
def info(file: Path, preset: str, quiet: bool, fmt: str) -> None:
    """Validate FILE (JSON list of architectures) and list id, depth, pattern, params."""
    archs = load_architectures(file)
    start_line(quiet, f"counting the parameters of {len(archs)} architectures (preset {preset})")
    rows = [
        {
            "arch_id": a.arch_id,
            "depth": a.depth,
            "arch": str(a),
            "params": count_params(a, preset),
        }
        for a in archs
    ]
    if fmt == "json":
        click.echo(json.dumps(rows, indent=1))
        return
    if fmt == "csv":
        echo_csv(rows)
        return
    print_table(
        ["arch_id", "depth", "arch", "params"],
        [[r["arch_id"], r["depth"], r["arch"], r["params"]] for r in rows],
        right={"depth", "params"},
    )
    click.echo(f"{len(rows)} architectures, preset {preset}", err=True)


COMMANDS = [space]


def _depths(text: str) -> tuple[int, ...]:
    try:
        return parse_depths(text)
    except RankzcError as err:
        raise RankzcError(f"--depths: {err}") from None
