"""``rankzc features``: score architectures with zero-cost proxies at initialisation."""

from __future__ import annotations

from pathlib import Path

import click

from rankzc.commands._common import architectures_from
from rankzc.errors import RankzcError


def _progress(total: int, label: str):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=False,
    )


@click.command("features")
@click.option(
    "--benchmark",
    "-b",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Score every architecture of this store that lacks the proxies (resumable).",
)
@click.option(
    "--archs",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="JSON file of architectures to score.",
)
@click.option("--sample", type=int, default=None, help="Score N random architectures.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Output .csv or .parquet (with --archs / --sample).",
)
@click.option("--proxies", default="", help="Comma-separated proxy names (default: all 14).")
@click.option("--data", default="synthetic", show_default=True, help="Data spec.")
@click.option(
    "--preset",
    type=click.Choice(["tiny", "cpu", "ntu60"]),
    default="cpu",
    show_default=True,
    help="Model size.",
)
@click.option("--batch-size", type=int, default=20, show_default=True, help="Minibatch size.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed.")
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
)
@click.option(
    "--depths",
    default="4,6,8,10",
    show_default=True,
    help="Depths to draw from with --sample.",
)
def features(
    benchmark: Path | None,
    archs: Path | None,
    sample: int | None,
    out: Path | None,
    proxies: str,
    data: str,
    preset: str,
    batch_size: int,
    seed: int,
    device: str,
    depths: str,
) -> None:
    """Score architectures at initialisation with zero-cost proxies.

    Either fill a benchmark store (--benchmark B.db: every architecture lacking the
    proxies; interrupted runs resume), or write a table (--archs FILE.json or --sample N
    with --out F.csv|F.parquet: arch_id, depth, arch, one column per proxy). The settings
    are stored with the scores (store, CSV sidecar F.csv.json, parquet metadata).
    """
    from rankzc.proxies.features import ProxySettings

    sources = [s for s in (benchmark, archs, sample) if s is not None]
    if len(sources) != 1:
        raise RankzcError("give exactly one of --benchmark, --archs, --sample")
    settings = ProxySettings(
        preset=preset,
        data=data,
        batch_size=batch_size,
        seed=seed,
        device=device,
        proxies=proxies,
    )
    if benchmark is not None:
        if out is not None:
            raise RankzcError("--out: not used with --benchmark (scores go to the store)")
        _fill_store(benchmark, settings)
        return
    if out is None:
        raise RankzcError("--out: required with --archs / --sample")
    if out.suffix.lower() not in (".csv", ".parquet"):
        raise RankzcError(f"{out}: output must end in .csv or .parquet")
    arch_list = architectures_from(archs, sample, seed=seed, depths=depths)
    _write_table(arch_list, settings, out)


def _write_table(arch_list: list, settings, out: Path) -> None:
    from rankzc.commands._common import atomic_write_frame
    from rankzc.proxies.features import check_memory, score_architectures

    check_memory(arch_list, settings)  # refuse before any work or progress output
    with _progress(len(arch_list), "features") as bar:
        task = bar.add_task("features", total=len(arch_list))
        df = score_architectures(
            arch_list, settings, progress=lambda arch, res: bar.advance(task), report=_report
        )
    meta = {"settings": df.attrs["settings"], "errors": df.attrs["errors"]}
    atomic_write_frame(df, out, **meta)
    missing = df[settings.names].isna().sum()
    click.echo(
        f"wrote {len(df)} architectures x {len(settings.names)} proxies to {out}"
        f"{_missing_text(missing[missing > 0].to_dict())}"
    )


def _report(message: str) -> None:
    """Memory estimate and per-proxy progress at the study's scale, on stderr."""
    click.echo(message, err=True)


def _missing_text(missing: dict[str, int]) -> str:
    if not missing:
        return " (no missing scores)"
    return " (missing: " + ", ".join(f"{n} x{c}" for n, c in sorted(missing.items())) + ")"


def _fill_store(path: Path, settings) -> None:
    from rankzc.proxies.features import iter_scores
    from rankzc.space import SPACE, Architecture
    from rankzc.store import Benchmark

    if not path.exists():
        raise RankzcError(f"{path}: benchmark store not found")
    with Benchmark.open(path) as bench:
        if bench.meta.get("space") not in (None, SPACE):
            raise RankzcError(
                f"{path}: space {bench.meta.get('space')!r} is not {SPACE!r}; "
                "rankzc features builds GCN-NAS models only"
            )
        names = settings.names
        todo_ids = set(bench.missing_proxies(names, epoch=-1))
        table = bench.architectures()
        ids, todo = [], []
        for arch_id, enc in table["encoding"].items():
            if arch_id in todo_ids:
                ids.append(arch_id)
                todo.append(Architecture.parse(str(enc)))
        done = len(table) - len(todo)
        if not todo:
            click.echo(f"{path}: all {len(table)} architectures already have {len(names)} proxies")
            return
        record = settings.to_dict()
        missing: dict[str, int] = {}
        scores = iter_scores(todo, settings, report=_report)  # checks memory first
        with _progress(len(todo), "features") as bar:
            task = bar.add_task("features", total=len(todo))
            for arch_id, (_, results) in zip(ids, scores, strict=False):
                bench.record_proxies(
                    arch_id,
                    -1,
                    {n: r.as_tuple() for n, r in results.items()},
                    settings=record,
                )
                for name, r in results.items():
                    if r.score is None:
                        missing[name] = missing.get(name, 0) + 1
                bar.advance(task)
        click.echo(
            f"{path}: scored {len(todo)} architectures ({done} already done)"
            f"{_missing_text(missing)}"
        )


COMMANDS = [features]
