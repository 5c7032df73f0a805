"""``grad_sign``: sample-wise gradient sign agreement (Zhang & Jia, 2022)."""

from __future__ import annotations

import torch

from rankzc.proxies.context import ProxyContext
from rankzc.proxies.registry import proxy


@proxy("grad_sign", higher_is_better=True)
def grad_sign(ctx: ProxyContext) -> float:
    r"""GradSign: :math:`\operatorname{mean}_\theta |\sum_i \operatorname{sign}(g_{i,\theta})|`.

    :math:`g_{i,\theta}` is the loss gradient of sample :math:`i` alone (one forward and
    backward per sample, train mode) for every layer weight :math:`\theta`. The reference
    sums over weights; the study's values (about 2 to 10) are this mean, i.e. the sum
    divided by the number of layer weights, which we follow. A model that cannot run
    one sample in train mode (e.g. BatchNorm over a single value per channel) gives a
    missing score.
    """
    model, weights = ctx.model, ctx.weights
    model.train()
    for w in weights:
        w.requires_grad_(True)
    acc = [torch.zeros_like(w, dtype=torch.float32) for w in weights]
    with ctx.seeded():
        for i in range(ctx.batch_size):
            out = model(ctx.inputs[i : i + 1])
            loss = ctx.loss_fn(out, ctx.targets[i : i + 1])
            grads = torch.autograd.grad(loss, weights, allow_unused=True)
            for a, g in zip(acc, grads, strict=True):
                if g is not None:
                    a.add_(torch.sign(g.detach()))
    total = sum(float(a.abs().sum()) for a in acc)
    count = sum(a.numel() for a in acc)
    return total / count
