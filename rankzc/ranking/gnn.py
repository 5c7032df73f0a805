r"""A graph-encoder ranker on PyTorch Geometric (``--model gnn``).

Each architecture becomes a :class:`torch_geometric.data.Data` graph
(:func:`rankzc.ranking.graphs.to_graph`): one node per operation, switch or structural
node, with a one-hot feature over the space's node labels, and directed edges along the
data flow. ``layers`` :class:`~torch_geometric.nn.conv.GINConv` layers (each an MLP of
``hidden`` units) pass messages along the data flow; after every layer a global *sum*
pooling (so counts stay visible) gives a graph vector, and the layers' vectors are
concatenated (jumping knowledge) and layer-normalised. That embedding is concatenated with
the preprocessed proxies (:class:`~rankzc.ranking.preprocessing.ProxyPreprocessor`, fitted
on the training rows) and scored by a small head (``Linear -> ReLU -> Linear``).

Training uses the pairwise RankNet loss (:func:`rankzc.ranking.ranknet.ranknet_loss`) on all
different-label pairs of each mini-batch of ``batch_size`` graphs drawn by PyG's
:class:`~torch_geometric.loader.DataLoader` (shuffled, seeded), with AdamW. A random
``valid_fraction`` of the training rows (none below 30 rows) is held out for early stopping
on the validation rows' Spearman (exponentially smoothed, weight 0.3 on the newest epoch;
after ``min_epochs``, ``patience`` epochs without improvement; the pairwise loss is a poor stopping signal, it rises as the scores sharpen
while the order still improves) and the best weights are restored;
below 30 rows it trains for ``small_epochs`` epochs, with the weight decay as the only
brake. Defaults are chosen to be safe with 20 labels (few, narrow layers, weight decay,
dropout) rather than tuned to a benchmark.

The graph comes from the architecture columns of ``X``, so ``gnn`` needs ``--features
arch``, ``graph`` + ``arch`` or ``all``: for GCN-NAS the switch columns ``bNN_<op>``, for
tuple-encoded spaces the one-hot columns ``[<space>.]pos<k>=<v>``. ``space`` names the graph
rule (:data:`rankzc.ranking.graphs.GRAPH_SPACES`); ``"auto"`` infers it from the columns
(GCN-NAS switches, the prefix of NAS-Bench-101/-301 and TransNAS-Bench-101 columns, else
6-position tuples of 0..4 as NAS-Bench-201). Seeded and
deterministic on CPU.
"""

from __future__ import annotations

import re

import numpy as np

from rankzc.errors import RankzcError
from rankzc.ranking.base import BaseRanker, as_matrix
from rankzc.ranking.early_stopping import EarlyStopping
from rankzc.ranking.features import is_proxy_column
from rankzc.ranking.preprocessing import ProxyPreprocessor

__all__ = ["GNNRanker", "encodings_from_columns"]

_POS = re.compile(r"^(?:([a-z0-9_]+)\.)?pos(\d+)=(-?\d+)$")
#: (kind, vocabulary, encoding) -> (node features, edge index): cross-validation builds the
#: same graphs once per fold otherwise (tensors are never modified in place)
_GRAPH_CACHE: dict = {}
_CACHE_SIZE = 100_000
_SWITCH = re.compile(r"^b(\d{2})_(.+)$")


def encodings_from_columns(X: np.ndarray, names: list[str]) -> tuple[list[str], str]:
    """Architecture strings rebuilt from encoding columns, and the kind of encoding.

    Returns ``(encodings, kind)``: ``"gcn-nas"``, the graph rule named by prefixed columns
    (``nasbench301.pos3=2``, :data:`rankzc.ranking.features.PREFIXED_KINDS`), or
    ``"tuple"`` for plain ``pos<k>=<v>`` columns (NAS-Bench-201).
    """
    from rankzc.space import OPS, Architecture

    switch = {n: _SWITCH.match(n) for n in names}
    if any(m and m.group(2) in OPS for m in switch.values()) and "depth" in names:
        depth = X[:, names.index("depth")]
        cols = {
            (int(m.group(1)), m.group(2)): k
            for k, (n, m) in enumerate(switch.items())
            if m and m.group(2) in OPS
        }
        out = []
        for r in range(len(X)):
            d = int(round(depth[r]))
            bits = [[X[r, cols[(b, op)]] > 0.5 for op in OPS] for b in range(1, d + 1)]
            out.append(str(Architecture(tuple(tuple(b) for b in bits))))
        return out, "gcn-nas"
    from rankzc.ranking.features import unflatten_encoding

    pos = [(k, _POS.match(n)) for k, n in enumerate(names)]
    pos = [(k, m.group(1), int(m.group(2)), int(m.group(3))) for k, m in pos if m]
    if not pos:
        raise RankzcError(
            "gnn: needs the architecture encoding columns (use --features arch or all)"
        )
    kinds = {kind for _, kind, _, _ in pos}
    if len(kinds) > 1:
        raise RankzcError(f"gnn: encoding columns of several spaces {sorted(map(str, kinds))}")
    kind = next(iter(kinds))
    length = max(p for _, _, p, _ in pos) + 1
    out = []
    for r in range(len(X)):
        values = [None] * length
        for k, _, p, v in pos:
            if X[r, k] > 0.5:
                values[p] = v
        # encodings of several lengths (NAS-Bench-101 cells of 3..7 vertices): a shorter
        # one holds no value past its end
        while values and values[-1] is None:
            values.pop()
        if not values or any(v is None for v in values):
            raise RankzcError("gnn: an architecture holds a value its encoding columns do not know")
        out.append(unflatten_encoding(values, kind))
    return out, kind or "tuple"


