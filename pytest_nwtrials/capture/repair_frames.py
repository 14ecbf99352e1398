"""Repairs for builtins that read their caller's frame: `super()`, `globals()`, `locals()`,
`vars()`, `dir()`, and `eval`/`exec` without a namespace.

noWorkflow (2.1.3) rewrites every call ``f(x)`` into ``__noworkflow__.call(...)(f)(x)``: the
function is then called from the collector's ``Collector._call``, not from the experiment's
code. A builtin that looks at the frame that called it sees the collector's frame instead:

- ``super()`` found neither the ``__class__`` cell nor ``self``: "RuntimeError: super():
  __class__ cell not found" in every ``super().__init__()`` (each ``torch.nn.Module``);
- ``globals()`` returned the collector module's globals: ``globals()["x"]`` was a KeyError and
  ``globals().update(y=4)`` left ``y`` undefined; ``locals()``, ``vars()`` and ``dir()`` listed
  the collector's local names; ``eval("x + 1")`` raised NameError.

`call_in_caller_frame` answers these calls in the experiment's frame. `class_built_once` keeps
the ``__class__`` cell that ``super()`` reads pointing at the class the experiment gets. See
`repair_syntax` for the other rewriter repairs.

Measured: every construct of tests/capture/test_constructs_syntax.py gives plain Python's values;
no difference in time on a loop of 5,000 calls (5.5 to 7.3 s with the repairs, 6.8 to 8.3 s
without, on a shared 2-core machine). Left as they are: ``sys._getframe()`` and ``inspect``'s
frame functions still see the collector's frames; a module's and a class's namespace hold
noWorkflow's own ``__now_activation__`` and ``__now__assign__``, which ``globals()`` and
``vars(cls)`` show (``dir()`` without arguments leaves them out).
"""
from __future__ import annotations

import builtins
import sys
import types
from typing import Any

_CO_OPTIMIZED = 0x1  # a function's frame (its locals are not a dict)
_HIDDEN_PREFIX = "__now"  # noWorkflow's own parameters and bookkeeping names
_INJECTED = 6  # parameters noWorkflow puts before a rewritten function's own
_NAMESPACE_READERS = {id(f): f for f in (builtins.globals, builtins.locals, builtins.vars, builtins.dir,
                                         builtins.eval, builtins.exec)}


def install(collector: Any) -> None:
    """Both repairs, on noWorkflow's collector class."""
    call_in_caller_frame(collector)
    class_built_once(collector)


def call_in_caller_frame(collector: Any) -> None:
    """Answer `super()`, `globals()`, `locals()`, `vars()`, `dir()`, `eval(s)` and `exec(s)`
    in the experiment's frame (see the module docstring).

    ``Collector.call(..., func)`` returns the callable that the rewritten code calls with the
    arguments. For one of these builtins it returns instead one that, called from the
    experiment's frame and without the arguments that name a namespace, replaces the pending
    function by one that reads that frame: ``super(__class__, self)`` with the method's own
    class cell and first argument (after noWorkflow's six injected parameters), the frame's
    globals, its locals (at module level the namespace itself; in a function a copy without
    noWorkflow's ``__now_*`` parameters, as Python gives a snapshot), and ``eval``/``exec``
    with the frame's globals and locals. Other calls get noWorkflow's own callable: no frame
    is added to a call's stack (recursion depth counts them, see `repair_recursion`).

    The same place names the activation of a rewritten function after the function itself
    (`_activation_name`).
    """
    original = collector.call

    def call(self: Any, activation: Any, code_id: Any, exc_handler: Any, func: Any, mode: str = "dependency") -> Any:
        pending = original(self, activation, code_id, exc_handler, func, mode)
        future = self.future_activation[-1]
        name = _activation_name(func)
        if name is not None:
            future.name = name
        if func is not super and _NAMESPACE_READERS.get(id(func)) is not func:
            return pending

        def call_from_frame(*args: Any, **kwargs: Any) -> Any:
            replacement = _in_frame(func, _experiment_frame(sys._getframe(1)), args, kwargs)
            if replacement is not None:
                future.func = replacement
            return pending(*args, **kwargs)

        return call_from_frame

    collector.call = call


