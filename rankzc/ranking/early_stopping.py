"""Early stopping for the rankers trained by gradient descent (``ranknet``, ``gnn``)."""

from __future__ import annotations

import math
from typing import Any


class EarlyStopping:
    """Keep the weights of the epoch with the lowest validation loss; say when to stop.

    :meth:`step` is called once per epoch with that epoch's validation loss. Training
    stops after ``patience`` epochs without an improvement of more than ``min_delta``,
    and not before ``min_epochs`` epochs; :meth:`restore` then puts the best weights
    back into the network.
    """

    def __init__(self, patience: int, *, min_epochs: int = 0, min_delta: float = 1e-6):
        self.patience = int(patience)
        self.min_epochs = int(min_epochs)
        self.min_delta = float(min_delta)
        self.best = math.inf
        self.best_state: dict[str, Any] | None = None
        self.bad = 0
        self.epochs = 0

    def step(self, loss: float, net) -> bool:
        """Record ``loss`` for ``net`` (a ``torch.nn.Module``); True when training should stop."""
        self.epochs += 1
        if loss < self.best - self.min_delta:
            self.best, self.bad = loss, 0
            self.best_state = {k: t.detach().clone() for k, t in net.state_dict().items()}
            return False
        self.bad += 1
        return self.bad >= self.patience and self.epochs >= self.min_epochs

    def restore(self, net) -> None:
        """Load the best weights seen into ``net`` (nothing when no epoch was recorded)."""
        if self.best_state is not None:
            net.load_state_dict(self.best_state)
