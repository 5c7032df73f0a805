"""``rankzc bench build``: train architectures into a benchmark store, resumably."""

from __future__ import annotations

from pathlib import Path

import click

from rankzc.commands._common import (
    architectures_from,
    check_output_path,
    echo_csv,
    echo_json,
    format_option,
    output_format,
    quiet_option,
    sampling_option,
    threads_option,
)
from rankzc.errors import RankzcError
from rankzc.threads import apply as apply_threads
from rankzc.threads import cpu_count


@click.group("bench")
def bench() -> None:
    """Build benchmarks by training architectures."""


def _architectures(
    text: str | None, sample: int | None, depths: str, seed: int, sampling: str = "uniform"
) -> list:
    """``--sample N`` samples N architectures; ``--archs FILE.json`` reads them (the old
    ``--archs N`` still samples, with a deprecation line)."""
    if (text is None) == (sample is None):
        raise RankzcError("give exactly one of --sample N and --archs FILE.json")
    if sample is not None:
        return architectures_from(None, sample, seed=seed, depths=depths, sampling=sampling)
    text = str(text)
    if text.isdigit():
        click.echo("Warning: --archs N is deprecated; use --sample N.", err=True)
        n = int(text)
        if n < 1:
            raise RankzcError(f"--archs: need at least 1 architecture, got {n}")
        return architectures_from(None, n, seed=seed, depths=depths, sampling=sampling)
    path = Path(text)
    if path.suffix.lower() == ".json" or path.exists():
        if not path.exists():
            raise RankzcError(f"--archs {text}: no such file")
        return architectures_from(path, None)
    raise RankzcError(f"--archs: expected a number or a .json file, got {text!r}")