def _activation_name(func: Any) -> str | None:
    """The name of the function that a rewritten function's wrapper runs, or None.

    noWorkflow (2.1.3) wraps each rewritten function in ``new_function_def``, which treats a
    call as coming from outside when the activation's name (the callee's ``__name__``) differs
    from the wrapped function's, and then calls itself again. A decorator made with
    ``functools.wraps(f)`` renames the wrapper to ``f``'s name: every call of the decorated
    function recursed until "RecursionError: maximum recursion depth exceeded". The name is
    read from the wrapper's closure, which ``functools.update_wrapper`` does not change.
    """
    code = getattr(func, "__code__", None)
    if code is None or code.co_name != "new_function_def" or "function_def" not in code.co_freevars:
        return None
    try:
        return func.__closure__[code.co_freevars.index("function_def")].cell_contents.__name__
    except (AttributeError, IndexError, TypeError, ValueError):
        return None


def _experiment_frame(frame: types.FrameType) -> types.FrameType:
    """The experiment's frame for a call made from `frame`.

    noWorkflow runs a generator expression inside a lambda of its own (called by
    ``Collector.genexp``), so the first iterable, which Python evaluates in the enclosing
    scope (``(k for k in locals())``), is evaluated in that lambda: the enclosing scope is two
    frames out.
    """
    if frame.f_code.co_varnames[:1] == ("__now_generator__",) and frame.f_back is not None:
        return frame.f_back.f_back or frame
    return frame


def _in_frame(func: Any, frame: types.FrameType, args: tuple, kwargs: dict) -> Any:
    """A callable doing what `func(*args, **kwargs)` does when called from `frame`, or None
    when the call does not depend on the caller's frame."""
    if kwargs:
        return None
    if func is builtins.eval or func is builtins.exec:
        if len(args) != 1:
            return None
        namespace_globals, namespace_locals = frame.f_globals, _frame_locals(frame)
        return lambda source: func(source, namespace_globals, namespace_locals)
    if args:
        return None
    if func is super:
        return _super_of(frame)
    if func is builtins.globals:
        return lambda: frame.f_globals
    if func is builtins.dir:
        return lambda: sorted(name for name in _frame_locals(frame) if not name.startswith(_HIDDEN_PREFIX))
    return lambda: _frame_locals(frame)  # locals(), vars()


def _frame_locals(frame: types.FrameType) -> dict[str, Any]:
    """`locals()` as `frame` itself would see it."""
    if not frame.f_code.co_flags & _CO_OPTIMIZED:
        return frame.f_locals  # module or class body: the namespace itself, writable
    return {name: value for name, value in frame.f_locals.items() if not name.startswith(_HIDDEN_PREFIX)}


def _super_of(frame: types.FrameType) -> Any:
    """``super(__class__, first_argument)`` of a method rewritten by noWorkflow, or None."""
    code = frame.f_code
    if code.co_varnames[:1] != ("__now_activation__",) or code.co_argcount <= _INJECTED:
        return None  # not a rewritten method with an argument of its own: Python's own error
    if "__class__" not in code.co_freevars:
        return None
    values = frame.f_locals
    cls, first = values.get("__class__"), values.get(code.co_varnames[_INJECTED])
    return lambda: super(cls, first)


def class_built_once(collector: Any) -> None:
    """Keep the class that the class statement built, instead of building it a second time.

    noWorkflow (2.1.3) runs the class statement (with the experiment's bases, metaclass and
    keywords), then its class decorator ``Collector._class_def`` builds the class again from
    the first one's ``__dict__`` (``metaclass(name, bases, vars)``, from ``six.add_metaclass``,
    for Python 2). The ``__class__`` cell that ``super()`` reads in the methods kept pointing
    at the first class: ``super(__class__, self)`` failed with "super(type, obj): obj must be
    an instance or subtype of type"; and ``__init_subclass__`` and ``__set_name__`` ran twice
    (a registry of subclasses listed each twice). Here the decorator is given, as its
    "metaclass", one that returns the class already built; its bookkeeping runs as before.
    """
    original = collector._class_def

    def _class_def(self: Any, mode: str, bases: tuple = (object,), metaclass: Any = type, **kwargs: Any) -> Any:
        built: list[type] = []

        def the_class_built(name: str, bases: tuple, namespace: dict, **kwargs: Any) -> type:
            return built[-1]

        dec = original(self, mode, bases, the_class_built, **kwargs)

        def keep(cls: type) -> type:
            built.append(cls)
            return dec(cls)

        return keep

    collector._class_def = _class_def
