"""``rankzc features``: score architectures with zero-cost proxies at initialisation."""

from __future__ import annotations

from pathlib import Path

import click

from rankzc.commands._common import (
    architectures_from,
    check_output_path,
    quiet_option,
    table_layout,
    threads_option,
)
from rankzc.errors import RankzcError
from rankzc.progress import Progress
from rankzc.threads import apply as apply_threads


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
    "-o",
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
    help="Where models are built and scored (auto: CUDA when available).",
)
@click.option(
    "--depths",
    default="4,6,8,10",
    show_default=True,
    help="Depths to draw from with --sample.",
)
@click.option(
    "--workers",
    type=int,
    default=1,
    show_default=True,
    help="Score in this many worker processes (local: this one and N-1 spawned ones) or "
    "Ray actors (--executor ray).",
)
@click.option(
    "--executor",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="Workers as local processes or as Ray actors.",
)
@click.option("--ray-address", default=None, help="Address of an existing Ray cluster.")
@threads_option()
@quiet_option()
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
    workers: int,
    executor: str,
    ray_address: str | None,
    threads: int | None,
    quiet: bool,
) -> None:
    """Score architectures at initialisation with zero-cost proxies.

    Either fill a benchmark store (--benchmark B.db: every architecture lacking the
    proxies; interrupted runs resume), or write a table (--archs FILE.json or --sample N
    with --out F.csv|F.parquet: arch_id, encoding, depth, one column per proxy, the
    layout of ``rankzc export``). The settings
    are stored with the scores (store, CSV sidecar F.csv.json, parquet metadata).
    With --workers N the architectures are scored by N worker processes (or Ray actors),
    each generating the minibatch once; the scores are the same as with one.
    """
    from rankzc.proxies.features import ProxySettings
    from rankzc.training.runner import check_executor

    sources = [s for s in (benchmark, archs, sample) if s is not None]
    if len(sources) != 1:
        raise RankzcError("give exactly one of --benchmark, --archs, --sample")
    check_executor(executor, workers, ray_address)
    pool = {"executor": executor, "workers": workers, "ray_address": ray_address}
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
        apply_threads(threads, workers)
        _fill_store(benchmark, settings, quiet, pool)
        return
    if out is None:
        raise RankzcError("--out: required with --archs / --sample")
    check_output_path(out, suffixes=(".csv", ".parquet"))
    arch_list = architectures_from(archs, sample, seed=seed, depths=depths)
    apply_threads(threads, workers)
    _write_table(arch_list, settings, out, quiet, pool)


def _parallel(pool: dict) -> bool:
    return pool["executor"] == "ray" or pool["workers"] > 1


def _write_table(arch_list: list, settings, out: Path, quiet: bool, pool: dict) -> None:
    from rankzc.commands._common import atomic_write_frame
    from rankzc.proxies.features import check_memory, score_architectures

    check_memory(arch_list, settings)  # refuse before any work or progress output
    with Progress(quiet=quiet) as bar:
        task = bar.add("features", total=len(arch_list))
        if _parallel(pool):
            df = _score_frame(arch_list, settings, pool, lambda *_: bar.advance(task))
        else:
            df = score_architectures(
                arch_list,
                settings,
                progress=bar.callback(task),
                report=None if quiet else _report,
            )
    df = table_layout(df)
    meta = {"settings": df.attrs["settings"], "errors": df.attrs["errors"]}
    atomic_write_frame(df, out, **meta)
    missing = df[settings.names].isna().sum()
    click.echo(
        f"wrote {len(df)} architectures x {len(settings.names)} proxies to {out}"
        f"{_missing_text(missing[missing > 0].to_dict())}"
    )


def _score_frame(arch_list: list, settings, pool: dict, advance):
    """:func:`~rankzc.proxies.features.score_architectures`'s frame, scored by the
    workers of :func:`rankzc.search.pool.score_pool` (rows in ``arch_list``'s order)."""
    import pandas as pd

    from rankzc.search.pool import score_pool

    names = settings.names
    results = score_pool(arch_list, settings.to_dict(), on_result=advance, **pool)
    rows, seconds, errors = [], {}, {}
    for arch in arch_list:
        res = results[arch.arch_id]
        row = {"arch_id": arch.arch_id, "depth": arch.depth, "arch": str(arch)}
        row.update({n: res[n][0] for n in names})
        rows.append(row)
        seconds[arch.arch_id] = {n: res[n][1] for n in names}
        errs = {n: res[n][2] for n in names if res[n][2]}
        if errs:
            errors[arch.arch_id] = errs
    df = pd.DataFrame(rows, columns=["arch_id", "depth", "arch", *names])
    df[names] = df[names].astype(float)
    df = df.set_index("arch_id")
    df.attrs.update(settings=settings.to_dict(), seconds=seconds, errors=errors)
    return df


def _report(message: str) -> None:
    """Memory estimate and per-proxy progress at the study's scale, on stderr."""
    click.echo(message, err=True)


def _missing_text(missing: dict[str, int]) -> str:
    if not missing:
        return " (no missing scores)"
    return " (missing: " + ", ".join(f"{n} x{c}" for n, c in sorted(missing.items())) + ")"


def _fill_store(path: Path, settings, quiet: bool, pool: dict) -> None:
    from rankzc.proxies.features import check_memory, iter_scores
    from rankzc.space import SPACE, Architecture
    from rankzc.store import Benchmark, store_file
    from rankzc.writelock import store_lock

    if not store_file(path).exists():
        raise RankzcError(f"{path}: benchmark store not found")
    # a store (and STORE#HASH's configuration), checked before any lock file is made;
    # initialisation scores belong to no training configuration: they go to STORE
    Benchmark.open(path, readonly=True).close()
    path = store_file(path)
    with store_lock(path, "features", option="--benchmark"), Benchmark.open(path) as bench:
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
        bench.check_proxy_settings(record, epoch=-1)  # one configuration per store
        missing: dict[str, int] = {}

        def record_one(arch_id: str, results: dict[str, tuple]) -> None:
            bench.record_proxies(arch_id, -1, results, settings=record)
            for name, r in results.items():
                if r[0] is None:
                    missing[name] = missing.get(name, 0) + 1

        if _parallel(pool):
            from rankzc.search.pool import score_pool

            check_memory(todo, settings)  # refuse before any work or progress output
            stored: dict[str, list[str]] = {}  # the store's ids of each architecture
            unique = {}
            for arch_id, arch in zip(ids, todo, strict=True):
                stored.setdefault(arch.arch_id, []).append(arch_id)
                unique.setdefault(arch.arch_id, arch)
            with Progress(quiet=quiet) as bar:
                task = bar.add("features", total=len(todo))

                def on_result(key: str, results: dict[str, tuple]) -> None:
                    for arch_id in stored[key]:
                        record_one(arch_id, results)
                        bar.advance(task)

                score_pool(list(unique.values()), record, on_result=on_result, **pool)
        else:
            # checks memory first, before any progress output
            scores = iter_scores(todo, settings, report=None if quiet else _report)
            with Progress(quiet=quiet) as bar:
                task = bar.add("features", total=len(todo))
                for arch_id, (_, results) in zip(ids, scores, strict=False):
                    record_one(arch_id, {n: r.as_tuple() for n, r in results.items()})
                    bar.advance(task)
        click.echo(
            f"{path}: scored {len(todo)} architectures ({done} already done)"
            f"{_missing_text(missing)}"
        )


COMMANDS = [features]