def _net(n_node: int, n_proxy: int, hidden: int, layers: int, dropout: float):
    import torch
    from torch import nn
    from torch_geometric.nn import GINConv, global_add_pool

    class GraphScorer(nn.Module):
        def __init__(self):
            super().__init__()
            self.convs = nn.ModuleList()
            width = n_node
            for _ in range(layers):
                mlp = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, hidden))
                self.convs.append(GINConv(mlp, train_eps=True))
                width = hidden
            self.norm = nn.LayerNorm(hidden * layers)
            self.drop = nn.Dropout(dropout)
            self.head = nn.Sequential(
                nn.Linear(hidden * layers + n_proxy, hidden), nn.ReLU(), nn.Linear(hidden, 1)
            )
            # a linear path from the proxies: with few labels the ranker can lean on them
            self.skip = nn.Linear(n_proxy, 1, bias=False) if n_proxy else None

        def forward(self, data):
            h, pooled = data.x, []
            for conv in self.convs:
                h = torch.relu(conv(h, data.edge_index))
                pooled.append(global_add_pool(h, data.batch))
            g = self.drop(self.norm(torch.cat(pooled, dim=1)))
            if not n_proxy:
                return self.head(g).squeeze(-1)
            z = torch.cat([g, data.proxies], dim=1)
            return (self.head(z) + self.skip(data.proxies)).squeeze(-1)

    return GraphScorer()


