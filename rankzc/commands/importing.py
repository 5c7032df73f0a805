"""``rankzc import thesis|nbsz``: turn published benchmark files into a store."""

from __future__ import annotations

from pathlib import Path

import click

from rankzc.commands._common import check_output_path, quiet_option, start_line

# the importers' own tuples (rankzc.importers.common), spelled here so that start-up
# does not import the store and pandas; the importers validate them again
ACCURACY_UNITS = ("auto", "percent", "fraction")
DUPLICATE_POLICIES = ("error", "first", "mean")


def _import_options(fn):
    """``--accuracy-unit``, ``--on-duplicate``, ``--allow-mixed-config`` (every importer)."""
    fn = click.option(
        "--allow-mixed-config",
        is_flag=True,
        help="Add to a store that holds runs of another configuration (source, dataset).",
    )(fn)
    fn = click.option(
        "--on-duplicate",
        type=click.Choice(DUPLICATE_POLICIES),
        default="error",
        show_default=True,
        help="An architecture under two keys: refuse the file, keep the first record, "
        "or average the records' label and proxy scores.",
    )(fn)
    return click.option(
        "--accuracy-unit",
        type=click.Choice(ACCURACY_UNITS),
        default=None,
        help="Unit of the accuracies (default: the format's own: percent for nbsz, whose "
        "suite defines percentages; auto for thesis). auto decides from the whole column "
        "(a value of exactly 0 or 1 never decides it) and refuses a column that mixes "
        "fractions and percentages.",
    )(fn)


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
@_import_options
@quiet_option()
def thesis(
    directory: Path,
    out: Path,
    accuracy_unit: str | None,
    on_duplicate: str,
    allow_mixed_config: bool,
    quiet: bool,
) -> None:
    """Import the GCN-NAS study's per-architecture JSON files from DIRECTORY."""
    from rankzc.importers import import_thesis

    check_output_path(out)
    start_line(quiet, f"importing the study's JSON files from {directory} into {out}")
    report = import_thesis(
        directory,
        out,
        accuracy_unit=accuracy_unit or "auto",
        on_duplicate=on_duplicate,
        allow_mixed_config=allow_mixed_config,
    )
    click.echo(report.summary())
    click.echo(f"store written to {out}")


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
@_import_options
@quiet_option()
def nbsz(
    file: Path,
    dataset: str | None,
    space: str | None,
    out: Path,
    accuracy_unit: str | None,
    on_duplicate: str,
    allow_mixed_config: bool,
    quiet: bool,
) -> None:
    """Import a NAS-Bench-Suite-Zero zc_*.json FILE."""
    from rankzc.importers import import_nbsz

    check_output_path(out)
    start_line(quiet, f"importing {file} into {out}")
    report = import_nbsz(
        file,
        out,
        dataset=dataset,
        space=space,
        accuracy_unit=accuracy_unit,
        on_duplicate=on_duplicate,
        allow_mixed_config=allow_mixed_config,
    )
    click.echo(report.summary())
    click.echo(f"store written to {out}")


COMMANDS = [import_group]
