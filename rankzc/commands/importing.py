"""``rankzc import thesis|nbsz``: turn published benchmark files into a store."""

from __future__ import annotations

from pathlib import Path

import click

from rankzc.commands._common import check_output_path
from rankzc.importers import import_nbsz, import_thesis


@click.group("import")
def import_group() -> None:
    """Import a published benchmark into a rankzc store."""


@import_group.command("thesis")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "-o",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Store to create or add to.",
)
def thesis(directory: Path, out: Path) -> None:
    """Import the GCN-NAS study's per-architecture JSON files from DIRECTORY."""
    check_output_path(out)
    click.echo(import_thesis(directory, out).summary())


@import_group.command("nbsz")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--dataset", default=None, help="Dataset inside the file (needed when it has several)."
)
@click.option(
    "--space", default=None, help="Search-space name (default: from the file or its name)."
)
@click.option(
    "--out",
    "-o",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Store to create or add to.",
)
def nbsz(file: Path, dataset: str | None, space: str | None, out: Path) -> None:
    """Import a NAS-Bench-Suite-Zero zc_*.json FILE."""
    check_output_path(out)
    click.echo(import_nbsz(file, out, dataset=dataset, space=space).summary())


COMMANDS = [import_group]
