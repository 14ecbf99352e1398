"""Repairs to noWorkflow's rewriter and collector: code shapes it rewrites wrongly or cannot follow.

Each repair below replaces or wraps one method of noWorkflow 2.1.3 (its rewriter `RewriteAST`
and `RewriteDependencies`, its runtime `Collector`) and says what fault it answers, how the
fault shows, and what was measured. Calls that read the caller's frame (`super()`,
`globals()`, ...) are repaired in `repair_frames`, deep recursion in `repair_recursion`.
See `repairs` for when they are applied.
"""
from __future__ import annotations

import ast
from copy import copy, deepcopy
from typing import Any

from . import repair_frames, repair_recursion

_MARK = "_nwtrials_repaired"


def install(metascript: Any) -> None:
    """Apply the rewriter and collector repairs (idempotent: class-level patches once per process)."""
    from noworkflow.now.collection.prov_definition.transformer_expr import RewriteDependencies
    from noworkflow.now.collection.prov_definition.transformer_stmt import RewriteAST
    from noworkflow.now.collection.prov_execution.collector import Collector

    if not getattr(RewriteAST, _MARK, False):
        setattr(RewriteAST, _MARK, True)
        plain_original_defs(RewriteAST)
        lambda_values(RewriteDependencies, Collector)
        generator_activation(RewriteDependencies)
        coarse_compound_targets(RewriteAST)
        coarse_decorators(RewriteAST)
        decorators_returning_objects(Collector)
        callbacks_with_other_arguments(Collector)
        signatures_as_written(Collector)
        repair_frames.install(Collector)
    repair_recursion.install(metascript)


def plain_original_defs(rewrite: Any) -> None:
    """Define noWorkflow's undecorated copy of each function without decorators, and drop it after.

    noWorkflow (2.1.3) puts before each rewritten ``def f`` a copy of the original statement
    renamed ``__now_original_f`` (it keeps it as the repr of a class's ``__repr__``). The copy
    keeps the decorators, so every decorator ran twice (a registering decorator registered two
    functions; ``@v.setter`` made a second property), and the name stayed in the namespace:
    ``dir()`` and ``vars()`` of a module or class listed ``__now_original_f``. Here the copy
    has no decorators and ``del __now_original_f`` follows the rewritten definition, once
    noWorkflow has taken it. Everything else of ``RewriteAST.process_body`` is as upstream.
    """
    from noworkflow.now.collection.prov_definition import transformer_stmt as stmt_module
    from noworkflow.now.collection.prov_definition.ast_helpers import ast_copy

    def process_body(self: Any, body: list, container_id: Any, index: int = 0,
                     attr: Any = stmt_module.Component.M_BODY) -> list:
        new_body: list = []
        for stmt in body:
            self.composition_edge = (container_id, attr, index)
            if isinstance(stmt, ast.Assign):
                self.visit_assign(new_body, stmt)
            elif isinstance(stmt, ast.AugAssign):
                self.visit_augassign(new_body, stmt)
            elif isinstance(stmt, ast.AnnAssign):
                self.visit_annassign(new_body, stmt)
            elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                original = deepcopy(stmt)
                original.name = "__now_original_" + stmt.name
                original.decorator_list = []
                new_body.append(original)
                new_body.append(self.visit(stmt))
                new_body.append(ast_copy(ast.Delete([ast.Name(original.name, ast.Del())]), stmt))
            elif isinstance(stmt, ast.Break):
                self.visit_break(new_body, stmt)
            elif isinstance(stmt, ast.Continue):
                self.visit_continue(new_body, stmt)
            else:
                new_body.append(self.visit(stmt))
            index += 1
        return new_body

    rewrite.process_body = process_body


def decorators_returning_objects(collector: Any) -> None:
    """Let a decorator return something that takes no attributes, such as a `property`.

    noWorkflow (2.1.3) ends each function definition by setting ``original_def`` on what the
    decorators returned. A ``property`` (``@property``, ``@x.setter``) has no ``__dict__``:
    "AttributeError: 'property' object has no attribute 'original_def'" while the class body
    ran. The attribute is only read back from a ``__repr__`` (``serializers.repr_serializer``),
    so where it cannot be set it is left out. Measured on 3.11: ``staticmethod``,
    ``classmethod``, ``functools.cached_property``, ``functools.lru_cache``, ``functools.partial``
    and ``functools.wraps`` wrappers take it; ``property`` does not. (A ``functools.wraps``
    wrapper failed differently, in the collector's call: see `repair_frames._activation_name`.)
    """

    def collect_function_def(self: Any, activation: Any, function_name: str, original_def: Any) -> Any:
        def dec(function_def: Any) -> Any:
            dependency_aware = activation.dependencies.pop()
            if activation.active:
                dependency = dependency_aware.dependencies.pop()
                activation.context[function_name] = dependency.evaluation
            try:
                function_def.original_def = original_def
            except (AttributeError, TypeError):
                pass  # no __dict__ (property): only a __repr__ needs it
            return function_def
        return dec

    collector.collect_function_def = collect_function_def


