"""Calls that may have changed an object they were given, which noWorkflow does not record.

noWorkflow connects a later read of an object to the evaluation that created it, not to the
calls that changed it since (`model.fit(X)`, `rows.sort()`, `rng.shuffle(data)`). The rules
here name those calls, so that a slice that reads the object includes them: each is an
*effect* on the object. "The same object" is noWorkflow's `member_container_id`: every read of
`model` after `model = Est(a)` carries the id of the `Est(a)` evaluation, until `model` is
bound to another object. Code in imported modules is recorded as one call, so a mutation
inside a library is inferred from the call, never seen.

A call `obj.m(...)` (obj not a module) may have changed its *receiver* obj when
- it returned None (`losses.append(x)`, `rows.sort()`, `arr.fill(0)`, `df.drop(..., inplace=True)`):
  a method called for its effect;
- it returned obj itself (the call's object is the receiver's: noWorkflow knew them the same);
- its name is a known mutator that returns something else: `fit*` and `partial_fit` (sklearn
  returns self, which noWorkflow does not recognise as the receiver), `set_params`; `train`
  and `eval` (torch switches the mode in place and returns self), `step`, `zero_grad`,
  `load_state_dict`; `pop`, `popitem`, `setdefault`, `update`; `seed` (an environment's
  `env.seed(0)` returns the seeds it set);
- obj is a random generator (numpy's `Generator` and `RandomState`, `random.Random`, torch's
  `Generator`): every draw advances it;
- it has an `inplace=True` keyword (pandas 3 returns the frame itself from some of them).

A call may have changed an *argument* when
- the argument is its `out=` keyword (numpy ufuncs and many array functions);
- it is a known argument-mutating function (`shuffle` of a generator, of `np.random` or of
  `random`; `np.copyto`, `np.put`, `np.place`, `np.putmask`, `np.fill_diagonal`; a ufunc's
  `.at`): the first argument;
- it is *observed*: the object's stored value (its digest) at its next read differs from its
  value when it was passed to the call, and nothing known changed it in between
  (`provenance/observed.py`). This catches what no list knows, for values whose stored form shows
  their content (arrays, frames, containers; not an `<Est object>`).

A pure function of a module (`np.mean(x)`, `len(x)`) matches none of these, so it joins no
slice through them. Hidden state owned by a module (the global random generators) is in
`provenance/state.py`.
"""
from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from functools import lru_cache

from .observed import observed_mutations
from .state import state_edges
from .types import MODULE, CallSite, GraphView

__all__ = ["CallSite", "call_effects", "call_sites"]

# methods that change their receiver but return something other than None: the rest of the
# usual mutators (append, extend, insert, remove, clear, sort, reverse, add, discard, fill,
# resize, put, ...) return None and are caught by that rule
RECEIVER_MUTATORS = frozenset({
    "partial_fit", "set_params", "train", "eval", "step", "zero_grad", "load_state_dict",
    "pop", "popitem", "setdefault", "update", "seed",
})
# functions that change their first argument
ARGUMENT_MUTATORS = frozenset({"shuffle", "copyto", "put", "place", "putmask", "fill_diagonal"})
_FIT = re.compile(r"fit(?:_\w+)?")
# stored values of random generators: numpy's Generator and RandomState, random.Random and
# its subclass SystemRandom, torch's Generator
GENERATOR = re.compile(
    r"(?:Generator|RandomState)\(\w+\)|<random\.(?:System)?Random object>|<torch\._C\.Generator object>")


