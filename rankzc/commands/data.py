"""``rankzc data``: look at a skeleton data set named by a data spec."""

from __future__ import annotations

import click
import numpy as np

from rankzc.commands._common import echo_csv, echo_json, format_option, output_format


@click.group("data")
def data() -> None:
    """Skeleton data sets (synthetic or NTU RGB+D)."""


@data.command("inspect")
@click.argument("spec")
@click.option("--frames", type=int, default=None, help="Resample every sample to this many frames.")
@format_option(json_alias=True)
def inspect(spec: str, frames: int | None, fmt: str) -> None:
    """Shapes, classes, split sizes and load report of the data set SPEC.

    SPEC is ``synthetic[:key=value,...]`` or ``ntu:PATH[:SPLIT][:key=value,...]``.
    """
    from rankzc.datasets.spec import load_dataset, parse_data_spec

    fmt = output_format(fmt)
    parsed = parse_data_spec(spec)
    out: dict = {"spec": str(parsed), "format": parsed.format or parsed.kind, "parts": {}}
    for part in ("train", "val"):
        ds = load_dataset(parsed, part, num_frames=frames)
        counts = np.bincount(ds.labels.numpy(), minlength=ds.num_classes)
        out["num_classes"] = ds.num_classes
        if ds.class_names:
            out["class_names"] = list(ds.class_names)
        x = ds.data
        second = (
            float((x[..., 1].abs().sum(dim=(1, 2, 3)) > 0).float().mean())
            if x.shape[-1] > 1 and len(x)
            else 0.0
        )
        out["parts"][part] = {
            "shape": list(x.shape),
            "dtype": str(x.dtype).replace("torch.", ""),
            "samples": len(ds),
            "classes_present": int((counts > 0).sum()),
            "min_per_class": int(counts.min()) if len(counts) else 0,
            "max_per_class": int(counts.max()) if len(counts) else 0,
            "with_second_body": round(second, 4),
            "report": ds.report.to_dict(),
        }
    if fmt == "json":
        echo_json(out)
        return
    if fmt == "csv":
        echo_csv(
            [
                {"spec": out["spec"], "format": out["format"], "num_classes": out["num_classes"],
                 "part": part, **{k: v for k, v in p.items() if k != "report"},
                 **{f"report_{k}": v for k, v in p["report"].items()}}
                for part, p in out["parts"].items()
            ]
        )  # fmt: skip
        return
    click.echo(f"spec:     {out['spec']}")
    click.echo(f"format:   {out['format']}")
    click.echo(f"classes:  {out['num_classes']}")
    if "class_names" in out:
        click.echo("names:    " + ", ".join(out["class_names"]))
    header = (
        f"{'part':<6} {'samples':>8} {'shape':<26} {'classes':>7} {'per class':>11} {'2 bodies':>8}"
    )
    click.echo(header)
    for part, p in out["parts"].items():
        shape = "x".join(str(s) for s in p["shape"])
        per = f"{p['min_per_class']}-{p['max_per_class']}"
        click.echo(
            f"{part:<6} {p['samples']:>8} {shape:<26} {p['classes_present']:>7} {per:>11} {p['with_second_body']:>8.2%}"
        )
    click.echo("load report:")
    keys = ("dropped_missing", "dropped_empty", "nan_fixed", "padded", "truncated", "extra_bodies")
    for part, p in out["parts"].items():
        r = p["report"]
        notes = ("; " + "; ".join(r["notes"])) if r["notes"] else ""
        click.echo(f"  {part}: " + ", ".join(f"{k}={r[k]}" for k in keys) + notes)


COMMANDS = [data]