def signatures_as_written(collector: Any) -> None:
    """Give each rewritten function the signature it was written with.

    noWorkflow (2.1.3) defines each function with parameters of its own before the written ones
    (``__now_activation__``, ``__now_function_def__``, ...) and wraps it with
    ``functools.wraps``, so ``inspect.signature`` (which follows ``__wrapped__``) listed them.
    Code that reads a signature broke: every scikit-learn estimator, kernel or transformer
    defined in the experiment failed in ``get_params`` (and so in ``clone``, grid searches and
    pipelines) with "'SequenceKernel' object has no attribute '__now_function_def__'". Here the
    wrapper gets a ``__signature__`` without noWorkflow's parameters.
    """
    import inspect

    original = collector._function_def

    def _function_def(self: Any, *args: Any, **kwargs: Any) -> Any:
        decorate = original(self, *args, **kwargs)

        def dec(function_def: Any) -> Any:
            wrapper = decorate(function_def)
            try:
                written = inspect.signature(function_def)
            except (TypeError, ValueError):  # no signature to read: left as noWorkflow made it
                return wrapper
            kept = [p for p in written.parameters.values() if not p.name.startswith("__now_")]
            wrapper.__signature__ = written.replace(parameters=kept)
            return wrapper

        return dec

    collector._function_def = _function_def


def callbacks_with_other_arguments(collector: Any) -> None:
    """Match a function's parameters without the arguments of a call it was not called by.

    When code noWorkflow does not follow (a builtin, a C extension) calls back into a function
    of the experiment, noWorkflow (2.1.3) takes the arguments recorded for the call in the
    experiment's code as the callback's own. They need not match: ``getattr(self, name, 7)``
    inside ``__getattr__`` calls ``__getattr__(self, name)`` again, and matching three recorded
    arguments and the bound object to two parameters failed with ``IndexError: list index out
    of range`` in ``Collector.match_arguments``, under fine and coarse capture. Here, when that
    matching fails, the callback's parameters are matched again without the recorded
    arguments: their values are still recorded, their dependencies on the outer call's
    arguments are not (which is all that can be known of a call made inside a builtin).
    """
    original = collector.match_arguments

    def match_arguments(self: Any, activation: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, activation, *args, **kwargs)
        except IndexError:
            recorded = activation.dependencies[1].dependencies
            if not any(d.mode.startswith("argument") for d in recorded):
                raise
            recorded[:] = [d for d in recorded if not d.mode.startswith("argument")]
            activation.context.clear()
            return original(self, activation, *args, **kwargs)

    collector.match_arguments = match_arguments


def lambda_values(rewrite_dependencies: Any, collector: Any) -> None:
    """Give a lambda's value to the expression around it, as every other expression does.

    noWorkflow (2.1.3) rewrites ``lambda x: ...`` into ``function_def(...)(...)(lambda ...)``,
    whose decorator pushes a dependency frame with the lambda's evaluation on the activation
    and leaves it there: a ``def`` statement pops it in ``collect_function_def``, a lambda has
    nothing that does. The expression around the lambda then pops the wrong frame: in a list,
    tuple or dict literal ``[lambda x: x + 1, ...]`` failed with "AttributeError:
    'DependencyAware' object has no attribute 'items'"; as an argument or an assigned value it
    ran, its dependency attached one level off. Here the rewritten lambda is wrapped in
    ``lambda_value(<act>, ...)``, which pops that frame and adds its dependencies to the
    enclosing expression's.
    """
    from noworkflow.now.collection.prov_definition.ast_elements import activation, noworkflow
    from noworkflow.now.collection.prov_definition.ast_helpers import ast_copy

    original = rewrite_dependencies.visit_Lambda

    def visit_Lambda(self: Any, node: Any) -> Any:  # noqa: N802 (noWorkflow's visitor name)
        new = original(self, node)
        return ast_copy(noworkflow("lambda_value", [activation(), new]), new)

    def lambda_value(self: Any, activation: Any, value: Any) -> Any:
        depa = activation.dependencies.pop()
        for dependency in depa.dependencies:
            activation.dependencies[-1].add(dependency)
        return value

    rewrite_dependencies.visit_Lambda = visit_Lambda
    collector.lambda_value = lambda_value


