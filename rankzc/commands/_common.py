"""Options and helpers shared by the CLI commands."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import click
import pandas as pd

from rankzc.errors import RankzcError
from rankzc.store import Benchmark, default_benchmark_path


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


def format_option(choices: tuple[str, ...] = ("table", "json")):
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(choices),
        default=choices[0],
        show_default=True,
        help="Output format.",
    )


def open_benchmark(path: Path | None) -> Benchmark:
    """Open ``path`` read-only, or the shipped default when it is None."""
    if path is None:
        path = default_benchmark_path()
        if not path.exists():
            raise RankzcError(
                f"no --benchmark given and the shipped default {path} is not installed"
            )
    return Benchmark.open(path, readonly=True)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return _clean(value.item())
    return value


def echo_json(obj: Any) -> None:
    """Print ``obj`` as JSON; NaN and inf become null."""
    click.echo(json.dumps(_clean(obj), indent=2, allow_nan=False))


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
    if not out.parent.exists():
        raise RankzcError(f"{out}: directory {out.parent} does not exist")
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=suffix)
    os.close(fd)
    try:
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
                meta[b"rankzc"] = json.dumps(_clean(metadata)).encode()
                table = table.replace_schema_metadata(meta)
            pq.write_table(table, tmp)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if suffix == ".csv" and metadata:
        sidecar = out.with_name(out.name + ".json")
        sidecar.write_text(json.dumps(_clean(metadata), indent=2))


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


def architectures_from(
    archs: Path | None, sample: int | None, *, seed: int = 0, depths: str | None = None
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
    return sample_architectures(sample, depths=depth_list, seed=seed)
