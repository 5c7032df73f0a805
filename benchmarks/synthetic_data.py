"""Time the synthetic skeleton generator (`rankzc.datasets.synthetic.generate`).

Target: 10,000 samples in under 10 s on 2 cores. Prints a table, then one JSON line.

    OMP_NUM_THREADS=1 python benchmarks/synthetic_data.py            # n=10000, frames 32 and 64
    python benchmarks/synthetic_data.py --n 2000 --frames 300 --threads 1 2
    OMP_NUM_THREADS=1 python benchmarks/synthetic_data.py --separability --n 3000 \
        --frames 32 --difficulty 0 0.25 0.5 0.75 1
    OMP_NUM_THREADS=1 python benchmarks/synthetic_data.py --separability --task relations \
        --classes 8 --persons 1 --n 3000 --frames 16 --difficulty 0.3 0.5

``--separability`` instead fits scikit-learn classifiers on the flattened samples
of the cross-subject training part and reports their accuracy on the validation
part: a check that labels are learnable but not trivial at a given difficulty.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

from rankzc.datasets.synthetic import generate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--frames", type=int, nargs="+", default=[32, 64])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--difficulty", type=float, nargs="+", default=[0.5])
    ap.add_argument("--separability", action="store_true")
    ap.add_argument("--task", default="actions", help="actions or relations")
    ap.add_argument("--persons", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=2, help="best of this many runs")
    args = ap.parse_args()
    if args.separability:
        separability(args)
        return

    rows = []
    for frames in args.frames:
        for threads in args.threads:
            best = float("inf")
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                s = generate(
                    n=args.n,
                    classes=args.classes,
                    frames=frames,
                    difficulty=args.difficulty[0],
                    threads=threads,
                )
                best = min(best, time.perf_counter() - t0)
                shape = list(s.data.shape)
                del s
            rows.append(
                {
                    "n": args.n,
                    "frames": frames,
                    "threads": threads,
                    "seconds": round(best, 3),
                    "samples_per_s": round(args.n / best, 1),
                    "shape": shape,
                }
            )
    print(f"{'n':>7} {'frames':>6} {'threads':>7} {'seconds':>8} {'samples/s':>10}")
    for r in rows:
        print(
            f"{r['n']:>7} {r['frames']:>6} {r['threads']:>7} {r['seconds']:>8.2f} {r['samples_per_s']:>10.0f}"
        )
    info = {"cpu_count": os.cpu_count(), "python": platform.python_version(), "repeat": args.repeat}
    print(json.dumps({"benchmark": "synthetic_data", **info, "results": rows}))


def separability(args) -> None:
    """Logistic regression and an MLP on flattened coordinates, xsub train -> val."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from rankzc.datasets.ntu import is_training

    rows = []
    for frames in args.frames:
        for d in args.difficulty:
            s = generate(
                n=args.n,
                classes=args.classes,
                frames=frames,
                difficulty=d,
                seed=args.seed,
                task=args.task,
                persons=args.persons,
            )
            x = s.data.reshape(len(s), -1)
            train = is_training(s.names, "xsub")
            models = {
                "logreg": LogisticRegression(C=0.1, max_iter=500),
                "mlp": MLPClassifier((256,), early_stopping=True, max_iter=200, random_state=0),
            }
            row = {
                "task": args.task,
                "n": args.n,
                "frames": frames,
                "difficulty": d,
                "classes": args.classes,
            }
            row["n_train"], row["n_val"] = int(train.sum()), int((~train).sum())
            for name, clf in models.items():
                pipe = make_pipeline(StandardScaler(), clf).fit(x[train], s.labels[train])
                row[name] = round(float(pipe.score(x[~train], s.labels[~train])), 4)
            row["chance"] = round(float(np.bincount(s.labels[~train]).max() / (~train).sum()), 4)
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(
        f"{'n':>6} {'frames':>6} {'difficulty':>10} {'train':>6} {'val':>5} {'logreg':>7} {'mlp':>6} {'chance':>7}"
    )
    for r in rows:
        print(
            f"{r['n']:>6} {r['frames']:>6} {r['difficulty']:>10.2f} {r['n_train']:>6} {r['n_val']:>5}"
            f" {r['logreg']:>7.3f} {r['mlp']:>6.3f} {r['chance']:>7.3f}"
        )
    print(json.dumps({"benchmark": "synthetic_separability", "results": rows}))


if __name__ == "__main__":
    main()
