"""Fitted rankers as single files: fit once, save, and score new architectures later.

A ranker file (``.rzc``) is a zip archive holding

* ``manifest.json``: format name and version, rankzc version, model name and parameters,
  feature set and names, search space, proxy settings (preset, data, batch size, seed, ...),
  training summary, the model's JSON state and the SHA-256 of every other member;
* ``arrays.safetensors``: every numeric array (preprocessing state, network weights),
  written with :mod:`safetensors`;
* ``text/<name>``: text blobs such as the LightGBM model (``model_to_string``).

Loading never unpickles anything: JSON, safetensors and LightGBM's text format only. A file
that is not such an archive, fails its checksums, or was written in another format version
raises a one-line :class:`~rankzc.errors.RankzcError`.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rankzc import __version__
from rankzc.errors import RankzcError
from rankzc.ranking.base import BaseRanker
from rankzc.ranking.features import FEATURE_SETS, arch_features, feature_matrix
from rankzc.ranking.registry import RANKERS, make_ranker, ranker_class

__all__ = ["FittedRanker", "fit_ranker", "save_ranker", "load_ranker", "FORMAT", "FORMAT_VERSION"]

FORMAT = "rankzc-ranker"
FORMAT_VERSION = 1


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    return x


class FittedRanker:
    """A fitted model with what it needs to score new inputs the way it was trained.

    Attributes:
        model: the fitted :class:`~rankzc.ranking.base.BaseRanker`.
        features: ``proxies``, ``arch`` or ``all``.
        feature_names: model input columns, in order.
        proxies: the proxy columns among them.
        space: search space of the training benchmark.
        settings: proxy settings (dict) the training proxies were scored with, or None.
        info: training summary (benchmark, number of architectures, epoch, ...).
    """

    def __init__(
        self,
        model: BaseRanker,
        *,
        features: str,
        feature_names: Sequence[str],
        proxies: Sequence[str],
        space: str,
        settings: dict | None = None,
        info: dict | None = None,
        rankzc_version: str = __version__,
    ):
        self.model = model
        self.features = features
        self.feature_names = list(feature_names)
        self.proxies = list(proxies)
        self.space = space
        self.settings = settings
        self.info = dict(info or {})
        self.rankzc_version = rankzc_version

    @property
    def name(self) -> str:
        return type(self.model).name

    def __repr__(self) -> str:
        return (
            f"FittedRanker({self.name!r}, features={self.features!r}, space={self.space!r}, "
            f"{len(self.feature_names)} inputs)"
        )

    # ---------------------------------------------------------------- scoring
    def features_of(self, table: pd.DataFrame) -> pd.DataFrame:
        """Model inputs from a table of proxy columns (and ``arch``/``encoding`` strings).

        Raises:
            RankzcError: proxies (or the architecture column) the model needs are missing.
        """
        missing = [p for p in self.proxies if p not in table.columns]
        if missing:
            raise RankzcError(f"features missing from the input: {', '.join(missing)}")
        parts = [table[self.proxies].astype(float)] if self.proxies else []
        if self.features in ("arch", "all"):
            col = next((c for c in ("arch", "encoding") if c in table.columns), None)
            if col is None:
                raise RankzcError(
                    "features missing from the input: an 'arch' (or 'encoding') column"
                )
            arch_cols = [c for c in self.feature_names if c not in set(self.proxies)]
            enc = arch_features(table[col].astype(str), self.space, columns=arch_cols)
            enc.index = table.index
            parts.append(enc)
        return pd.concat(parts, axis=1).loc[:, self.feature_names]

    def score_table(self, table: pd.DataFrame) -> pd.Series:
        """Scores (higher = better) of the rows of ``table`` (see :meth:`features_of`)."""
        return pd.Series(self.model.predict(self.features_of(table)), index=table.index)

    def score(
        self, archs: Iterable[Any], settings: dict | None = None, report=None
    ) -> pd.DataFrame:
        """Score new architectures of the ranker's space, best first.

        Proxies are computed with :func:`rankzc.proxies.score_architectures` under the
        ranker's recorded proxy settings (or ``settings``). Returns a frame indexed by
        ``arch_id`` with columns ``rank``, ``score``, ``arch``, ``depth`` and the proxies.
        ``report(message)`` gets the memory estimate and per-proxy progress at the
        study's scale (see :func:`rankzc.proxies.features.iter_scores`).
        """
        from rankzc.space import SPACE, Architecture

        if self.space != SPACE:
            raise RankzcError(
                f"ranker was fitted on space {self.space!r}; only {SPACE!r} architectures "
                "can be scored from scratch (give a features table instead)"
            )
        items = [a if isinstance(a, Architecture) else _to_arch(a) for a in archs]
        if not items:
            raise RankzcError("no architectures to score")
        if self.proxies:
            settings = settings or self.settings
            if not settings:
                raise RankzcError(
                    "ranker records no proxy settings (its benchmark was imported without "
                    "them); score a features table (--features-csv) instead"
                )
            from rankzc.proxies.features import ProxySettings, score_architectures

            # compute only the proxies the model reads, with the recorded settings
            ps = ProxySettings.from_dict({**dict(settings), "proxies": list(self.proxies)})
            table = score_architectures(items, ps, report=report)
        else:
            table = pd.DataFrame(
                {"depth": [a.depth for a in items], "arch": [str(a) for a in items]},
                index=pd.Index([a.arch_id for a in items], name="arch_id"),
            )
        return rank_table(table, self.score_table(table))


def _to_arch(item: Any):
    from rankzc.space import _item_to_arch

    return _item_to_arch(item)


def rank_table(table: pd.DataFrame, scores: pd.Series) -> pd.DataFrame:
    """``table`` with ``score`` and ``rank`` (1 = best) columns, sorted best first."""
    out = table.copy()
    out.insert(0, "score", scores.to_numpy())
    out.insert(0, "rank", scores.rank(ascending=False, method="min").astype(int).to_numpy())
    return out.sort_values(["rank"], kind="stable")


# -------------------------------------------------------------------- fitting
def _store_settings(bench) -> dict | None:
    settings = bench.proxy_settings()
    if len(settings) == 1:
        return settings[0]
    meta = bench.meta.get("proxy_settings")
    if meta:
        try:
            return json.loads(meta)
        except json.JSONDecodeError:
            return None
    return settings[0] if settings else None


def fit_ranker(
    bench,
    model: str,
    *,
    features: str = "proxies",
    epoch: int = -1,
    params: dict | None = None,
) -> FittedRanker:
    """Fit ``model`` on every labelled architecture of ``bench`` (a Benchmark)."""
    if model not in RANKERS:
        raise RankzcError(f"unknown model {model!r}; choose from {', '.join(RANKERS)}")
    if features not in FEATURE_SETS:
        raise RankzcError(f"features must be one of {', '.join(FEATURE_SETS)}, got {features!r}")
    fs = feature_matrix(bench, features, epoch=epoch)
    est = make_ranker(model, **(params or {})).fit(fs.X, fs.y.to_numpy(dtype=float))
    info = {
        "benchmark": str(bench.path),
        "dataset": bench.meta.get("dataset"),
        "source": bench.meta.get("source"),
        "n_architectures": int(len(fs.y)),
        "epoch": epoch,
        "train_spearman": est.score(fs.X, fs.y.to_numpy(dtype=float)),
    }
    return FittedRanker(
        est,
        features=features,
        feature_names=list(fs.X.columns),
        proxies=fs.proxies,
        space=fs.space,
        settings=_store_settings(bench) if fs.proxies else None,
        info=info,
    )


# ---------------------------------------------------------------- persistence
def save_ranker(fitted: FittedRanker, path: str | Path) -> Path:
    """Write ``fitted`` to ``path`` (a zip; see the module docstring)."""
    from safetensors.numpy import save as st_save

    path = Path(path)
    if not path.parent.exists():
        raise RankzcError(f"{path}: directory {path.parent} does not exist")
    config, arrays, texts = fitted.model._export()
    arrays = {k: np.ascontiguousarray(v, dtype=np.float64) for k, v in arrays.items()}
    blob = st_save(arrays) if arrays else b""
    members = {"arrays.safetensors": blob}
    members.update({f"text/{k}": v.encode() for k, v in texts.items()})
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "rankzc_version": __version__,
        "model": fitted.name,
        "params": _jsonable(fitted.model.get_params()),
        "features": fitted.features,
        "feature_names": fitted.feature_names,
        "proxies": fitted.proxies,
        "space": fitted.space,
        "settings": _jsonable(fitted.settings),
        "info": _jsonable(fitted.info),
        "state": _jsonable(config),
        "sha256": {k: _sha(v) for k, v in members.items()},
    }
    tmp = path.with_name(f".{path.name}.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", json.dumps(manifest, indent=1))
        for k, v in members.items():
            zf.writestr(k, v)
    tmp.replace(path)
    return path


def load_ranker(path: str | Path) -> FittedRanker:
    """Read a ranker written by :func:`save_ranker` (no pickle is ever loaded).

    Raises:
        FileNotFoundError: no such file.
        RankzcError: not a ranker file, corrupted, or written in another format version.
    """
    from safetensors.numpy import load as st_load

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such ranker file")
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            if "manifest.json" not in names:
                raise RankzcError(f"{path}: not a rankzc ranker (no manifest.json)")
            manifest = json.loads(zf.read("manifest.json"))
            if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
                raise RankzcError(f"{path}: not a rankzc ranker (manifest format is not {FORMAT})")
            version = manifest.get("format_version")
            if version != FORMAT_VERSION:
                raise RankzcError(
                    f"{path}: ranker format version {version} (rankzc "
                    f"{manifest.get('rankzc_version')}) is incompatible with this rankzc "
                    f"{__version__} (reads version {FORMAT_VERSION}); refit it"
                )
            members = {k: zf.read(k) for k in manifest["sha256"]}
    except zipfile.BadZipFile as err:
        raise RankzcError(f"{path}: not a rankzc ranker or corrupted ({err})") from None
    except (KeyError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RankzcError(f"{path}: corrupted ranker file ({type(err).__name__}: {err})") from None
    for k, data in members.items():
        if _sha(data) != manifest["sha256"][k]:
            raise RankzcError(f"{path}: corrupted ranker file (checksum of {k} does not match)")
    try:
        blob = members["arrays.safetensors"]
        arrays = st_load(blob) if blob else {}
        texts = {k[5:]: v.decode() for k, v in members.items() if k.startswith("text/")}
        cls = ranker_class(manifest["model"])
        params = dict(manifest["params"])
        model = cls(**params)
        model.feature_names_in_ = list(manifest["feature_names"])
        model._import(manifest["state"], arrays, texts)
    except RankzcError:
        raise
    except Exception as err:  # noqa: BLE001 - any decoding failure is a corrupted file
        raise RankzcError(f"{path}: corrupted ranker file ({type(err).__name__}: {err})") from None
    return FittedRanker(
        model,
        features=manifest["features"],
        feature_names=manifest["feature_names"],
        proxies=manifest["proxies"],
        space=manifest["space"],
        settings=manifest.get("settings"),
        info=manifest.get("info"),
        rankzc_version=manifest.get("rankzc_version", "?"),
    )
