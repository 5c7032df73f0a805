"""Options and helpers shared by the CLI commands."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from rankzc.atomicfile import atomic_output, check_writable
from rankzc.errors import RankzcError
from rankzc.jsonfile import jsonable

if TYPE_CHECKING:  # pandas and the store load only when a command runs (fast start-up)
    import pandas as pd

    from rankzc.store import Benchmark


def benchmark_option(**kwargs: Any):
    """``--benchmark B.db``, defaulting to the benchmark shipped with rankzc."""
    return click.option(
        "--benchmark",
        "-b",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Benchmark store (default: the benchmark shipped with rankzc).",
        **kwargs,
    )


FORMATS = ("table", "json", "csv")


def _deprecated_json(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        click.echo("Warning: --json is deprecated; use --format json.", err=True)
        ctx.meta["rankzc_json_alias"] = True


def format_option(choices: tuple[str, ...] = FORMATS, *, json_alias: bool = False):
    """``--format table|json|csv`` (``table``: human-readable, to the terminal's width).

    ``json_alias`` also accepts the old ``--json`` flag (hidden, deprecated), read back
    with :func:`output_format`.
    """

    def decorator(f):
        f = click.option(
            "--format",
            "fmt",
            type=click.Choice(choices),
            default=choices[0],
            show_default=True,
            help="Output format: table (human-readable), json or csv (machine-readable).",
        )(f)
        if json_alias:
            f = click.option(
                "--json",
                "json_alias",
                is_flag=True,
                hidden=True,
                expose_value=False,
                callback=_deprecated_json,
                help="Deprecated alias of --format json.",
            )(f)
        return f

    return decorator


def output_format(fmt: str) -> str:
    """``fmt``, or ``json`` when the deprecated ``--json`` flag was given."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.meta.get("rankzc_json_alias"):
        return "json"
    return fmt


def quiet_option():
    """``--quiet/-q``: no progress bars or progress lines (:mod:`rankzc.progress`)."""
    return click.option(
        "--quiet",
        "-q",
        is_flag=True,
        help="No progress (bars on a terminal, periodic lines on stderr otherwise).",
    )


def threads_option():
    """``--threads N``: the thread policy of :mod:`rankzc.threads`."""
    return click.option(
        "--threads",
        type=click.IntRange(1),
        default=None,
        help="Threads per process for PyTorch, BLAS and LightGBM "
        "(default: OMP_NUM_THREADS if set, else 1; see README 'Threads').",
    )


def check_output_path(
    path: Path, *, option: str = "--out", suffixes: tuple[str, ...] | None = None
) -> Path:
    """Check, before any work, that ``path`` can be written; create missing directories.

    The rule of every command: a missing parent directory is created; a parent that
    cannot be written, a path that is a directory, or a wrong suffix is a one-line
    error naming the path.
    """
    path = Path(path)
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise RankzcError(f"{option} {path}: must end in {' or '.join(suffixes)}")
    if path.is_dir():
        raise RankzcError(f"{option} {path}: is a directory")
    parent = path.parent if str(path.parent) else Path(".")
    ensure_directory(parent, option=option, target=path)
    if path.exists() and not os.access(path, os.W_OK):
        raise RankzcError(f"{option} {path}: file is not writable")
    return path


def ensure_directory(directory: Path, *, option: str, target: Path | None = None) -> Path:
    """Create ``directory`` if missing and check, by a real write, that it is writable."""
    name = f"{option} {target if target is not None else directory}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise RankzcError(f"{name}: {directory} is not a directory") from None
    except OSError as err:
        raise RankzcError(f"{name}: cannot create directory {directory} ({err.strerror})") from None
    check_writable(directory, name)
    return directory


def open_benchmark(path: Path | None) -> Benchmark:
    """Open ``path`` read-only, or the shipped default when it is None."""
    from rankzc.store import Benchmark, default_benchmark_path

    if path is None:
        path = default_benchmark_path()
        if not path.exists():
            raise RankzcError(
                f"no --benchmark given and the shipped default {path} is not installed"
            )
    return Benchmark.open(path, readonly=True)


def echo_json(obj: Any) -> None:
    """Print ``obj`` as JSON; NaN and inf become null."""
    click.echo(json.dumps(jsonable(obj), indent=2, allow_nan=False))


def _csv_cell(value: Any) -> Any:
    value = jsonable(value)
    if isinstance(value, (list, tuple)):
        return ";".join(str(_csv_cell(v)) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return value


def echo_csv(rows: pd.DataFrame | list[dict] | dict, *, index: bool = False) -> None:
    """Print ``rows`` (a frame, a list of records, or one record) as CSV.

    Lists inside a cell are joined with ``;``; dicts become JSON text; NaN is empty.
    """
    import pandas as pd

    if isinstance(rows, dict):
        rows = [rows]
    if not isinstance(rows, pd.DataFrame):
        rows = pd.DataFrame([{k: _csv_cell(v) for k, v in r.items()} for r in rows])
    else:
        rows = rows.map(_csv_cell) if len(rows) else rows
    click.echo(rows.to_csv(index=index, lineterminator="\n"), nl=False)


def _terminal_width() -> int | None:
    """Columns of the terminal stdout is, or None when stdout is piped or a file."""
    import shutil
    import sys

    try:
        if not sys.stdout.isatty():
            return None
    except (AttributeError, ValueError):
        return None
    return shutil.get_terminal_size().columns


def print_table(
    headers: list[str],
    rows: list[list[Any]],
    *,
    title: str | None = None,
    keys: int = 1,
    right: set[str] | None = None,
    width: int | None = None,
) -> None:
    """Print a table that fits the terminal and never truncates a value.

    On a terminal of ``width`` columns (default: the terminal's, None when piped) a table
    too wide is split into parts, each repeating the first ``keys`` columns; a single
    cell wider than the terminal wraps. Piped output is one table at its natural width.
    ``right``: headers of right-aligned columns (default: every column but the keys).
    """
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    width = _terminal_width() if width is None else width
    cells = [["" if c is None else str(c) for c in r] for r in rows]
    widths = [
        max([len(h)] + [max((len(x) for x in r[i].splitlines()), default=0) for r in cells])
        for i, h in enumerate(headers)
    ]
    right = set(headers[keys:]) if right is None else right
    keys = min(keys, len(headers))

    def span(cols: list[int]) -> int:  # rich's box: 3 characters per column, 1 more
        return sum(widths[i] + 3 for i in cols) + 1

    natural = span(list(range(len(headers))))
    limit = width if width is not None else natural
    parts: list[list[int]] = []
    current: list[int] = []
    for i in range(keys, len(headers)):
        if current and span(list(range(keys)) + current + [i]) > limit:
            parts.append(current)
            current = []
        current.append(i)
    if current or not parts:
        parts.append(current)
    console = Console(width=max(limit, span(list(range(keys))) + 10, 20), highlight=False)
    for n, part in enumerate(parts, 1):
        label = title
        if len(parts) > 1:
            label = f"{title or 'table'} (part {n} of {len(parts)})"
        t = Table(title=None if label is None else Text(label))
        for i in [*range(keys), *part]:
            t.add_column(
                headers[i],
                justify="right" if headers[i] in right else "left",
                overflow="fold",
                no_wrap=width is None,
            )
        for r in cells:
            t.add_row(*(Text(r[i]) for i in [*range(keys), *part]))
        console.print(t)


def fmt_num(value: Any, digits: int = 4) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "-"
    return "-" if not math.isfinite(v) else f"{v:.{digits}f}"


def atomic_write_frame(df: pd.DataFrame, out: Path, **metadata: Any) -> None:
    """Write a frame to ``out`` (.csv or .parquet) through a temporary file and a rename.

    ``metadata`` is stored in the parquet schema, or for CSV in a ``<out>.json`` sidecar.
    """
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise RankzcError(f"{out}: output must end in .csv or .parquet")
    check_output_path(out)
    with atomic_output(out, suffix=suffix) as tmp:  # no temp file left on failure
        if suffix == ".csv":
            df.to_csv(tmp)
        else:
            try:
                import pyarrow as pa
                import pyarrow.parquet as pq
            except ImportError:
                raise RankzcError(
                    f"{out}: writing parquet needs pyarrow (pip install pyarrow)"
                ) from None
            table = pa.Table.from_pandas(df)
            if metadata:
                meta = dict(table.schema.metadata or {})
                meta[b"rankzc"] = json.dumps(jsonable(metadata)).encode()
                table = table.replace_schema_metadata(meta)
            pq.write_table(table, tmp)
    if suffix == ".csv" and metadata:
        sidecar = out.with_name(out.name + ".json")
        with atomic_output(sidecar) as tmp:
            tmp.write_text(json.dumps(jsonable(metadata), indent=2))


#: leading columns of every architecture table rankzc writes (export, features)
TABLE_COLUMNS = ("encoding", "depth", "val_acc")


def table_layout(df: pd.DataFrame) -> pd.DataFrame:
    """The one layout of architecture tables: index ``arch_id``; ``encoding`` (the
    canonical architecture string), ``depth``, ``val_acc`` (the label, where known),
    then one column per proxy. A column the source lacks (no depth in a space without
    depth, no label for new architectures) is left out."""
    df = df.rename(columns={"arch": "encoding"})
    first = [c for c in TABLE_COLUMNS if c in df.columns]
    out = df[first + [c for c in df.columns if c not in first]].copy()
    if "depth" in out and out["depth"].notna().all():
        out["depth"] = out["depth"].astype(int)
    out.index.name = "arch_id"
    return out


def epoch_option():
    """``--epoch E``: proxies scored after this epoch (-1 = initialisation)."""
    return click.option(
        "--epoch",
        type=int,
        default=-1,
        show_default=True,
        help="Proxies scored after this epoch (-1 = initialisation).",
    )


def features_option(
    help: str = "Ranker inputs: proxies, architecture encoding, graph features, or all.",
):
    """``--features proxies|arch|graph|all``."""
    return click.option(
        "--features",
        type=click.Choice(["proxies", "arch", "graph", "all"]),
        default="proxies",
        show_default=True,
        help=help,
    )


def sampling_option():
    """``--sampling uniform|density``: how ``--sample N`` draws architectures."""
    from rankzc.space import SAMPLINGS

    return click.option(
        "--sampling",
        type=click.Choice(list(SAMPLINGS)),
        default="uniform",
        show_default=True,
        help="How --sample draws: uniform over the space, or density (each architecture "
        "draws a share p ~ U(0,1) of switches on: spans sparse to dense architectures).",
    )


def architectures_from(
    archs: Path | None,
    sample: int | None,
    *,
    seed: int = 0,
    depths: str | None = None,
    sampling: str = "uniform",
) -> list:
    """The architectures named by ``--archs FILE.json`` or drawn by ``--sample N``."""
    from rankzc.space import DEPTHS, load_architectures, parse_depths, sample_architectures

    if archs is not None:
        found = load_architectures(archs)
        if not found:
            raise RankzcError(f"{archs}: the file lists no architectures")
        return found
    if sample is None or sample < 1:
        raise RankzcError(f"--sample: must be a positive integer, got {sample}")
    try:
        depth_list = parse_depths(depths) if depths is not None else DEPTHS
    except RankzcError as err:
        raise RankzcError(f"--depths: {err}") from None
    return sample_architectures(sample, depths=depth_list, seed=seed, sampling=sampling)


def out_option(help: str, *, required: bool = False, file: bool = True, name: str = "out"):
    """``-o/--out PATH``: the one spelling of "write the result here"."""
    return click.option(
        "--out",
        "-o",
        name,
        type=click.Path(dir_okay=not file, path_type=Path),
        required=required,
        default=None,
        help=help,
    )


def deprecated_alias(old: str, new: str, *, dest: str, type: Any = None, is_flag: bool = False):
    """A hidden old spelling ``old`` of ``new``: sets the parameter ``dest`` of ``new``
    and prints one deprecation line on stderr."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is None or (is_flag and not value):
            return
        click.echo(f"Warning: {old} is deprecated; use {new}.", err=True)
        ctx.meta.setdefault("rankzc_aliases", {})[dest] = value

    return click.option(
        old,
        f"_alias_{dest}",
        type=type,
        is_flag=is_flag,
        default=None,
        hidden=True,
        expose_value=False,
        callback=callback,
        help=f"Deprecated alias of {new}.",
    )


class DeprecatedArgument(click.Argument):
    """An optional positional argument kept from an old spelling: left out of the usage
    line, and one deprecation line on stderr when given (see :func:`deprecated_argument`)."""

    def get_usage_pieces(self, ctx: click.Context) -> list[str]:
        return []


def deprecated_argument(name: str, new: str, *, dest: str, type: Any = None):
    """A hidden old positional spelling of the option ``new`` (e.g. ``space sample 10``
    for ``--sample 10``): sets ``dest`` as :func:`deprecated_alias` does."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is None:
            return
        click.echo(f"Warning: the positional {name} is deprecated; use {new}.", err=True)
        ctx.meta.setdefault("rankzc_aliases", {})[dest] = value

    return click.argument(
        f"_positional_{dest}",
        cls=DeprecatedArgument,
        type=type,
        required=False,
        default=None,
        expose_value=False,
        callback=callback,
    )


def aliased(dest: str, value: Any) -> Any:
    """``value``, or the value given through a deprecated alias of ``dest``'s option."""
    ctx = click.get_current_context(silent=True)
    given = {} if ctx is None else ctx.meta.get("rankzc_aliases", {})
    return given.get(dest, value)


#: seconds a command works before its start line appears (a quick command, or one that
#: fails at once with a one-line error, prints none)
START_DELAY = 2.0


def start_line(quiet: bool, text: str) -> None:
    """One line on stderr saying what a command is doing, once it has run
    :data:`START_DELAY` seconds (cancelled when the command ends first)."""
    if quiet:
        return
    if START_DELAY <= 0:
        click.echo(text, err=True)
        return
    import threading

    timer = threading.Timer(START_DELAY, lambda: click.echo(text, err=True))
    timer.daemon = True
    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return
    ctx.call_on_close(timer.cancel)
    timer.start()


def fmt_duration(seconds: Any) -> str:
    """A duration in human units: ``12.3 s``, ``4.2 min``, ``3.1 h``, ``28.3 days``."""
    try:
        s = float(seconds)
    except (TypeError, ValueError):
        return "-"
    if not math.isfinite(s):
        return "-"
    if abs(s) < 60:
        return f"{s:.1f} s"
    if abs(s) < 3600:
        return f"{s / 60:.1f} min"
    if abs(s) < 86400:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} days"


def write_result(out: Path, obj: Any, rows: Any, *, err: bool = False) -> None:
    """Write a command's result to ``out``: JSON (``.json``: ``obj``) or CSV (``.csv``:
    ``rows``, a frame or records), atomically; the path is named on stdout (on stderr
    with ``err``, when stdout carries JSON or CSV)."""
    import pandas as pd

    suffix = out.suffix.lower()
    with atomic_output(out, suffix=suffix) as tmp:
        if suffix == ".json":
            tmp.write_text(json.dumps(jsonable(obj), indent=2, allow_nan=False) + "\n")
        else:
            if not isinstance(rows, pd.DataFrame):
                rows = pd.DataFrame([{k: _csv_cell(v) for k, v in r.items()} for r in rows])
            rows.to_csv(tmp, index=False, lineterminator="\n")
    click.echo(f"results written to {out}", err=err)