class GNNRanker(BaseRanker):
    """Graph-encoder (GIN) ranker with proxies, trained with the RankNet loss.

    Args:
        hidden: width of the GIN layers and of the head.
        layers: number of GIN layers.
        epochs: most epochs (with early stopping).
        small_epochs: epochs when there are too few rows to hold out a validation set.
        batch_size: graphs per mini-batch (pairs are formed inside a batch).
        lr, weight_decay: AdamW settings.
        dropout: dropout on the graph embedding.
        valid_fraction: training rows held out for early stopping (from 30 rows on).
        patience: epochs without validation improvement before stopping.
        min_epochs: epochs always trained before early stopping may stop.
        proxies: use the proxy columns beside the graph (``False``: graph only).
        space: graph rule, or ``"auto"``.
        seed: seed of the split, the batches and the initial weights.
    """

    #: reads the architecture encoding (``--features arch`` or ``all``), not proxies alone
    needs_encoding = True

    name = "gnn"

    def __init__(
        self,
        hidden: int = 32,
        layers: int = 3,
        epochs: int = 40,
        small_epochs: int = 40,
        batch_size: int = 64,
        lr: float = 3e-3,
        weight_decay: float = 1e-3,
        dropout: float = 0.1,
        valid_fraction: float = 0.2,
        patience: int = 10,
        min_epochs: int = 20,
        proxies: bool = True,
        space: str = "auto",
        seed: int = 0,
    ):
        self.hidden = hidden
        self.layers = layers
        self.epochs = epochs
        self.small_epochs = small_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.dropout = dropout
        self.valid_fraction = valid_fraction
        self.patience = patience
        self.min_epochs = min_epochs
        self.proxies = proxies
        self.space = space
        self.seed = seed

    # ------------------------------------------------------------ graphs
    def _kind(self, enc_kind: str, encodings: list[str]) -> str:
        from rankzc.ranking.graphs import GRAPH_SPACES, graph_space

        if self.space != "auto":
            if self.space not in GRAPH_SPACES:
                raise RankzcError(
                    f"gnn: space must be auto or one of {', '.join(GRAPH_SPACES)}, "
                    f"got {self.space!r}"
                )
            return self.space
        if enc_kind == "gcn-nas" or enc_kind in GRAPH_SPACES:
            return enc_kind
        return graph_space("", encodings)

    def _graphs(self, X: np.ndarray, Z: np.ndarray | None, y: np.ndarray | None):
        import torch
        from torch_geometric.data import Data

        from rankzc.ranking.graphs import to_graph

        names = self.feature_names_in_
        encodings, _ = encodings_from_columns(X, names)
        index = {lab: i for i, lab in enumerate(self.vocab_)}
        out = []
        for r, enc in enumerate(encodings):
            key = (self.kind_, tuple(self.vocab_), enc)
            if key not in _GRAPH_CACHE:
                if len(_GRAPH_CACHE) >= _CACHE_SIZE:
                    _GRAPH_CACHE.clear()
                g = to_graph(enc, self.kind_)
                x = torch.zeros((g.n, len(self.vocab_)))
                x[torch.arange(g.n), torch.tensor([index[lab] for lab in g.labels])] = 1.0
                ei = torch.tensor(g.edges, dtype=torch.long).t().reshape(2, -1)
                _GRAPH_CACHE[key] = (x, ei)
            x, ei = _GRAPH_CACHE[key]
            d = Data(x=x, edge_index=ei)
            d.proxies = torch.as_tensor(
                Z[r : r + 1] if Z is not None else np.zeros((1, 0)), dtype=torch.float32
            )
            d.y = torch.tensor([0.0 if y is None else float(y[r])])
            d.row = torch.tensor([r])
            out.append(d)
        return out

    def _proxy_cols(self) -> list[int]:
        if not self.proxies:
            return []
        return [k for k, n in enumerate(self.feature_names_in_) if is_proxy_column(n)]

    # ------------------------------------------------------------ fitting
    def fit(self, X, y) -> GNNRanker:
        import torch
        from torch_geometric.loader import DataLoader

        from rankzc.ranking.graphs import space_vocabulary
        from rankzc.ranking.ranknet import ranknet_loss
        from rankzc.stats import spearman

        X, names = as_matrix(X, fitting=True)
        y = self._check_y(X, y)
        self.feature_names_in_ = names
        encodings, enc_kind = encodings_from_columns(X, names)
        self.kind_ = self._kind(enc_kind, encodings)
        self.vocab_ = list(space_vocabulary(self.kind_))
        cols = self._proxy_cols()
        self.proxy_columns_ = cols
        Z = None
        if cols:
            self.pre_ = ProxyPreprocessor(transform="quantile").fit(
                X[:, cols], y, [names[k] for k in cols]
            )
            Z = self.pre_.transform_matrix(X[:, cols])
        self.n_proxy_ = 0 if Z is None else int(Z.shape[1])
        graphs = self._graphs(X, Z, y)
        rng = np.random.default_rng(self.seed)
        n = len(y)
        n_val = int(round(self.valid_fraction * n)) if n >= 30 else 0
        perm = rng.permutation(n)
        val, tr = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        epochs = int(self.epochs) if n_val >= 2 else int(self.small_epochs)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            net = _net(len(self.vocab_), self.n_proxy_, int(self.hidden), int(self.layers),
                       float(self.dropout))  # fmt: skip
            opt = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
            gen = torch.Generator().manual_seed(self.seed)
            loader = DataLoader(
                [graphs[i] for i in tr],
                batch_size=int(self.batch_size),
                shuffle=True,
                generator=gen,
            )
            vloader = DataLoader([graphs[i] for i in val], batch_size=max(1, len(val)))
            stopper = EarlyStopping(self.patience, min_epochs=self.min_epochs)
            history = []
            for _ in range(epochs):
                net.train()
                total = 0.0
                for batch in loader:
                    loss = _pair_loss(net(batch), batch.y, ranknet_loss)
                    if loss is None:
                        continue
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    total += float(loss.detach())
                if n_val < 2:
                    history.append(total)
                    continue
                net.eval()
                with torch.no_grad():
                    vb = next(iter(vloader))
                    pred = net(vb).double().numpy()
                # early stopping on the validation rows' ranking (minus Spearman): the pair
                # loss keeps rising as scores sharpen even while the order still improves
                v = -np.nan_to_num(spearman(pred, vb.y.double().numpy()), nan=-1.0)
                # smoothed, so that one lucky epoch on a small validation set is not kept
                v_loss = v if not history else 0.7 * history[-1] + 0.3 * v
                history.append(v_loss)
                if stopper.step(v_loss, net):
                    break
            stopper.restore(net)
        net.eval()
        self.net_ = net
        self.history_ = history
        self.n_epochs_ = len(history)
        return self

    def predict(self, X) -> np.ndarray:
        import torch
        from torch_geometric.loader import DataLoader

        self._check_fitted("net_")
        X, _ = as_matrix(X, self.feature_names_in_)
        cols = self.proxy_columns_
        Z = self.pre_.transform_matrix(X[:, cols]) if cols else None
        graphs = self._graphs(X, Z, None)
        out = np.empty(len(graphs))
        with torch.no_grad():
            for batch in DataLoader(graphs, batch_size=256):
                out[batch.row.numpy()] = self.net_(batch).double().numpy()
        return out

    def _probe(self) -> np.ndarray:
        """One valid input row (used to check a loaded ranker): the smallest architecture."""
        names = self.feature_names_in_
        row = np.zeros((1, len(names)))
        if self.kind_ == "gcn-nas":
            row[0, names.index("depth")] = 4.0
            for b in range(1, 5):
                row[0, names.index(f"b{b:02d}_M_S")] = 1.0
            return row
        seen: set[int] = set()
        for k, n in enumerate(names):
            m = _POS.match(n)
            if m and int(m.group(2)) not in seen:
                seen.add(int(m.group(2)))
                row[0, k] = 1.0
        return row

    # -------------------------------------------------------- persistence
    def _export(self):
        config = {
            "kind": self.kind_,
            "vocab": list(self.vocab_),
            "proxy_columns": [int(k) for k in self.proxy_columns_],
            "n_proxy": int(self.n_proxy_),
        }
        arrays = {f"net.{k}": v.detach().cpu().numpy() for k, v in self.net_.state_dict().items()}
        if self.proxy_columns_:
            config["pre"] = self.pre_.export_into(arrays)
        return config, arrays, {}

    def _import(self, config, arrays, texts) -> None:
        import torch

        from rankzc.ranking.budget import MAX_INPUTS, MAX_LAYERS, MAX_WIDTH, check_count

        # the budget, before anything is built: the file declares these sizes
        check_count(self.layers, MAX_LAYERS, "gnn: layers")
        check_count(self.hidden, MAX_WIDTH, "gnn: hidden")
        if not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise RankzcError("gnn: dropout must be a number in [0, 1)")
        for key in ("vocab", "proxy_columns"):
            if not isinstance(config[key], list):
                raise RankzcError(f"gnn: {key} must be a list")
            check_count(len(config[key]), MAX_INPUTS, f"gnn: number of {key}", 0)
        check_count(config["n_proxy"], MAX_INPUTS, "gnn: n_proxy", 0)
        self.kind_ = str(config["kind"])
        self.vocab_ = list(config["vocab"])
        self.proxy_columns_ = [int(k) for k in config["proxy_columns"]]
        self.n_proxy_ = int(config["n_proxy"])
        if self.proxy_columns_:
            self.pre_ = ProxyPreprocessor.from_arrays(config["pre"], arrays)
        sizes = (len(self.vocab_), self.n_proxy_, int(self.hidden), int(self.layers),
                 float(self.dropout))  # fmt: skip
        state = {
            k[4:]: torch.as_tensor(v, dtype=torch.float32)
            for k, v in arrays.items()
            if k.startswith("net.")
        }
        with torch.device("meta"):  # shapes only: nothing allocated for hostile sizes
            want = {k: tuple(v.shape) for k, v in _net(*sizes).state_dict().items()}
        if want != {k: tuple(v.shape) for k, v in state.items()}:
            raise RankzcError(
                f"gnn: hidden {self.hidden}, layers {self.layers} and {sizes[0]} node kinds "
                "do not match the stored weights"
            )
        net = _net(*sizes)
        net.load_state_dict(state)
        net.eval()
        self.net_ = net


def _pair_loss(scores, y, loss_fn):
    """RankNet loss over every different-label pair of one mini-batch (None: no pair)."""
    import torch

    i, j = torch.triu_indices(len(y), len(y), offset=1)
    keep = y[i] != y[j]
    if not bool(keep.any()):
        return None
    i, j = i[keep], j[keep]
    return loss_fn(scores[i], scores[j], (y[i] > y[j]).float())