def generator_activation(rewrite_dependencies: Any) -> None:
    """Bind a generator expression to the activation it was created in.

    noWorkflow (2.1.3) reads ``__now_activation__`` inside the generator expression's body each
    time it yields. In a function that name is the function's own (a closure); at the top of a
    notebook cell it is a global that each cell rebinds. A generator expression created in one
    cell and consumed in a later one then read the later cell's activation, whose assignment
    stack its loop variable had not been pushed on: "IndexError: pop from empty list" in
    ``pop_assign``. Generators from generator functions, and generator expressions in scripts,
    were not affected. Here the expression's wrapping lambda takes the activation as a default
    argument, fixed when the generator is created.
    """
    from noworkflow.now.collection.prov_definition.ast_elements import activation, param

    original = rewrite_dependencies.visit_GeneratorExp

    def visit_GeneratorExp(self: Any, node: Any) -> Any:  # noqa: N802 (noWorkflow's visitor name)
        new = original(self, node)
        try:
            wrapper = new.args[3]  # genexp(<act>, #, <exc>, lambda __now_generator__: (...), mode)
        except (AttributeError, IndexError):
            return new  # not the shape of 2.1.3's rewrite: left as it is
        if isinstance(wrapper, ast.Lambda):
            wrapper.args.args.append(param("__now_activation__"))
            wrapper.args.defaults = [*wrapper.args.defaults, activation()]
        return new

    rewrite_dependencies.visit_GeneratorExp = visit_GeneratorExp


def coarse_compound_targets(rewrite: Any) -> None:
    """Under coarse capture, rewrite ``X[:, i] += v`` and ``self.n: int = 0`` as ``x += v`` is.

    noWorkflow's coarse mode (``-cg``, 2.1.3) keeps an augmented or annotated assignment as it
    is, with only its value rewritten, when the target is a plain name; for a subscript or an
    attribute it falls through to the fine rewrite, which reads the ``target_expr`` that only
    fine capture sets on the target: "AttributeError: 'Subscript' object has no attribute
    'target_expr'" (and 'Attribute' for ``obj.n += 1``) before the script's first line ran,
    reported as the script's error with two frames of ``ast.py``. Here any target takes the
    plain-name path; calls inside the target (``X[f(i)] += 1``) are still recorded, as coarse
    capture records calls.
    """
    from noworkflow.now.collection.prov_definition.ast_helpers import ast_copy

    aug, ann = rewrite.visit_augassign, rewrite.visit_annassign

    def keep_statement(self: Any, new_body: list, node: Any, mode: str) -> None:
        new_node = ast_copy(copy(node), node)
        new_node.target = self.capture(node.target)
        new_node.value = self.capture(node.value, mode=mode)
        new_body.append(new_node)

    def visit_augassign(self: Any, new_body: list, node: Any) -> None:
        if self.coarse_granularity and not isinstance(node.target, ast.Name):
            keep_statement(self, new_body, node, f"{type(node.op).__name__.lower()}_assign")
        else:
            aug(self, new_body, node)

    def visit_annassign(self: Any, new_body: list, node: Any) -> None:
        if self.coarse_granularity and not isinstance(node.target, ast.Name) and node.value:
            keep_statement(self, new_body, node, "assign")
        else:
            ann(self, new_body, node)

    rewrite.visit_augassign = visit_augassign
    rewrite.visit_annassign = visit_annassign


def coarse_decorators(rewrite: Any) -> None:
    """Under coarse capture, let a function or class have a decorator that is not a call.

    noWorkflow's coarse mode (``-cg``, 2.1.3) leaves a decorator such as ``@property`` or
    ``@register`` unrewritten, so ``RewriteAST._ast_num_from_component_id`` takes its fallback,
    which calls ``create_code_component(node, name, mode)`` with the source text where the
    component type goes and reads a ``name`` the node does not have: "AttributeError: 'Name'
    object has no attribute 'name'" before the script ran. Here the fallback names the node
    with its source text and records it with its type, as the fine rewrite does.
    """
    import pyposast
    from noworkflow.now.collection.prov_definition.ast_elements import ast_num

    original = rewrite._ast_num_from_component_id

    def _ast_num_from_component_id(self: Any, citem: Any, node: Any, node_type: str, mode: str,
                                   fallback: bool = True) -> Any:
        if fallback and not hasattr(citem, "code_component_id") and not hasattr(node, "name"):
            node.name = pyposast.extract_code(self.lcode, node)
            id_ = self.create_code_component(node, node_type, mode)
            self.create_composition(id_, *self.composition_edge)
            return ast_num(id_)
        return original(self, citem, node, node_type, mode, fallback)

    rewrite._ast_num_from_component_id = _ast_num_from_component_id
