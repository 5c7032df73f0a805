"""Training pipeline: recipes, trainer, checkpoints, resume, failures (small stand-in models)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from rankzc.errors import RankzcError
from rankzc.space import sample_architectures
from rankzc.store import Benchmark
from rankzc.training import (
    EpochRecord,
    Feeder,
    TrainConfig,
    TrainData,
    Trainer,
    build_benchmark,
    checkpoint_dir,
    scaled_milestones,
)
from rankzc.training.config import resolve_proxies
from rankzc.training.runner import check_executor


class PoolNet(nn.Module):
    """Stand-in model: BatchNorm + pooled features + a linear classifier."""

    def __init__(self, depth: int, classes: int, bad: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(3, depth, 1)
        self.bn = nn.BatchNorm2d(depth)
        self.fc = nn.Linear(depth, classes)
        self.num_classes = classes
        self.bad = bad

    def forward(self, x):
        n, c, t, v, m = x.shape
        x = x.permute(0, 4, 1, 2, 3).reshape(n * m, c, t, v)
        h = torch.relu(self.bn(self.conv(x))).mean((2, 3)).view(n, m, -1).mean(1)
        out = self.fc(h)
        return out * float("nan") if self.bad else out


def stand_in(arch, config, data):
    return PoolNet(4 + arch.depth, data.num_classes)


def make_data(n_train=48, n_val=24, classes=3, frames=6, seed=0) -> TrainData:
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n_train + n_val,), generator=g)
    x = torch.randn(n_train + n_val, 3, frames, 25, 2, generator=g) + y.view(-1, 1, 1, 1, 1)
    return TrainData(x[:n_train], y[:n_train], x[n_train:], y[n_train:], classes, "test")


@pytest.fixture(scope="module")
def data() -> TrainData:
    return make_data()


def tiny_config(**kw) -> TrainConfig:
    kw.setdefault("epochs", 3)
    kw.setdefault("warmup_epochs", 1)
    kw.setdefault("proxies", "params,synflow")
    return TrainConfig.for_preset("tiny", batch_size=8, **kw)


# ------------------------------------------------------------------- recipes
def test_ntu60_recipe_is_the_study():
    cfg = TrainConfig.for_preset("ntu60")
    assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.momentum, cfg.nesterov) == (
        70,
        40,
        0.1,
        0.9,
        True,
    )
    assert cfg.weight_decay == pytest.approx(6e-4)
    assert cfg.milestones == (30, 45, 60)
    assert cfg.lr_at(29) == pytest.approx(0.1) and cfg.lr_at(30) == pytest.approx(0.01)
    assert cfg.lr_at(69) == pytest.approx(1e-4)
    assert len(cfg.proxies) == 14 and cfg.proxy_batch_size == 20


def test_milestones_scale_with_epochs():
    assert scaled_milestones(70) == (30, 45, 60)
    assert scaled_milestones(14) == (6, 9, 12)
    assert scaled_milestones(1) == ()
    assert all(0 < m < 5 for m in scaled_milestones(5))


def test_config_roundtrip_and_key_excludes_device():
    cfg = tiny_config()
    d = cfg.to_dict()
    assert TrainConfig.from_dict(d) == cfg
    assert not {"device", "workers", "executor"} & set(d)
    assert d["data"].startswith("synthetic:n=")  # canonical, every option spelled out
    assert (
        TrainConfig.for_preset("tiny", data="synthetic:n=120").data
        == TrainConfig.for_preset("tiny").data
    )


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(epochs=0), "--epochs"),
        (dict(epochs=2, warmup_epochs=3), "--warmup-epochs"),
        (dict(precision="fp16"), "--precision"),
        (dict(proxies="synflow,nope"), "--proxies"),
        (dict(data="synthetic:bogus=1"), "bogus"),
    ],
)
def test_bad_config_is_refused(kw, match):
    with pytest.raises(RankzcError, match=match):
        TrainConfig.for_preset("tiny", **kw)
    with pytest.raises(RankzcError, match="--preset"):
        TrainConfig.for_preset("huge")


def test_resolve_proxies():
    assert resolve_proxies("none") == ()
    assert len(resolve_proxies("all")) == 14
    assert resolve_proxies("snip, snip,params") == ("snip", "params")


def test_ray_missing_gives_one_line_install_hint(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(RankzcError, match=r"pip install 'rankzc\[ray\]'"):
        check_executor("ray", 1, None)


# -------------------------------------------------------------------- feeder
def test_feeder_covers_every_sample_once_per_epoch(data):
    feed = Feeder(data.x_train, data.y_train, torch.device("cpu"))
    g = torch.Generator().manual_seed(0)
    seen = torch.cat([y for _, y in feed.batches(10, g)])
    assert len(seen) == 48 and feed.n_batches(10) == 5
    assert sorted(seen.tolist()) == sorted(data.y_train.tolist())
    assert torch.equal(torch.cat([y for _, y in feed.batches(10)]), data.y_train)


# ------------------------------------------------------------------- trainer
def run(arch, cfg, data, ckpt=None, on_record=None):
    recs: list[EpochRecord] = []
    trainer = Trainer(arch, cfg, 3, data, checkpoint=ckpt, model_fn=stand_in)
    result = trainer.run(on_record or recs.append)
    return result, recs


def test_trainer_records_epochs_and_warmup_proxies(data):
    arch = sample_architectures(1, seed=1)[0]
    cfg = tiny_config(epochs=3, warmup_epochs=2)
    result, recs = run(arch, cfg, data)
    assert [r.epoch for r in recs] == [-1, 0, 1, 2]
    assert [bool(r.proxies) for r in recs] == [True, True, True, False]
    assert set(recs[0].proxies) == {"params", "synflow"}
    assert recs[0].val_acc is None and all(0 <= r.val_acc <= 1 for r in recs[1:])
    assert result.status == "done" and result.val_acc == recs[-1].val_acc
    assert result.train_seconds == pytest.approx(sum(r.seconds for r in recs[1:]))
    # the data are separable: training must beat chance clearly
    assert recs[-1].val_acc > 0.5
    # same seed, same everything
    again, recs2 = run(arch, cfg, data)
    assert [r.val_loss for r in recs2] == [r.val_loss for r in recs]


class Crash(BaseException):
    """Stands for a SIGKILL between the checkpoint and the store commit."""


@pytest.mark.parametrize("crash_at", [-1, 0, 2])
def test_resume_from_checkpoint_is_bit_for_bit(tmp_path, data, crash_at):
    arch = sample_architectures(1, seed=2)[0]
    cfg = tiny_config(epochs=3)
    ref_result, ref = run(arch, cfg, data)
    ckpt = tmp_path / "run.pt"
    committed: list[EpochRecord] = []

    def dies(rec):
        if rec.epoch == crash_at:
            raise Crash
        committed.append(rec)

    with pytest.raises(Crash):
        run(arch, cfg, data, ckpt, dies)
    assert ckpt.exists()
    state = torch.load(ckpt, weights_only=True)
    assert state["epoch"] == crash_at  # the checkpoint was written before the commit
    replayed: list[EpochRecord] = []
    result, _ = run(arch, cfg, data, ckpt, replayed.append)
    # the resumed run replays what the store may lack, then continues
    assert [r.epoch for r in replayed][: crash_at + 2] == list(range(-1, crash_at + 1))
    assert result.val_acc == ref_result.val_acc
    final = {r.epoch: r for r in replayed}
    for r in ref:
        assert final[r.epoch].val_loss == r.val_loss
        assert final[r.epoch].train_loss == r.train_loss
        assert final[r.epoch].proxies.keys() == r.proxies.keys()


def test_foreign_or_torn_checkpoint_is_ignored(tmp_path, data):
    arch, other = sample_architectures(2, seed=3)
    cfg = tiny_config(epochs=1)
    ckpt = tmp_path / "c.pt"
    run(other, cfg, data, ckpt)  # a checkpoint of another run at this path
    ref, _ = run(arch, cfg, data)
    got, recs = run(arch, cfg, data, ckpt)
    assert got.val_acc == ref.val_acc and recs[0].epoch == -1
    ckpt.write_bytes(b"torn")
    got, _ = run(arch, cfg, data, ckpt)
    assert got.val_acc == ref.val_acc


# ------------------------------------------------------------------ builder
def test_build_records_everything_once_and_resumes(tmp_path, data):
    archs = sample_architectures(4, seed=4)
    cfg = tiny_config(epochs=2, warmup_epochs=1)
    out = tmp_path / "b.db"
    s = build_benchmark(out, archs, cfg, 7, data=data, model_fn=stand_in, device="cpu")
    assert (s.done, s.failed, s.skipped_done) == (4, 0, 0)
    assert not checkpoint_dir(out).exists()  # checkpoints are removed after each run
    with Benchmark.open(out) as b:
        labels = b.labels()
        epochs = b.epochs()
        runs = b.runs()
        assert set(labels.index) == {a.arch_id for a in archs}
        assert (labels["n_runs"] == 1).all()
        assert len(epochs) == 8 and sorted(set(epochs["epoch"])) == [0, 1]
        last = epochs[epochs["epoch"] == 1].set_index("arch_id")["val_acc"]
        assert (labels["val_acc"] == last.loc[labels.index]).all()  # label = last epoch
        assert (
            runs["seed"].eq(7).all() and runs["config"].map(lambda c: c["preset"]).eq("tiny").all()
        )
        assert "device" not in runs["config"].iloc[0]
        assert sorted(b.proxy_epochs()) == [-1, 0]
        assert b.features(-1).shape == (4, 2) and b.features(0).shape == (4, 2)
        settings = b.proxy_settings()
        assert settings and settings[0]["batch_size"] == 20
        counts = b.counts()
    again = build_benchmark(out, archs, cfg, 7, data=data, model_fn=stand_in, device="cpu")
    assert (again.done, again.skipped_done) == (0, 4)
    with Benchmark.open(out) as b:
        assert b.counts() == counts
    # another seed is another run of the same architectures
    build_benchmark(out, archs[:1], cfg, 8, data=data, model_fn=stand_in, device="cpu")
    with Benchmark.open(out) as b:
        assert b.counts()["runs"] == 5 and b.labels().loc[archs[0].arch_id, "n_runs"] == 2


def test_temporary_file_left_by_a_kill_is_cleaned_up(tmp_path, data):
    archs = sample_architectures(1, seed=4)
    out = tmp_path / "b.db"
    ckdir = checkpoint_dir(out)
    ckdir.mkdir()
    (ckdir / ".x.pt.abc.tmp").write_bytes(b"torn")  # a kill inside atomic_save
    s = build_benchmark(
        out, archs, tiny_config(epochs=1), 7, data=data, model_fn=stand_in, device="cpu"
    )
    assert s.done == 1
    assert not ckdir.exists()


def test_failing_architecture_is_recorded_and_the_build_goes_on(tmp_path, data):
    archs = sample_architectures(3, seed=5)
    bad = archs[1].arch_id

    def model_fn(arch, config, d):
        return PoolNet(4, d.num_classes, bad=arch.arch_id == bad)

    cfg = tiny_config(epochs=2, proxies="params")
    out = tmp_path / "f.db"
    s = build_benchmark(out, archs, cfg, 0, data=data, model_fn=model_fn, device="cpu")
    assert (s.done, s.failed) == (2, 1) and "non-finite" in s.errors[bad]
    with Benchmark.open(out) as b:
        runs = b.runs().set_index("arch_id")
        assert runs.loc[bad, "status"] == "failed"
        assert "non-finite training loss" in runs.loc[bad, "error"]
        assert bad not in b.labels().index and len(b.labels()) == 2
    # not retried on resume ...
    s2 = build_benchmark(out, archs, cfg, 0, data=data, model_fn=model_fn, device="cpu")
    assert (s2.trained, s2.skipped_failed, s2.skipped_done) == (0, 1, 2)
    # ... unless asked; a fixed model then succeeds
    s3 = build_benchmark(
        out, archs, cfg, 0, data=data, model_fn=stand_in, device="cpu", retry_failed=True
    )
    assert (s3.done, s3.failed) == (1, 0)
    with Benchmark.open(out) as b:
        assert b.counts()["failed"] == 0 and len(b.labels()) == 3


def test_exception_and_huge_lr_fail_cleanly(tmp_path, data):
    archs = sample_architectures(2, seed=6)

    def model_fn(arch, config, d):
        if arch.arch_id == archs[0].arch_id:
            raise MemoryError("out of memory (simulated)")
        return stand_in(arch, config, d)

    out = tmp_path / "e.db"
    s = build_benchmark(
        out, archs, tiny_config(epochs=1, proxies="none"), 0, data=data, model_fn=model_fn
    )
    assert s.failed == 1 and s.errors[archs[0].arch_id].startswith("MemoryError")
    out2 = tmp_path / "lr.db"
    cfg = TrainConfig.for_preset("tiny", epochs=2, proxies="none", batch_size=8, lr=1e30)
    s = build_benchmark(out2, archs[1:], cfg, 0, data=data, model_fn=stand_in)
    assert s.failed == 1 and "non-finite" in next(iter(s.errors.values()))


def test_bad_output_refused_before_training(tmp_path, data):
    archs = sample_architectures(1, seed=0)
    calls = []

    def model_fn(*a):
        calls.append(1)
        return stand_in(*a)

    cfg = tiny_config(epochs=1)
    with pytest.raises(RankzcError, match="does not exist"):
        build_benchmark(tmp_path / "no" / "b.db", archs, cfg, data=data, model_fn=model_fn)
    (tmp_path / "x.db").write_text("not a store")
    with pytest.raises(RankzcError, match="not a rankzc benchmark"):
        build_benchmark(tmp_path / "x.db", archs, cfg, data=data, model_fn=model_fn)
    with pytest.raises(RankzcError, match="twice"):
        build_benchmark(tmp_path / "d.db", archs * 2, cfg, data=data, model_fn=model_fn)
    assert not calls


def test_concurrent_build_is_refused(tmp_path, data):
    from rankzc.training.runner import build_lock

    out = tmp_path / "l.db"
    with build_lock(out), pytest.raises(RankzcError, match="another build"):
        build_benchmark(out, sample_architectures(1), tiny_config(epochs=1), data=data)


def test_bf16_trains(data):
    arch = sample_architectures(1, seed=7)[0]
    cfg = tiny_config(epochs=2, precision="bf16", proxies="none")
    result, recs = run(arch, cfg, data)
    assert result.status == "done" and math.isfinite(recs[-1].val_loss)


def test_progress_bars_do_not_change_results(tmp_path, data):
    archs = sample_architectures(2, seed=8)
    cfg = tiny_config(epochs=1, proxies="none")
    a = build_benchmark(tmp_path / "p.db", archs, cfg, data=data, model_fn=stand_in, progress=True)
    b = build_benchmark(tmp_path / "q.db", archs, cfg, data=data, model_fn=stand_in, progress=False)
    assert a.done == b.done == 2
    with Benchmark.open(tmp_path / "p.db") as p, Benchmark.open(tmp_path / "q.db") as q:
        assert p.labels()["val_acc"].equals(q.labels()["val_acc"])


@pytest.mark.slow  # 10-13 s: the default suite stays under 5 minutes
def test_ray_executor_streams_epochs_and_records_failures(tmp_path, data):
    pytest.importorskip("ray")
    archs = sample_architectures(3, seed=9)
    bad = archs[0].arch_id

    def model_fn(arch, config, d):  # a closure: shipped to the workers by value
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(3, d.num_classes)
                self.num_classes = d.num_classes

            def forward(self, x):
                out = self.fc(x.mean((2, 3, 4)))
                return out * float("nan") if arch.arch_id == bad else out

        return Net()

    cfg = tiny_config(epochs=2, proxies="params")
    out = tmp_path / "ray.db"
    s = build_benchmark(
        out, archs, cfg, 0, data=data, model_fn=model_fn, executor="ray", workers=2, device="cpu"
    )
    assert (s.done, s.failed) == (2, 1) and "non-finite" in s.errors[bad]
    with Benchmark.open(out) as b:
        assert len(b.epochs()) == 4  # two epochs of each good architecture, written by the driver
        assert b.runs().set_index("arch_id").loc[bad, "status"] == "failed"
        assert sorted(b.proxy_epochs()) == [-1, 0]
    local = tmp_path / "local.db"
    build_benchmark(local, archs, cfg, 0, data=data, model_fn=model_fn, device="cpu")
    with Benchmark.open(out) as r, Benchmark.open(local) as loc:
        assert r.labels()["val_acc"].equals(loc.labels()["val_acc"])
