"""Repeated seeds in a build (``bench build --seeds``) and the recipe's training-set cap."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from rankzc.cli import main
from rankzc.errors import RankzcError
from rankzc.space import sample_architectures
from rankzc.store import Benchmark, config_hash
from rankzc.training import TrainConfig, Trainer, build_benchmark
from rankzc.training.runner import parse_seeds, seed_plan
from tests.test_training import make_data, stand_in, tiny_config


@pytest.fixture(scope="module")
def data():
    return make_data()


def test_seed_plan_order_and_subset():
    archs = sample_architectures(4, seed=1)
    plan = seed_plan(archs, (3, 5), repeat=2)
    assert plan == [(a, 3) for a in archs] + [(a, 5) for a in archs[:2]]
    assert seed_plan(archs, (0, 1, 2)) == [(a, s) for s in (0, 1, 2) for a in archs]
    assert seed_plan(archs, (0,), repeat=0) == [(a, 0) for a in archs]
    with pytest.raises(RankzcError, match="--repeat-archs"):
        seed_plan(archs, (0, 1), repeat=5)
    with pytest.raises(RankzcError, match="twice"):
        seed_plan(archs, (0, 0))
    assert parse_seeds(" 1, 0 ") == (1, 0)
    for bad, match in (("0,x", "integers"), ("1,1", "twice"), ("", "integers")):
        with pytest.raises(RankzcError, match=match):
            parse_seeds(bad)


def test_build_with_two_seeds_keeps_every_run(tmp_path, data):
    archs = sample_architectures(3, seed=4)
    cfg = tiny_config(epochs=2, warmup_epochs=1)
    out = tmp_path / "b.db"
    s = build_benchmark(
        out, archs, cfg, (0, 1), repeat=2, data=data, model_fn=stand_in, device="cpu"
    )
    assert (s.total, s.done, s.failed) == (5, 5, 0)
    # each run is exactly the run a one-seed build makes with its seed
    single = {}
    for seed in (0, 1):
        one = tmp_path / f"s{seed}.db"
        build_benchmark(one, archs[:2], cfg, seed, data=data, model_fn=stand_in, device="cpu")
        with Benchmark.open(one, readonly=True) as b:
            single[seed] = b.runs().set_index("arch_id")["val_acc"]
    with Benchmark.open(out, readonly=True) as b:
        runs = b.runs()
        labels = b.labels()
        records = b.proxy_records()
        settings = b.proxy_settings()
    assert sorted(runs["seed"]) == [0, 0, 0, 1, 1]
    assert (runs["status"] == "done").all()
    # the first seed's runs are trained first
    assert list(runs.sort_values("run_id")["seed"]) == [0, 0, 0, 1, 1]
    repeated = runs[runs["seed"] == 1]["arch_id"].tolist()
    assert repeated == [a.arch_id for a in archs[:2]]
    for seed in (0, 1):
        got = runs[(runs["seed"] == seed) & runs["arch_id"].isin(repeated)]
        assert got.set_index("arch_id")["val_acc"].to_dict() == single[seed].to_dict()
    assert labels.loc[repeated, "n_runs"].eq(2).all()
    assert labels.loc[archs[2].arch_id, "n_runs"] == 1
    # proxies of every run, at initialisation and after the warm-up epoch
    epochs_per_run = records.groupby("run_id")["epoch"].unique().map(sorted).map(list)
    assert len(epochs_per_run) == 5 and all(e == [-1, 0] for e in epochs_per_run)
    assert sorted(s["seed"] for s in settings) == [0, 1]
    # a second call resumes: nothing is trained again
    again = build_benchmark(
        out, archs, cfg, (0, 1), repeat=2, data=data, model_fn=stand_in, device="cpu"
    )
    assert (again.trained, again.skipped_done) == (0, 5)


def invoke(*args: str):
    return CliRunner().invoke(main, ["bench", "build", *args, "--quiet"])


TINY = ["--preset", "tiny", "--data", "synthetic:n=60", "--proxies", "params", "--epochs", "1"]


def test_cli_seeds_and_repeat(tmp_path):
    out = tmp_path / "b.db"
    res = invoke("--sample", "2", "--seeds", "2,7", "--repeat-archs", "1", "--out", str(out), *TINY)
    assert res.exit_code == 0, res.output
    assert "3 trained" in res.output
    with Benchmark.open(out, readonly=True) as b:
        runs = b.runs()
    assert sorted(runs["seed"]) == [2, 2, 7]
    # architectures are sampled with the first seed, as --seed 2 samples them
    res = invoke("--sample", "2", "--seed", "2", "--out", str(tmp_path / "one.db"), *TINY)
    assert res.exit_code == 0, res.output
    with Benchmark.open(tmp_path / "one.db", readonly=True) as b:
        assert set(b.runs()["arch_id"]) == set(runs["arch_id"])
        one = b.runs().set_index("arch_id")["val_acc"]
    first = runs[runs["seed"] == 2].set_index("arch_id")["val_acc"]
    assert first.sort_index().to_dict() == one.sort_index().to_dict()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--seeds", "0,1", "--seed", "0"], "--seed and --seeds"),
        (["--repeat-archs", "1"], "--repeat-archs"),
        (["--seeds", "0,0"], "twice"),
        (["--seeds", "0,b"], "--seeds"),
        (["--seeds", "0,1", "--repeat-archs", "3"], "--repeat-archs"),
    ],
)
def test_cli_bad_seeds_refused_before_training(tmp_path, monkeypatch, args, message):
    import rankzc.training.runner as runner

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runner, "run_local", lambda *a, **k: pytest.fail("training started"))
    res = invoke("--sample", "2", "--out", "b.db", *TINY, *args)
    assert res.exit_code != 0
    lines = [line for line in res.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], res.output
    assert not (tmp_path / "b.db").exists()


def test_train_samples_caps_training_and_changes_the_key(data):
    cfg = tiny_config(epochs=1)
    capped = tiny_config(epochs=1, train_samples=16)
    assert "train_samples" not in cfg.to_dict()  # keys of earlier configurations unchanged
    assert capped.to_dict()["train_samples"] == 16
    assert config_hash(cfg.to_dict()) != config_hash(capped.to_dict())
    assert TrainConfig.from_dict(capped.to_dict()) == capped
    arch = sample_architectures(1, seed=2)[0]
    t = Trainer(arch, capped, 0, data, model_fn=stand_in)
    t._build()
    assert t.train_feed.n == 16 and t.val_feed.n == len(data.x_val)
    full = Trainer(arch, cfg, 0, data, model_fn=stand_in)
    full._build()
    # the proxy minibatch comes from the whole training split either way
    assert all((a == b).all() for a, b in zip(t.proxy_batch, full.proxy_batch, strict=True))
    for bad in (1, 0, 2.5, True):
        with pytest.raises(RankzcError, match="train_samples"):
            tiny_config(train_samples=bad)


def test_val_every_validates_every_kth_and_the_last_epoch(data):
    assert "val_every" not in tiny_config().to_dict()
    cfg = tiny_config(epochs=3, warmup_epochs=0, proxies="none", val_every=2)
    assert cfg.to_dict()["val_every"] == 2
    recs = []
    arch = sample_architectures(1, seed=2)[0]
    result = Trainer(arch, cfg, 0, data, model_fn=stand_in).run(recs.append)
    got = {r.epoch: r.val_acc for r in recs if r.epoch >= 0}
    assert got[0] is None and got[1] is not None and got[2] is not None
    assert result.val_acc == got[2]
    every = tiny_config(epochs=3, warmup_epochs=0, proxies="none")
    ref = Trainer(arch, every, 0, data, model_fn=stand_in).run(lambda r: None)
    assert ref.val_acc == result.val_acc  # validating does not change training
    with pytest.raises(RankzcError, match="val_every"):
        tiny_config(val_every=0)


@pytest.mark.slow
def test_ray_build_with_two_seeds_equals_local(tmp_path, data):
    pytest.importorskip("ray")
    archs = sample_architectures(2, seed=4)
    cfg = tiny_config(epochs=1, warmup_epochs=0, proxies="params")
    kw = dict(repeat=1, data=data, model_fn=stand_in, device="cpu")
    build_benchmark(tmp_path / "r.db", archs, cfg, (0, 3), executor="ray", workers=2, **kw)
    build_benchmark(tmp_path / "l.db", archs, cfg, (0, 3), **kw)
    got = {}
    for name in ("r", "l"):
        with Benchmark.open(tmp_path / f"{name}.db", readonly=True) as b:
            runs = b.runs()
            got[name] = sorted(zip(runs["arch_id"], runs["seed"], runs["val_acc"], strict=True))
    assert got["r"] == got["l"] and sorted(s for _, s, _ in got["r"]) == [0, 0, 3]


def test_lr_warmup_ramps_the_first_epochs_and_keeps_old_keys(data, monkeypatch):
    import torch

    assert "lr_warmup_epochs" not in tiny_config().to_dict()  # earlier run keys unchanged
    cfg = tiny_config(epochs=4, warmup_epochs=0, proxies="none", lr_warmup_epochs=2)
    assert cfg.to_dict()["lr_warmup_epochs"] == 2
    assert config_hash(cfg.to_dict()) != config_hash(tiny_config(epochs=4).to_dict())
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    steps = 5
    ramp = [cfg.lr_at(e, i, steps) for e in range(2) for i in range(steps)]
    assert ramp == pytest.approx([cfg.lr * (k + 1) / 10 for k in range(10)])
    assert cfg.lr_at(2, 0, steps) == cfg.lr_at(2)  # after the warm-up: the schedule
    seen: list[float] = []
    arch = sample_architectures(1, seed=2)[0]
    t = Trainer(arch, cfg, 0, data, model_fn=stand_in)
    step = torch.optim.SGD.step

    def spy(self, *a, **k):
        seen.append(self.param_groups[0]["lr"])
        return step(self, *a, **k)

    monkeypatch.setattr(torch.optim.SGD, "step", spy)
    t.run(lambda r: None)
    n = t.train_feed.n_batches(cfg.batch_size)
    expected = [cfg.lr_at(e, i, n) for e in range(4) for i in range(n)]
    assert seen == pytest.approx(expected)
    assert seen[0] < seen[n - 1] < seen[2 * n - 1] == pytest.approx(cfg.lr)  # ramp to lr
    for bad in (-1, 4, 1.5, True):
        with pytest.raises(RankzcError, match="lr_warmup_epochs"):
            tiny_config(epochs=4, lr_warmup_epochs=bad)