@bench.command("build")
@click.option(
    "--out",
    "-o",
    required=True,
    type=click.Path(path_type=Path),
    help="Benchmark store to create or resume.",
)
@click.option(
    "--sample",
    type=click.IntRange(1),
    default=None,
    help="Train N architectures sampled from the space (unique, seeded).",
)
@click.option(
    "--archs",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="JSON list of architectures to train.",
)
@click.option("--depths", default="4,6,8,10", show_default=True, help="Depths to sample from.")
@sampling_option()
@click.option(
    "--preset",
    type=click.Choice(["tiny", "cpu", "ntu60"]),
    default="cpu",
    show_default=True,
    help="Model size and training budget.",
)
@click.option(
    "--data",
    "data_spec",
    default="synthetic",
    show_default=True,
    help="Data specification (synthetic[:k=v,...] or ntu:PATH[:split]).",
)
@click.option(
    "--epochs",
    type=click.IntRange(1),
    default=None,
    help="Training epochs (default: the preset's; milestones scale with it).",
)
@click.option(
    "--warmup-epochs",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="Score proxies after each of the first K epochs (and always at initialisation).",
)
@click.option(
    "--seed",
    type=int,
    default=None,
    help="Seed of sampling and training (default 0; use --seeds for several).",
)
@click.option(
    "--seeds",
    default=None,
    help="Comma-separated training seeds, e.g. 0,1: every architecture is trained under "
    "each (architectures are sampled with the first); the store keeps every run.",
)
@click.option(
    "--repeat-archs",
    type=click.IntRange(0),
    default=None,
    help="With --seeds: only the first N architectures are trained under the seeds after "
    "the first (default: all).",
)
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="Where architectures are trained (auto: CUDA when available).",
)
@click.option(
    "--precision",
    type=click.Choice(["fp32", "bf16"]),
    default="fp32",
    show_default=True,
    help="Training precision (bf16 autocasts the forward pass).",
)
@click.option(
    "--executor",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="local: one architecture after another in this process; ray: one Ray task each.",
)
@click.option("--ray-address", default=None, help="Address of an existing Ray cluster.")
@click.option(
    "--workers",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Ray workers for a local Ray instance (up to the number of cores; "
    "each runs --threads threads).",
)
@click.option(
    "--proxies",
    default="all",
    show_default=True,
    help="Comma-separated proxies scored during warm-up ('all' or 'none').",
)
@click.option("--retry-failed", is_flag=True, help="Train failed architectures again.")
@click.option(
    "--allow-mixed-config",
    is_flag=True,
    help="Add runs to a store that holds runs of another training configuration.",
)
@threads_option()
@quiet_option()
@format_option(json_alias=True)
def build(
    out: Path,
    sample: int | None,
    archs: Path | None,
    depths: str,
    sampling: str,
    preset: str,
    data_spec: str,
    epochs: int | None,
    warmup_epochs: int,
    seed: int | None,
    seeds: str | None,
    repeat_archs: int | None,
    device: str,
    precision: str,
    executor: str,
    ray_address: str | None,
    workers: int,
    proxies: str,
    retry_failed: bool,
    allow_mixed_config: bool,
    threads: int | None,
    quiet: bool,
    fmt: str,
) -> None:
    """Train architectures and record accuracy per epoch, the final label and proxies.

    The label is the top-1 validation accuracy after the last epoch. Proxies are
    scored at initialisation (epoch -1) and after each of the first
    --warmup-epochs epochs, on one fixed seeded minibatch of 20 training samples.
    Run the same command again to resume: finished architectures are skipped,
    partial ones continue from their checkpoint in OUT.ckpt/.

    Repeated seeds (label noise): --seeds 0,1 trains every architecture under seeds 0
    and 1; add --repeat-archs 40 to train only the first 40 under seed 1. All runs of
    the first seed come first. Labels are then the mean over an architecture's runs.
    """
    from rankzc.training import TrainConfig, build_benchmark
    from rankzc.training.runner import check_executor, check_output, parse_seeds, seed_plan
    from rankzc.training.trainer import resolve_device

    # Everything is checked before any training starts.
    if seeds is not None and seed is not None:
        raise RankzcError("--seed and --seeds: give one of them (--seeds 0,1 or --seed 0)")
    if repeat_archs is not None and seeds is None:
        raise RankzcError("--repeat-archs: only used with --seeds")
    seed_list = parse_seeds(seeds) if seeds is not None else (0 if seed is None else seed,)
    fmt = output_format(fmt)
    check_output_path(out)
    check_output(out)
    check_executor(executor, workers, ray_address)
    resolve_device(device)
    config = TrainConfig.for_preset(
        preset,
        data=data_spec,
        epochs=epochs,
        warmup_epochs=warmup_epochs,
        precision=precision,
        proxies=proxies,
    )
    arch_list = _architectures(archs, sample, depths, seed_list[0], sampling)
    seed_plan(arch_list, seed_list, repeat_archs)  # --repeat-archs fits the architectures
    policy = apply_threads(threads, workers if executor == "ray" else 1)
    if executor == "ray" and policy.workers * policy.threads > cpu_count():
        click.echo(
            f"Warning: --workers {policy.workers} x {policy.threads} thread(s) exceeds the "
            f"{cpu_count()} cores; workers will compete for them.",
            err=True,
        )
    summary = build_benchmark(
        out,
        arch_list,
        config,
        seed_list,
        repeat=repeat_archs,
        device=device,
        executor=executor,
        workers=workers,
        ray_address=ray_address,
        retry_failed=retry_failed,
        progress=False if quiet else None,
        allow_mixed_config=allow_mixed_config,
    )
    from rankzc.analysis import chance_line, store_chance
    from rankzc.store import Benchmark, config_hash

    with Benchmark.open(out, readonly=True) as bench:  # this configuration's labels
        at_chance = chance_line(store_chance(bench, config=config_hash(config.to_dict())))
    if fmt == "json":
        echo_json({**summary.to_dict(), "chance": at_chance})
    elif fmt == "csv":
        echo_csv(summary.to_dict())
    else:
        for arch_id, error in summary.errors.items():
            click.echo(f"  failed {arch_id}: {error}")
        if at_chance:
            click.echo(f"{out}: {at_chance}")
        click.echo(
            f"{out}: {summary.done} trained, {summary.failed} failed, "
            f"{summary.skipped_done} already done, {summary.skipped_failed} failed before "
            f"(skipped), {summary.seconds:.1f} s"
        )
    if at_chance and fmt != "table":  # beside JSON or CSV: on stderr, as search does
        click.echo(f"{out}: {at_chance}", err=True)
    if summary.failed:  # any architecture that failed in this run shows in the exit code
        raise SystemExit(1)


COMMANDS = [bench]