def call_sites(graph: GraphView) -> list[CallSite]:
    """Every call of the trial except tag calls, in execution order."""
    tags = graph.tag_calls()
    components = graph.components
    calls = {cid for cid, (_text, kind, _line, _container) in components.items() if kind == "call"}
    sites = []
    for call, (moment, component, _obj) in graph.evaluations.items():
        if component not in calls or call in tags:
            continue
        text = components[component][0]
        func, receiver, arguments = None, None, []
        for dep, dep_kind in graph.deps.get(call, ()):
            if dep_kind == "func":
                func = dep
            elif dep_kind == "argument":
                arguments.append(dep)
        if func is None:
            continue
        func_text, func_kind = components.get(graph.evaluations[func][1], ("", "", -1, None))[:2]
        name = ""
        if func_kind == "attribute":
            name = func_text.rpartition(".")[2].strip()
            receiver = next((dep for dep, k in graph.deps.get(func, ()) if k == "value"), None)
        elif func_kind == "name":
            name = func_text.strip()
        shape = _call_shape(text)
        keywords: tuple[str, ...] = ()
        if shape is not None and shape[0] + len(shape[1]) == len(arguments):
            keywords = shape[1]
        sites.append(CallSite(call, moment, name, func, receiver, tuple(arguments), keywords))
    sites.sort(key=lambda site: (site.moment, site.call))
    return sites


def keyword(site: CallSite, name: str) -> int | None:
    """The argument evaluation of keyword `name` of the call, when the source tells it."""
    if name not in site.keywords:
        return None
    return site.arguments[len(site.arguments) - len(site.keywords) + site.keywords.index(name)]


def call_effects(graph: GraphView, parts: Mapping[int, list[tuple[float, int, str]]]
                 ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """The calls that may have changed an object, as (object, call), and the edges of hidden
    module state, as (draw, the earlier seed or draw it depends on); see the module docstrings.

    `parts` are the recorded part writes of each object (table `member`), which explain a
    changed value as well as a call does."""
    sites = call_sites(graph)
    values = graph.values(v for site in sites for v in (site.call, site.func, site.receiver) if v is not None)
    flags = graph.values(k for k in (keyword(site, "inplace") for site in sites) if k is not None)
    known = []
    for site in sites:
        for target in changed_by(graph, site, values, flags):
            known.append((target, site.call))
    modules = {site.receiver for site in sites
               if site.receiver is not None and MODULE.fullmatch(values.get(site.receiver, ""))}
    observed = observed_mutations(graph, sites, known, parts, modules)
    return known + observed, state_edges(sites, values)


def changed_by(graph: GraphView, site: CallSite, values: dict[int, str], flags: dict[int, str]) -> set[int]:
    """The objects (containers) that the call may have changed, by the rules of the list above."""
    changed = set()
    receiver_value = values.get(site.receiver, "") if site.receiver is not None else ""
    module = MODULE.fullmatch(receiver_value) is not None
    generator = GENERATOR.fullmatch(receiver_value) is not None
    if site.receiver is not None and not module:
        inplace = keyword(site, "inplace")
        if (values.get(site.call) == "None"
                or graph.container(site.call) == graph.container(site.receiver)
                or site.name in RECEIVER_MUTATORS or _FIT.fullmatch(site.name)
                or generator
                or (inplace is not None and flags.get(inplace) == "True")):
            changed.add(graph.container(site.receiver))
    out = keyword(site, "out")
    if out is not None:
        changed.add(graph.container(out))
    first = site.arguments[0] if site.arguments and len(site.arguments) > len(site.keywords) else None
    if first is not None:
        plain = site.receiver is None or module or generator
        if (plain and site.name in ARGUMENT_MUTATORS) or (site.name == "at" and receiver_value.startswith("<ufunc ")):
            changed.add(graph.container(first))
    return changed


@lru_cache(maxsize=4096)
def _call_shape(text: str) -> tuple[int, tuple[str, ...]] | None:
    """How many positional arguments a call's source text has, and its keyword names in order;
    None when the mapping to stored arguments is unknown (`*args`, `**kwargs`, not a call)."""
    try:
        call = ast.parse(text.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # not one expression, or too deep
        return None
    if not isinstance(call, ast.Call) or any(isinstance(arg, ast.Starred) for arg in call.args):
        return None
    if any(kw.arg is None for kw in call.keywords):
        return None
    return len(call.args), tuple(str(kw.arg) for kw in call.keywords)
