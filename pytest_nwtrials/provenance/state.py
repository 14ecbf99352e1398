"""Hidden state owned by a module: the global random generators, as objects of their own.

`np.random.normal(size=3)` has the same arguments in two trials and still returns another
value when `np.random.seed(SEED)` changed before it: it reads (and advances) a generator the
script never names. Each such generator is a pseudo-object here: a *seed* sets its state, a
*draw* reads and advances it. A draw gets a `STATE` edge to the previous seed or draw of the
same generator, so a slice that holds a draw holds every draw back to the seed that started it,
and that seed; a seed depends on nothing before it.

Recognised from the stored values (the func evaluation's and, for `mod.f(...)`, the read of the
module), so neither numpy nor torch is imported here:
- `numpy.random`: `np.random.seed` / `set_state` (seeds) and every bound method of the hidden
  `RandomState` (`np.random.normal`, `rand`, `shuffle`, ...; also imported by name with
  `from numpy.random import normal`);
- `random`: `random.seed` / `setstate` and every method of the hidden `random.Random`
  (`random.random`, `randint`, `shuffle`, ... and `from random import random`);
- `torch`: `torch.manual_seed` / `torch.seed` and the draws `torch.rand`, `randn`, `randint`,
  `randperm`, `normal`, `bernoulli`, `multinomial`, `poisson` and their `*_like`, when read as
  attributes of the module `torch` (or `torch.random`).
A generator object of the script's own (`rng = np.random.default_rng(0)`) is an ordinary
object: its method calls are mutations of it (`provenance/effects.py`). A function read by name
whose value is a method of a generator (`draw = state.rand; draw()`) is taken as the hidden
one's: its value does not say which generator it belongs to.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

from .types import MODULE, CallSite

__all__ = ["generator_of", "hidden_state", "state_edges"]

_NUMPY_METHOD = re.compile(r"<bound method RandomState\.(\w+) of RandomState\(\w+\)>")
_NUMPY_SEEDS = frozenset({"seed", "set_state"})
_NUMPY_SEED_VALUE = re.compile(r"<cyfunction (seed|set_state)>")
_RANDOM_METHOD = re.compile(
    r"<bound method Random\.(\w+) of <random\.Random object>>|<built-in function Random\.(\w+)>")
_RANDOM_SEEDS = frozenset({"seed", "setstate"})
_TORCH_SEEDS = frozenset({"manual_seed", "seed"})
_TORCH_DRAWS = frozenset({
    "rand", "randn", "randint", "randperm", "normal", "bernoulli", "multinomial", "poisson",
    "rand_like", "randn_like", "randint_like",
})


def hidden_state(site: CallSite, values: dict[int, str]) -> tuple[str, bool] | None:
    """(generator, is a seed) when the call seeds or draws from a module's hidden generator."""
    func = values.get(site.func, "")
    if site.receiver is not None:
        found = MODULE.fullmatch(values.get(site.receiver, ""))
        if found is None:
            return None
        module = found.group(1)
        if module == "numpy.random":
            if site.name in _NUMPY_SEEDS:
                return module, True
            return (module, False) if _NUMPY_METHOD.fullmatch(func) else None
        if module == "random":
            return _random(func)
        if module in ("torch", "torch.random"):
            if site.name in _TORCH_SEEDS:
                return "torch", True
            return ("torch", False) if site.name in _TORCH_DRAWS else None
        return None
    return generator_of(func)


def generator_of(func: str) -> tuple[str, bool] | None:
    """(generator, is a seed) when a function's stored value is a seed or a draw of numpy's or
    `random`'s hidden generator (`np.random.seed`, `np.random.rand`, `random.shuffle`)."""
    if _NUMPY_SEED_VALUE.fullmatch(func):  # imported by name: `from numpy.random import seed`
        return "numpy.random", True
    method = _NUMPY_METHOD.fullmatch(func)
    if method:
        return "numpy.random", method.group(1) in _NUMPY_SEEDS
    return _random(func)


def _random(func: str) -> tuple[str, bool] | None:
    method = _RANDOM_METHOD.fullmatch(func)
    if method is None:
        return None
    return "random", (method.group(1) or method.group(2)) in _RANDOM_SEEDS


def state_edges(sites: Iterable[CallSite], values: dict[int, str]) -> list[tuple[int, int]]:
    """(draw, the previous seed or draw of its generator), for every draw after the first event.

    `sites` are in execution order."""
    last: dict[str, int] = {}
    edges = []
    for site in sites:
        found = hidden_state(site, values)
        if found is None:
            continue
        generator, seed = found
        if not seed and generator in last:
            edges.append((site.call, last[generator]))
        last[generator] = site.call
    return edges
