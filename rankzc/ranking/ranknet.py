r"""RankNet: an MLP scorer trained on pairs with the pairwise logistic loss.

For a pair of training architectures with :math:`y_i \ne y_j` and scores
:math:`s = f_\theta(x)`, the loss is the binary cross-entropy of
:math:`\sigma(s_i - s_j)` against :math:`t_{ij} = \mathbb{1}[y_i > y_j]`:

.. math::
    \ell_{ij} = -t_{ij}\log\sigma(s_i - s_j) - (1 - t_{ij})\log(1 - \sigma(s_i - s_j))
              = \log\big(1 + e^{-(2t_{ij} - 1)(s_i - s_j)}\big)

(Burges et al., 2005), computed with :func:`torch.nn.functional.binary_cross_entropy_with_logits`.
Pairs with equal labels are skipped. When the training rows have at most ``max_pairs``
different-label pairs, every epoch visits all of them; otherwise each epoch draws
``max_pairs`` random pairs, so memory stays bounded. Every step scores all training rows
once and gathers the batch's pairs from those scores.

A random ``valid_fraction`` of the training rows is held out for early stopping on the
validation pairs' loss (``patience`` epochs); the best weights are restored. Inputs go
through :class:`~rankzc.ranking.preprocessing.ProxyPreprocessor` fitted on the training rows.
Training is seeded and deterministic on CPU.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from rankzc.errors import RankzcError
from rankzc.ranking.base import BaseRanker, as_matrix, subsample_rows
from rankzc.ranking.budget import MAX_INPUTS, MAX_LAYERS, MAX_WIDTH, check_count
from rankzc.ranking.early_stopping import EarlyStopping
from rankzc.ranking.preprocessing import ProxyPreprocessor

__all__ = ["RankNetRanker", "ranknet_loss", "MLP"]


def ranknet_loss(s_i: torch.Tensor, s_j: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    r"""Mean pairwise logistic loss of score differences :math:`s_i - s_j` against ``target``."""
    return F.binary_cross_entropy_with_logits(s_i - s_j, target)


class MLP(nn.Module):
    """Feed-forward scorer: ``Linear -> ReLU (-> Dropout)`` per hidden layer, then ``Linear -> 1``."""

    def __init__(self, n_in: int, hidden: tuple[int, ...] = (64, 32), dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = []
        width = n_in
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


def _all_pairs(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    i, j = np.triu_indices(len(y), k=1)
    keep = y[i] != y[j]
    return i[keep], j[keep]


def _sample_pairs(y: np.ndarray, n: int, rng: np.random.Generator):
    i = rng.integers(0, len(y), size=n)
    j = rng.integers(0, len(y), size=n)
    keep = y[i] != y[j]
    return i[keep], j[keep]


class RankNetRanker(BaseRanker):
    """Pairwise-logistic MLP ranker (see the module docstring).

    Args:
        hidden: widths of the hidden layers.
        epochs: most passes over the pairs.
        lr, weight_decay: AdamW settings.
        batch_pairs: pairs per optimisation step.
        max_pairs: pairs per epoch (all pairs when there are fewer).
        valid_fraction: training rows held out for early stopping (none below 20 rows).
        patience: epochs without validation improvement before stopping.
        dropout: dropout after each hidden layer.
        input_transform: preprocessing transform of the inputs (``quantile``,
            ``standard``, ``none``). It was called ``transform``, but an estimator
            attribute of that name makes scikit-learn take the ranker for a transformer;
            the old name is still read (``RENAMED_PARAMS``) by
            :func:`~rankzc.ranking.registry.make_ranker` (so ``--param transform=...``)
            and from ranker files written before the rename.
        max_rows: most training rows used; above, a seeded random subset of this many
            (bounds the fitting time on large benchmarks; ``None``: every row).
        seed: seed of the split, the pair sampling and the initial weights.
    """

    name = "ranknet"
    #: old parameter name -> new one (ranker files and ``--param`` written before the rename)
    RENAMED_PARAMS = {"transform": "input_transform"}

    def __init__(
        self,
        hidden: tuple[int, ...] = (64, 32),
        epochs: int = 100,
        lr: float = 5e-3,
        weight_decay: float = 1e-4,
        batch_pairs: int = 10_000,
        max_pairs: int = 30_000,
        valid_fraction: float = 0.15,
        patience: int = 10,
        dropout: float = 0.0,
        input_transform: str = "quantile",
        max_rows: int | None = 20_000,
        seed: int = 0,
    ):
        self.hidden = hidden
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_pairs = batch_pairs
        self.max_pairs = max_pairs
        self.valid_fraction = valid_fraction
        self.patience = patience
        self.dropout = dropout
        self.input_transform = input_transform
        self.max_rows = max_rows
        self.seed = seed

    def _net(self, n_in: int) -> MLP:
        return MLP(n_in, tuple(int(h) for h in self.hidden), float(self.dropout))

    def fit(self, X, y) -> RankNetRanker:
        X, names = as_matrix(X, fitting=True)
        y = self._check_y(X, y)
        if X.shape[1] == 0:  # an MLP with no input would fit and score a constant
            raise RankzcError("ranknet: no feature columns to learn from")
        X, y = subsample_rows(X, y, self.max_rows, self.seed)
        self.feature_names_in_ = names
        self.pre_ = ProxyPreprocessor(transform=self.input_transform).fit(X, y, names)
        Z = torch.as_tensor(self.pre_.transform_matrix(X), dtype=torch.float32)
        rng = np.random.default_rng(self.seed)
        n = len(y)
        perm = rng.permutation(n)
        n_val = int(round(self.valid_fraction * n)) if n >= 20 else 0
        val, tr = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        if np.ptp(y[tr]) == 0:  # the held-out rows took every other label: no early stopping
            n_val, val, tr = 0, tr[:0], np.arange(n)
        y_tr, y_val = y[tr], y[val]
        n_tr_pairs = len(tr) * (len(tr) - 1) // 2
        fixed = _all_pairs(y_tr) if n_tr_pairs <= self.max_pairs else None
        if n_val >= 2:
            vi, vj = (
                _all_pairs(y_val)
                if n_val * (n_val - 1) // 2 <= self.max_pairs
                else _sample_pairs(y_val, self.max_pairs, rng)
            )
            v_t = torch.as_tensor(y_val[vi] > y_val[vj], dtype=torch.float32)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            net = self._net(Z.shape[1])
            opt = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
            Z_tr, Z_val = Z[tr], Z[val]
            stopper, history = EarlyStopping(self.patience), []
            for _epoch in range(int(self.epochs)):
                pi, pj = fixed if fixed is not None else _sample_pairs(y_tr, self.max_pairs, rng)
                order = rng.permutation(len(pi))
                net.train()
                for s in range(0, len(order), self.batch_pairs):
                    b = order[s : s + self.batch_pairs]
                    scores = net(Z_tr)
                    target = torch.as_tensor(y_tr[pi[b]] > y_tr[pj[b]], dtype=torch.float32)
                    loss = ranknet_loss(scores[pi[b]], scores[pj[b]], target)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                if n_val < 2 or len(vi) == 0:
                    history.append(float(loss.detach()))
                    continue
                net.eval()
                with torch.no_grad():
                    sv = net(Z_val)
                    v_loss = float(ranknet_loss(sv[vi], sv[vj], v_t))
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
        self._check_fitted("net_")
        X, _ = as_matrix(X, self.feature_names_in_)
        Z = torch.as_tensor(self.pre_.transform_matrix(X), dtype=torch.float32)
        with torch.no_grad():
            return self.net_(Z).double().numpy()

    def _export(self):
        arrays: dict[str, np.ndarray] = {}
        pconf = self.pre_.export_into(arrays)
        for k, v in self.net_.state_dict().items():
            arrays[f"net.{k}"] = v.detach().cpu().numpy()
        return {"pre": pconf, "n_in": int(self.net_.net[0].in_features)}, arrays, {}

    def _import(self, config, arrays, texts) -> None:
        self.pre_ = ProxyPreprocessor.from_arrays(config["pre"], arrays)
        # the budget, before anything is built: the file declares these sizes
        if not isinstance(self.hidden, (list, tuple)):
            raise RankzcError("ranknet: hidden must be a list of layer widths")
        check_count(len(self.hidden), MAX_LAYERS, "ranknet: number of hidden layers", 0)
        for width in self.hidden:
            check_count(width, MAX_WIDTH, "ranknet: hidden width")
        check_count(config["n_in"], MAX_INPUTS, "ranknet: n_in")
        if not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise RankzcError("ranknet: dropout must be a number in [0, 1)")
        state = {k[4:]: torch.as_tensor(v) for k, v in arrays.items() if k.startswith("net.")}
        with torch.device("meta"):  # shapes only: nothing allocated for hostile sizes
            want = {
                k: tuple(v.shape) for k, v in self._net(int(config["n_in"])).state_dict().items()
            }
        got = {k: tuple(v.shape) for k, v in state.items()}
        if want != got:
            raise RankzcError(
                f"ranknet: layer sizes {list(self.hidden)} with {config['n_in']} inputs do not "
                "match the stored weights"
            )
        net = self._net(int(config["n_in"]))
        net.load_state_dict(state)
        net.eval()
        self.net_ = net
