"""Fitted rankers as single files: fit once, save, and score new architectures later.

A ranker file (``.rzc``) is a zip archive holding

* ``manifest.json``: format name and version, rankzc version, model name and parameters,
  feature set and names, search space, proxy settings (preset, data, batch size, seed, ...),
  training summary, the model's JSON state and the SHA-256 of every other member
  (:data:`MANIFEST_SCHEMA` lists every key and its type);
* ``manifest.sha256``: the SHA-256 of ``manifest.json`` itself, so that an edited manifest
  (say, ``feature_names``) is refused instead of scoring wrong;
* ``arrays.safetensors``: every numeric array (preprocessing state, network weights),
  written with :mod:`safetensors`;
* ``text/<name>``: text blobs such as the LightGBM model (``model_to_string``).

Loading never unpickles anything: JSON, safetensors and LightGBM's text format only, each
checked before use (sizes bounded, LightGBM text parsed and rebuilt, see
:func:`load_ranker`). A file that is not such an archive, breaks the schema, fails a
checksum, or was written in another format version raises a one-line
:class:`~rankzc.errors.RankzcError`; a damaged or hostile file reads ``<path>: corrupted
ranker file (<reason>)``.
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rankzc import __version__
from rankzc.atomicfile import atomic_output
from rankzc.errors import RankzcError, describe_error
from rankzc.jsonfile import jsonable
from rankzc.ranking.base import BaseRanker
from rankzc.ranking.features import (
    FEATURE_SETS,
    check_proxy_subset,
    encoding_features,
    feature_matrix,
)
from rankzc.ranking.registry import RANKERS, current_params, make_ranker, ranker_class

__all__ = ["FittedRanker", "fit_ranker", "save_ranker", "load_ranker", "FORMAT", "FORMAT_VERSION"]

FORMAT = "rankzc-ranker"
FORMAT_VERSION = 2  # 2: manifest.sha256 holds the manifest's own checksum
MANIFEST_SUM = "manifest.sha256"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


#: most labelled rows a ranker file fingerprints (an evenly spaced sample beyond that)
MAX_FINGERPRINTS = 50_000


def row_fingerprints(encodings: Iterable[Any], labels: Iterable[float]) -> list[str]:
    """Short content hashes of labelled rows: canonical encoding and label (6 decimals).

    A ranker fitted on labels records them (``info["label_rows"]``) so that ``rankzc
    search --benchmark`` can tell a store holding the same labelled architectures (by
    content, whatever the file) and refuse to let the ranker read the answers.
    """
    out = []
    for enc, y in zip(encodings, labels, strict=True):
        y = float(y)
        if not np.isfinite(y):
            continue
        out.append(_sha(f"{enc}|{y:.6f}".encode())[:12])
    return out


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
        parts = []
        if self.proxies:
            try:
                parts.append(table[self.proxies].astype(float))
            except (TypeError, ValueError):  # a string cell: name the column, no traceback
                bad = next(
                    (
                        c
                        for c in self.proxies
                        if pd.to_numeric(table[c], errors="coerce").isna().sum()
                        > table[c].isna().sum()
                    ),
                    self.proxies[0],
                )
                raise RankzcError(
                    f"feature column {bad!r} holds a value that is not a number"
                ) from None
        if self.features in ("arch", "graph", "all"):
            col = next((c for c in ("arch", "encoding") if c in table.columns), None)
            if col is None:
                raise RankzcError(
                    "features missing from the input: an 'arch' (or 'encoding') column"
                )
            arch_cols = [c for c in self.feature_names if c not in set(self.proxies)]
            enc = encoding_features(
                table[col].astype(str), self.space, self.features, columns=arch_cols
            )
            enc.index = table.index
            parts.append(enc)
        out = pd.concat(parts, axis=1).loc[:, self.feature_names]
        if self.info.get("normalise") == "rank":  # transfer: ranks within the scored set
            from rankzc.ranking.transfer import rank_normalise

            out = rank_normalise(out)
        return out

    def settings_mismatch(self, settings: dict | None) -> dict[str, tuple[Any, Any]]:
        """``{key: (ranker's value, given value)}`` for the proxy settings that differ.

        Compared: every key both record, except those that do not change a score's meaning
        (:data:`SETTINGS_NOT_COMPARED`). Empty when either side records no settings.
        """
        if not self.settings or not isinstance(settings, dict):
            return {}
        keys = sorted((set(self.settings) & set(settings)) - SETTINGS_NOT_COMPARED)
        return {
            k: (self.settings[k], settings[k])
            for k in keys
            if jsonable(self.settings[k]) != jsonable(settings[k])
        }

    def check_settings(
        self, settings: dict | None, source: str, ranker: str = "the ranker", *, warn=None
    ) -> None:
        """Refuse features computed under other proxy settings than the ranker's.

        Args:
            settings: the settings recorded with the features (None: unknown, not checked).
            source: the features' file, named in the message.
            ranker: the ranker's file, named in the message.
            warn: when given, called with the message instead of raising (``--allow-mismatch``).

        Raises:
            RankzcError: one line naming both files and the differing settings.
        """
        diff = self.settings_mismatch(settings)
        if not diff:
            return
        given = ", ".join(f"{k}={v[1]!r}" for k, v in diff.items())
        wanted = ", ".join(f"{k}={v[0]!r}" for k, v in diff.items())
        msg = (
            f"{source}: features computed with {given}, but {ranker} was fitted on features "
            f"computed with {wanted}; recompute them with the ranker's settings "
            "(or pass --allow-mismatch)"
        )
        if warn is None:
            raise RankzcError(msg)
        warn(msg)

    def score_table(self, table: pd.DataFrame) -> pd.Series:
        """Scores (higher = better) of the rows of ``table`` (see :meth:`features_of`).

        Raises:
            RankzcError: also when the model fails on the table in any other way (a ranker
                file whose inputs or state do not fit what it scores), in one line.
        """
        try:
            return pd.Series(self.model.predict(self.features_of(table)), index=table.index)
        except RankzcError:
            raise
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as err:
            raise RankzcError(
                f"the {self.name} ranker cannot score this table ({describe_error(err)}); "
                "is the ranker file damaged?"
            ) from None

    def score(
        self,
        archs: Iterable[Any],
        settings: dict | None = None,
        *,
        data_given: bool = False,
        quiet: bool = False,
        report=None,
    ) -> pd.DataFrame:
        """Score new architectures of the ranker's space, best first.

        Proxies are computed with :func:`rankzc.proxies.score_architectures` under the
        ranker's recorded proxy settings (or ``settings``), with progress on stderr
        (:mod:`rankzc.progress`) unless ``quiet``. Returns a frame indexed by
        ``arch_id`` with columns ``rank``, ``score``, ``arch``, ``depth`` and the proxies.
        ``report(message)`` gets the memory estimate and per-proxy progress at the
        study's scale (see :func:`rankzc.proxies.features.iter_scores`).

        The data is the user's choice, not the ranker file's: data that comes from the
        recorded settings (``settings`` None, or its ``data`` equal to the recorded one,
        unless ``data_given``: the user named it, ``score --data``) may not name a path
        and is bounded in size (:func:`rankzc.ranking.budget.check_ranker_data`).
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
            from_ranker = settings is None
            settings = settings or self.settings
            if not settings:
                raise RankzcError(
                    "ranker records no proxy settings (its benchmark was imported without "
                    "them; a study store imported by this rankzc records them: re-import it "
                    "and refit); score a features table (--features-csv) instead"
                )
            data = dict(settings).get("data", "synthetic")
            recorded = (self.settings or {}).get("data", "synthetic")
            if not data_given and (from_ranker or data == recorded):
                from rankzc.ranking.budget import check_ranker_data

                check_ranker_data(data)  # before any work: a path or an oversized set
            from rankzc.proxies.features import ProxySettings, score_architectures

            # compute only the proxies the model reads, with the recorded settings
            ps = ProxySettings.from_dict({**dict(settings), "proxies": list(self.proxies)})
            from rankzc.progress import Progress
            from rankzc.proxies.features import check_memory

            check_memory(items, ps)  # refuse before any work or progress output
            with Progress(quiet=quiet) as bar:
                task = bar.add(f"scoring {len(items)} architectures", total=len(items))
                table = score_architectures(items, ps, progress=bar.callback(task), report=report)
        else:
            table = pd.DataFrame(
                {"depth": [a.depth for a in items], "arch": [str(a) for a in items]},
                index=pd.Index([a.arch_id for a in items], name="arch_id"),
            )
        return rank_table(table, self.score_table(table))


#: proxy-settings keys that do not change what a score means (not compared)
SETTINGS_NOT_COMPARED = frozenset({"device", "proxies", "rankzc_version", "source"})


#: recorded proxy settings (a ranker's manifest, a features sidecar): field -> (types,
#: lowest, highest) for the fields that hold them; others are compared, never used
SETTINGS_FIELDS: dict[str, tuple[tuple[type, ...], int | None, int | None]] = {
    "preset": ((str,), None, None),
    "data": ((str,), None, None),
    "batch_size": ((int,), 2, 2**31 - 1),
    "seed": ((int,), 0, 2**63 - 1),
    "device": ((str,), None, None),
    "resample": ((bool,), None, None),
    "definitions": ((int,), 0, 2**31 - 1),
    "proxies": ((list,), None, None),
    "options": ((dict,), None, None),
}


def check_settings_fields(settings: dict, where: str) -> None:
    """Refuse recorded proxy settings whose fields have the wrong type or range
    (:data:`SETTINGS_FIELDS`): one line naming ``where`` and the field."""
    for key, (types, low, high) in SETTINGS_FIELDS.items():
        if key not in settings:
            continue
        value = settings[key]
        if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
            raise RankzcError(
                f"{where} field {key!r} must be {_json_kind(types[0]())}, not {_json_kind(value)}"
            )
        if (low is not None and value < low) or (high is not None and value > high):
            raise RankzcError(f"{where} field {key!r} must lie in {low}..{high}, got {value}")
        if key == "proxies" and not all(isinstance(v, str) for v in value):
            raise RankzcError(f"{where} field 'proxies' must be a list of strings")
        if key == "options" and not all(
            v is None or isinstance(v, (str, bool, int)) or (isinstance(v, float) and v == v)
            for v in value.values()
        ):
            raise RankzcError(f"{where} field 'options' must map names to plain values")


def recorded_settings(table_path: str | Path) -> dict:
    """Proxy settings recorded beside a features table (its sidecar ``<table>.json``).

    ``rankzc features`` writes them there (``settings``); a table exported from a store
    (``rankzc export``) records the store's settings too (``settings``; older exports only
    ``benchmark.proxy_settings``).

    Raises:
        RankzcError: one line naming the sidecar when it is missing, not JSON, not an
            object, or holds no settings object (or one with a field of the wrong type).
    """
    from rankzc.jsonfile import read_json

    sidecar = Path(str(table_path) + ".json")
    if not sidecar.is_file():
        raise RankzcError(
            f"{table_path}: no settings sidecar {sidecar.name} beside it (rankzc features "
            "and rankzc export write one)"
        )
    data = read_json(sidecar)
    if not isinstance(data, dict):
        raise RankzcError(f"{sidecar}: not a JSON object but {_json_kind(data)}")
    if "settings" in data:
        raw, field = data["settings"], "'settings'"
    else:
        meta = data.get("benchmark")
        if not isinstance(meta, dict) or "proxy_settings" not in meta:
            raise RankzcError(
                f"{sidecar}: records no proxy settings (neither 'settings' nor "
                "'benchmark.proxy_settings')"
            )
        raw, field = meta["proxy_settings"], "'benchmark.proxy_settings'"
        if isinstance(raw, str):
            from rankzc.jsonfile import MAX_JSON_DEPTH, check_depth

            try:
                raw = json.loads(raw)
            except (RecursionError, ValueError):
                raise RankzcError(f"{sidecar}: {field} is not valid JSON text") from None
            check_depth(raw, str(sidecar), MAX_JSON_DEPTH)
    if not isinstance(raw, dict) or not raw:
        what = "an empty object" if raw == {} else _json_kind(raw)
        raise RankzcError(f"{sidecar}: {field} must be a non-empty object, not {what}")
    check_settings_fields(raw, f"{sidecar}: {field}")
    return raw


def check_features_settings(
    fitted: FittedRanker, table_path: str | Path, ranker: str, *, warn=None
) -> None:
    """Refuse a features table whose recorded settings differ from the ranker's, or that
    records none: a missing or invalid sidecar is an error too (never a silently skipped
    check); ``warn`` (``--allow-mismatch``) turns either into a warning.

    Nothing is compared when the ranker reads no proxies or records no settings."""
    if not fitted.proxies or not fitted.settings:
        return
    try:
        settings = recorded_settings(table_path)
    except RankzcError as err:
        msg = (
            f"{err}; the features' proxy settings cannot be compared with those {ranker} "
            "was fitted on (or pass --allow-mismatch)"
        )
        if warn is None:
            raise RankzcError(msg) from None
        warn(msg)
        return
    fitted.check_settings(settings, str(table_path), ranker, warn=warn)


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    names = {int: "an integer", float: "a number", str: "a string"}
    names.update({list: "a list", dict: "an object"})
    return names.get(type(value), type(value).__name__)


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


def ranker_settings(settings: dict | None, proxies: Sequence[str]) -> dict | None:
    """The store's proxy settings narrowed to the ``proxies`` a ranker reads (None when it
    reads none or the store records no settings)."""
    if not proxies or not settings:
        return None
    return {**settings, "proxies": list(proxies)}


def fit_ranker(
    bench,
    model: str,
    *,
    features: str = "proxies",
    epoch: int = -1,
    params: dict | None = None,
    transfer_to=None,
    proxies: Sequence[str] | None = None,
) -> FittedRanker:
    """Fit ``model`` on every labelled architecture of ``bench`` (a Benchmark).

    ``transfer_to`` (a Benchmark to be ranked later): keep only the feature columns it also
    has and rank-normalise them (:mod:`rankzc.ranking.transfer`); scoring then
    rank-normalises the scored set the same way.

    ``proxies``: the proxy inputs (default: every proxy the store has scores for); each
    must have scores in the store (:func:`~rankzc.ranking.features.check_proxy_subset`).
    The ranker records the store's proxy settings narrowed to the proxies it reads.
    """
    if model not in RANKERS:
        raise RankzcError(f"unknown model {model!r}; choose from {', '.join(RANKERS)}")
    if features not in FEATURE_SETS:
        raise RankzcError(f"features must be one of {', '.join(FEATURE_SETS)}, got {features!r}")
    # a label-free ranker (rankagg) fits on every architecture, labelled or not
    label_free = not getattr(ranker_class(model), "needs_labels", True)
    if proxies is not None:
        if features not in ("proxies", "all"):
            raise RankzcError(f"--proxies: the {features} features read no proxies")
        proxies = check_proxy_subset(bench, proxies, epoch)
    fs = feature_matrix(bench, features, epoch=epoch, proxies=proxies, labelled_only=not label_free)
    if proxies is not None and len(fs.proxies) < len(proxies):
        lost = [p for p in proxies if p not in set(fs.proxies)]
        raise RankzcError(
            f"--proxies: {bench.path} has no scores for {', '.join(lost)} among the "
            "architectures the ranker is fitted on"
        )
    if transfer_to is not None:
        from rankzc.ranking.transfer import align_columns, rank_normalise

        other = feature_matrix(transfer_to, features, epoch=epoch, labelled_only=False)
        cols = align_columns(list(fs.X.columns), list(other.X.columns))
        fs.X = rank_normalise(fs.X[cols])
        fs.proxies = [p for p in fs.proxies if p in set(cols)]
    if label_free:
        est = make_ranker(model, **(params or {})).fit(fs.X)
        y = bench.labels()["val_acc"].reindex(fs.X.index).to_numpy(dtype=float)
        ok = np.isfinite(y)
        train_rho = est.score(fs.X[ok], y[ok]) if ok.sum() > 2 else None
    else:
        est = make_ranker(model, **(params or {})).fit(fs.X, fs.y.to_numpy(dtype=float))
        train_rho = est.score(fs.X, fs.y.to_numpy(dtype=float))
    info = {
        "benchmark": str(bench.path),
        "dataset": bench.meta.get("dataset"),
        "source": bench.meta.get("source"),
        "n_architectures": int(len(fs.X)),
        "epoch": epoch,
        "train_spearman": train_rho,
    }
    if not label_free:  # what the labels it read were, by content (search's leak check)
        enc = bench.architectures()["encoding"].astype(str).reindex(fs.X.index)
        rows = sorted(set(row_fingerprints(enc, fs.y.to_numpy(dtype=float))))
        if len(rows) > MAX_FINGERPRINTS:
            rows = rows[:: -(-len(rows) // MAX_FINGERPRINTS)]
        info["label_rows"] = rows
    if transfer_to is not None:
        info["normalise"] = "rank"
        info["transfer_to"] = str(transfer_to.path)
    return FittedRanker(
        est,
        features=features,
        feature_names=list(fs.X.columns),
        proxies=fs.proxies,
        space=fs.space,
        settings=ranker_settings(_store_settings(bench), fs.proxies),
        info=info,
    )


# ---------------------------------------------------------------- persistence
#: what a ranker file may make the loader read (bytes); larger files are refused unread
MAX_FILE_BYTES = 512 * 2**20
MAX_MANIFEST_BYTES = 8 * 2**20
MAX_MEMBER_BYTES = 256 * 2**20
MAX_MEMBERS = 64
_MEMBER_NAME = re.compile(r"arrays\.safetensors|text/[A-Za-z0-9_.-]{1,64}")
_HEX64 = re.compile(r"[0-9a-f]{64}")


def _str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _dict_or_none(value: Any) -> bool:
    return value is None or isinstance(value, dict)


#: the manifest schema: key -> (rule, description); every key is required, no other allowed
MANIFEST_SCHEMA: dict[str, tuple[Any, str]] = {
    "format": (lambda v: v == FORMAT, f"the string {FORMAT!r}"),
    "format_version": (lambda v: type(v) is int, "an integer"),
    "rankzc_version": (lambda v: isinstance(v, str), "a string"),
    "model": (lambda v: isinstance(v, str) and v in RANKERS, f"one of {', '.join(RANKERS)}"),
    "params": (lambda v: isinstance(v, dict), "an object"),
    "features": (
        lambda v: isinstance(v, str) and v in FEATURE_SETS,
        f"one of {', '.join(FEATURE_SETS)}",
    ),
    "feature_names": (
        lambda v: _str_list(v) and len(v) > 0 and len(set(v)) == len(v),
        "a non-empty list of distinct strings",
    ),
    "proxies": (_str_list, "a list of strings"),
    "space": (lambda v: isinstance(v, str) and v != "", "a non-empty string"),
    "settings": (_dict_or_none, "an object or null"),
    "info": (_dict_or_none, "an object or null"),
    "state": (lambda v: isinstance(v, dict), "an object"),
    "sha256": (
        lambda v: isinstance(v, dict)
        and "arrays.safetensors" in v
        and len(v) <= MAX_MEMBERS
        and all(
            isinstance(k, str) and _MEMBER_NAME.fullmatch(k) and isinstance(h, str)
            and _HEX64.fullmatch(h)
            for k, h in v.items()
        ),
        "an object of member name -> 64 hex digits, with arrays.safetensors",
    ),
}  # fmt: skip


def check_manifest(manifest: Any) -> None:
    """Raise ``RankzcError("manifest: <key> must be ...")`` unless ``manifest`` fits the schema."""
    if not isinstance(manifest, dict):
        raise RankzcError("manifest: not a JSON object")
    for key, (rule, what) in MANIFEST_SCHEMA.items():
        if key not in manifest:
            raise RankzcError(f"manifest: no {key!r}")
        if not rule(manifest[key]):
            raise RankzcError(f"manifest: {key!r} must be {what}")
    extra = sorted(set(manifest) - set(MANIFEST_SCHEMA))
    if extra:
        raise RankzcError(f"manifest: unknown key {extra[0]!r}")
    if not set(manifest["proxies"]) <= set(manifest["feature_names"]):
        raise RankzcError("manifest: 'proxies' must be among 'feature_names'")
    if manifest["settings"] is not None:
        check_settings_fields(manifest["settings"], "manifest: 'settings'")


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
        "params": jsonable(fitted.model.get_params(), nan=True),
        "features": fitted.features,
        "feature_names": fitted.feature_names,
        "proxies": fitted.proxies,
        "space": fitted.space,
        "settings": jsonable(fitted.settings, nan=True),
        "info": jsonable(fitted.info, nan=True),
        "state": jsonable(config, nan=True),
        "sha256": {k: _sha(v) for k, v in members.items()},
    }
    check_manifest(manifest)
    manifest_bytes = json.dumps(manifest, indent=1).encode()
    with (
        atomic_output(path) as tmp,  # whole or nothing; one-line error on a full disk
        zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf,
    ):
        zf.writestr("manifest.json", manifest_bytes)
        zf.writestr(MANIFEST_SUM, _sha(manifest_bytes) + "\n")
        for k, v in members.items():
            zf.writestr(k, v)
    return path


def _read_member(zf: zipfile.ZipFile, name: str, limit: int) -> bytes:
    """A member's bytes, refused before reading when it declares more than ``limit`` bytes."""
    info = zf.getinfo(name)  # KeyError when absent
    if info.file_size > limit:
        raise RankzcError(f"member {name} is {info.file_size} bytes (limit {limit})")
    with zf.open(info) as fh:  # reads at most file_size bytes, then checks the CRC
        return fh.read(limit + 1)


def _read_archive(path: Path) -> tuple[dict, dict[str, bytes]]:
    """The checked manifest and the member bytes of a ranker file (see :func:`load_ranker`)."""
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise RankzcError(f"{size} bytes (limit {MAX_FILE_BYTES})")
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        if "manifest.json" not in names:
            raise _NotRanker("no manifest.json")
        if len(names) > MAX_MEMBERS + 2:
            raise RankzcError(f"{len(names)} members (limit {MAX_MEMBERS + 2})")
        raw = _read_member(zf, "manifest.json", MAX_MANIFEST_BYTES)
        manifest = json.loads(raw)
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise _NotRanker(f"manifest format is not {FORMAT}")
        version = manifest.get("format_version")
        if version != FORMAT_VERSION:
            raise _Incompatible(
                f"ranker format version {version} (rankzc {manifest.get('rankzc_version')}) "
                f"is incompatible with this rankzc {__version__} (reads version "
                f"{FORMAT_VERSION}); refit it"
            )
        if MANIFEST_SUM not in names:
            raise RankzcError(f"no {MANIFEST_SUM}")
        if _read_member(zf, MANIFEST_SUM, 128).decode("ascii").strip() != _sha(raw):
            raise RankzcError("manifest.json was edited (its checksum does not match)")
        check_manifest(manifest)
        total = 0
        members = {}
        for name in manifest["sha256"]:
            members[name] = _read_member(zf, name, MAX_MEMBER_BYTES)
            total += len(members[name])
            if total > MAX_FILE_BYTES:
                raise RankzcError(f"members hold over {MAX_FILE_BYTES} bytes")
    for name, data in members.items():
        if _sha(data) != manifest["sha256"][name]:
            raise RankzcError(f"checksum of {name} does not match")
    return manifest, members


class _NotRanker(Exception):
    pass


class _Incompatible(Exception):
    pass


def load_ranker(path: str | Path) -> FittedRanker:
    """Read a ranker written by :func:`save_ranker` (no pickle is ever loaded).

    Everything is checked before it is used: the file, manifest and member sizes against
    fixed limits, the manifest's own checksum (``manifest.sha256``), the manifest against
    :data:`MANIFEST_SCHEMA`, every member's checksum, a LightGBM model's text
    (:func:`rankzc.ranking.lgbtext.safe_model_text`), RankNet layer sizes against the
    stored weights; finally the model scores one row.

    Raises:
        FileNotFoundError: no such file.
        RankzcError: not a ranker file, corrupted (``"<path>: corrupted ranker file
            (<reason>)"``, one line), or written in another format version.
    """
    from safetensors.numpy import load as st_load

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such ranker file")
    try:
        manifest, members = _read_archive(path)
    except _NotRanker as err:
        raise RankzcError(f"{path}: not a rankzc ranker ({err})") from None
    except _Incompatible as err:
        raise RankzcError(f"{path}: {err}") from None
    except zipfile.BadZipFile as err:
        raise RankzcError(f"{path}: not a rankzc ranker or corrupted ({err})") from None
    except Exception as err:  # noqa: BLE001 - any decoding failure is a corrupted file
        raise RankzcError(f"{path}: corrupted ranker file ({describe_error(err)})") from None
    try:
        blob = members["arrays.safetensors"]
        arrays = st_load(blob) if blob else {}
        texts = {k[5:]: v.decode() for k, v in members.items() if k.startswith("text/")}
        cls = ranker_class(manifest["model"])
        model = cls(**current_params(cls, manifest["params"]))  # old names mapped
        model.feature_names_in_ = list(manifest["feature_names"])
        model._import(manifest["state"], arrays, texts)
        probe = (  # a model may need a valid row, e.g. gnn an architecture
            model._probe()
            if hasattr(model, "_probe")
            else np.zeros((1, len(model.feature_names_in_)))
        )
        scores = model.predict(probe)
        if np.shape(scores) != (1,):
            raise RankzcError("the model does not give one score per row")
        if not np.isfinite(np.asarray(scores, dtype=float)).all():
            raise RankzcError("the model scores a valid row as NaN or infinite")
    except Exception as err:  # noqa: BLE001 - any decoding failure is a corrupted file
        raise RankzcError(f"{path}: corrupted ranker file ({describe_error(err)})") from None
    return FittedRanker(
        model,
        features=manifest["features"],
        feature_names=manifest["feature_names"],
        proxies=manifest["proxies"],
        space=manifest["space"],
        settings=manifest["settings"],
        info=manifest["info"],
        rankzc_version=manifest["rankzc_version"],
    )
