"""Adam as torch.optim.Adam computes it (defaults: no weight decay, no AMSGrad), without
torch.optim: the first torch.optim optimizer of a process imports torch._dynamo, about a
second of every reconstruction's start on a CPU. Its state dict has torch.optim.Adam's
layout, so checkpoints load either way."""

from __future__ import annotations

from collections.abc import Iterable

import torch


class Adam:
    """Adam (Kingma & Ba 2015) over ``params``, bit for bit torch.optim.Adam's default path
    (``foreach=False``): m <- b1 m + (1 - b1) g, v <- b2 v + (1 - b2) g^2,
    p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).

    The training loop sets ``param_groups[0]["lr"]`` each step, as with torch's."""

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.params = list(params)
        self.param_groups = [{"params": self.params, "lr": lr, "betas": betas, "eps": eps,
                              "weight_decay": 0, "amsgrad": False, "maximize": False,
                              "foreach": None, "capturable": False, "differentiable": False,
                              "fused": None, "decoupled_weight_decay": False}]
        self.state: dict[int, dict[str, torch.Tensor]] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        group = self.param_groups[0]
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            state = self.state.get(i)
            if state is None:
                state = self.state[i] = {"step": torch.tensor(0.0),
                                         "exp_avg": torch.zeros_like(p),
                                         "exp_avg_sq": torch.zeros_like(p)}
            state["step"] += 1
            t = state["step"].item()
            state["exp_avg"].lerp_(p.grad, 1 - beta1)
            state["exp_avg_sq"].mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
            step_size = lr / (1 - beta1**t)
            denom = (state["exp_avg_sq"].sqrt() / (1 - beta2**t) ** 0.5).add_(eps)
            p.addcdiv_(state["exp_avg"], denom, value=-step_size)

    def state_dict(self) -> dict:
        """torch.optim.Adam's layout: parameters by their index."""
        groups = [{**{k: v for k, v in g.items() if k != "params"},
                   "params": list(range(len(self.params)))} for g in self.param_groups]
        return {"state": {i: dict(s) for i, s in self.state.items()}, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """A state dict of this class or of torch.optim.Adam (one group, same parameters);
        ValueError or KeyError for one that does not fit."""
        groups = state_dict["param_groups"]
        if len(groups) != 1 or len(groups[0]["params"]) != len(self.params):
            raise ValueError("loaded state dict has a different number of parameters or groups")
        state = {}
        for key, value in state_dict["state"].items():
            i = int(key)
            p = self.params[i]
            if value["exp_avg"].shape != p.shape or value["exp_avg_sq"].shape != p.shape:
                raise ValueError(f"loaded state of parameter {i} does not match its size")
            state[i] = {"step": torch.as_tensor(value["step"], dtype=torch.float32).clone(),
                        "exp_avg": value["exp_avg"].to(p).clone(),
                        "exp_avg_sq": value["exp_avg_sq"].to(p).clone()}
        self.state = state
        self.param_groups[0].update({k: v for k, v in groups[0].items() if k != "params"})
