"""Exponential moving average of the trainable weights (the weights that get exported)."""

from __future__ import annotations

import contextlib

import torch


class EMA:
    def __init__(self, parameters: dict[str, torch.nn.Parameter], decay: float):
        self.decay = decay
        self.parameters = parameters
        self.shadow = {name: p.detach().float().clone() for name, p in parameters.items()}
        self.updates = 0

    @torch.no_grad()
    def update(self) -> None:
        # Warm-up: early on the average must not be anchored to the random initialisation.
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        self.updates += 1
        for name, parameter in self.parameters.items():
            self.shadow[name].lerp_(parameter.detach().float(), 1.0 - decay)

    def state_dict(self) -> dict[str, torch.Tensor]:
        state = {name: value.clone() for name, value in self.shadow.items()}
        state["__updates__"] = torch.tensor(self.updates)
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for name in self.shadow:
            self.shadow[name].copy_(state[name])
        self.updates = int(state.get("__updates__", torch.tensor(0)))

    @contextlib.contextmanager
    def applied(self):
        """Temporarily put the averaged weights into the model (validation, export)."""
        saved = {name: p.detach().clone() for name, p in self.parameters.items()}
        with torch.no_grad():
            for name, parameter in self.parameters.items():
                parameter.copy_(self.shadow[name].to(parameter.dtype))
        try:
            yield
        finally:
            with torch.no_grad():
                for name, parameter in self.parameters.items():
                    parameter.copy_(saved[name])
