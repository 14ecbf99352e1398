"""Control dependencies: the conditions that decided whether an operation ran, or whether a name
it reads was reassigned before it.

What noWorkflow records (2.1.3, measured): a `condition` dependency from every evaluation made
inside an executed `if`/`elif`/`else` or `while` body to the evaluation of its test, within one
activation (a function's body sees only its own conditions). It misses, and this module adds:
- calls: a call evaluation gets the conditions of the function it calls, not of its caller, so
  `if fit: model.fit(X)` leaves the call without a condition;
- `for` loops: nothing in the body depends on the iterable (only the loop variable does, as data),
  so `for _ in range(epochs): w = step(w)` does not depend on `epochs`;
- the skipped branch: `if normalize: X = scale(X)` with `normalize` False leaves the later read
  of `X` depending on the `X = ...` before the `if` alone, although the test decided that `X`
  was not reassigned; the same for a loop that ran zero times or stopped earlier;
- early exits: after `if loss < tol: break` (or `continue`, or `return` in a function), what
  runs later in the loop (function) ran because the test let it, and the test that broke out
  decided the loop's last values.
It also records too much: a failed test of an `if ... elif` chain is never taken off the
activation's conditions, so every later evaluation of the function or cell depends on it. The
capture now rewrites `elif` tests so that this does not happen
(`capture.environment.balance_elif_conditions`); in trials recorded before, those edges are
dropped here: noWorkflow's conditions on the tests of the statements below are replaced by this
module's, and kept as recorded only for tests it does not scope (a comprehension's `if`, `a if
test else b`).

The structure comes from the statements themselves: noWorkflow stores a code component per
`if` (one per `elif` too), `while` and `for`, whose name is the statement's source text exactly
as it ran (for a notebook cell, after IPython's transformations), with its position. Parsing it
gives the test (or iterable) expression, found among the components by its position, and the
names the statement may assign or call methods on. The evaluations then say which test
evaluation is the one that decided: the latest one before the operation.
"""
from __future__ import annotations

import ast
from bisect import bisect_left
from dataclasses import dataclass, replace
from typing import Iterator, NamedTuple, Sequence

from .types import TOP_BLOCKS, GraphView

__all__ = ["ControlFlow", "Parts", "leaves", "may_assign", "statement_parts"]

_STATEMENTS = ("if", "while", "for")
_TOP = 0  # the scope of the script and of every cell of a notebook: one module namespace
_CHUNK = 500
_END = (1 << 62, 0)  # after any position

Position = tuple[int, int]  # (line, column) as noWorkflow stores a component's first or last character


@dataclass(frozen=True)
class Statement:
    """An `if`/`elif`/`while`/`for` of the experiment, as a code component."""

    component: int
    kind: str  # if (an elif too), while, for
    container: int  # the code block (script, cell, function) it belongs to
    scope: int | None  # the namespace whose names it assigns (`ControlFlow._scope`)
    start: Position
    end: Position
    header_end: Position  # end of the test (or of the iterable of a `for`): the body is after it
    assigns: frozenset[str]  # names its body may rebind or change through a method call


class Parts(NamedTuple):
    """What the source text of a statement tells."""

    test: tuple[Position, Position]  # first and last character of its test (a `for`'s iterable)
    assigns: frozenset[str]  # `may_assign` of its body and `else`
    leaves: frozenset[str]  # "loop" when a branch may `break`/`continue`, "function" when it may `return`


def statement_parts(text: str, kind: str, line: int, column: int) -> Parts | None:
    """The parts of a statement, from its source text as noWorkflow stores it (first line without
    its indentation; `column` is where it starts). None when the text does not parse."""
    if kind == "if" and text.startswith("elif"):
        text = "if  " + text[4:]  # same length: the columns of the test stay where they are
    offset = 0
    if column:
        text, offset = "if 1:\n" + " " * column + text, 1
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    node = tree.body[0]
    if offset and isinstance(node, ast.If):  # the `if 1:` put around it above
        node = node.body[0]
    if not isinstance(node, (ast.If, ast.While, ast.For)):
        return None
    expression = node.iter if isinstance(node, ast.For) else node.test
    if expression.end_lineno is None or expression.end_col_offset is None:
        return None
    first = (line + expression.lineno - 1 - offset, expression.col_offset)
    last = (line + expression.end_lineno - 1 - offset, expression.end_col_offset)
    names = may_assign(node.body + node.orelse)
    if isinstance(node, ast.For):
        names |= may_assign([node.target])
    return Parts((first, last), names, leaves(node.body + node.orelse) if isinstance(node, ast.If) else frozenset())


def leaves(nodes: Sequence[ast.AST]) -> frozenset[str]:
    """How these statements may end the code around them early: "loop" for a `break` or
    `continue` of the enclosing loop, "function" for a `return`. A `raise` is left out: the
    operations after it run only when it did not, but an exception is usually an error."""
    found: set[str] = set()
    stack = [(node, False) for node in nodes]  # (node, inside a loop of its own)
    while stack:
        node, looped = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        if isinstance(node, (ast.Break, ast.Continue)) and not looped:
            found.add("loop")
        elif isinstance(node, ast.Return):
            found.add("function")
        inner = looped or isinstance(node, (ast.For, ast.AsyncFor, ast.While))
        stack.extend((child, inner) for child in ast.iter_child_nodes(node))
    return frozenset(found)


def may_assign(nodes: Sequence[ast.AST]) -> frozenset[str]:
    """Names these statements may rebind (`X = ...`, `X += 1`, `for X in`, `del X`, `def X`),
    change in place through a target (`X[0] = ...`, `X.a = ...`) or through a method call
    (`X.fit(...)`, `X.append(...)`). Nested function and class bodies are another scope: only
    their own name counts."""
    names: set[str] = set()
    stack = list(nodes)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            stack.extend(node.decorator_list)
            continue
        if isinstance(node, ast.Lambda):
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.Attribute, ast.Subscript)) and isinstance(node.ctx, (ast.Store, ast.Del)):
            base = _base_name(node)
            if base:
                names.add(base)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            base = _base_name(node.func)
            if base:
                names.add(base)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        stack.extend(ast.iter_child_nodes(node))
    return frozenset(names)


def _base_name(node: ast.AST) -> str | None:
    """`X` of `X.a.b`, `X[0]`, `X.fit`."""
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


class ControlFlow:
    """The control dependencies of one trial's evaluations, computed on demand (see the module
    docstring): `of(eid)` is what `TrialGraph.backward_edges` follows as CONTROL edges."""

    def __init__(self, graph: GraphView) -> None:
        self.graph, self.top_blocks = graph, TOP_BLOCKS
        self.evaluations, self.deps = graph.evaluations, graph.deps  # loaded: made on the first slice
        self._found: dict[int, list[int]] = {}
        # code component -> (first, last, container, type, mode, name)
        self.spans: dict[int, tuple[Position, Position, int | None, str, str, str]] = {}
        for cid, kind, mode, name, line, column, last_line, last_column, container in graph.conn.execute(
                "SELECT id, type, mode, name, first_char_line, first_char_column, last_char_line,"
                " last_char_column, container_id FROM code_component WHERE trial_id = ?", (graph.trial_id,)):
            self.spans[cid] = ((line or 0, column or 0), (last_line or 0, last_column or 0), container,
                               kind or "", mode or "", name or "")
        self.statements: list[Statement] = []
        self.test_of: dict[int, int] = {}  # component of a test (or iterable) -> its statement's
        # code block -> its `if`s that may end their loop or function early: the code after
        # them that they decide about (after, up to), and their component
        self.exits: dict[int | None, list[tuple[Position, Position, int]]] = {}
        self._find_statements()
        self.by_container: dict[int | None, list[Statement]] = {}
        for statement in self.statements:
            self.by_container.setdefault(statement.container, []).append(statement)
        self.by_name: dict[str, list[Statement]] = {}
        for statement in self.statements:
            for name in statement.assigns:
                self.by_name.setdefault(name, []).append(statement)
        self.tests: dict[int, list[tuple[float, int]]] = {s.component: [] for s in self.statements}
        self._load_tests()
        # tests noWorkflow records conditions on that are not scoped here (comprehension `if`s,
        # `a if test else b`): their edges are kept as recorded
        self.conditions = graph.conditions
        self.loose = {self.evaluations[test][1] for test in set().union(*self.conditions.values())} - set(self.test_of)
        # component -> (the test evaluations of the innermost statement whose body holds it and
        # of the `if`s before it that could have left its loop or function, the statements that
        # may assign the name it reads, outside of which it is)
        self._placed: dict[int, tuple[tuple[list[tuple[float, int]], ...], tuple[Statement, ...]]] = {}

    def _find_statements(self) -> None:
        by_span: dict[tuple[int | None, Position, Position], list[int]] = {}
        for cid, (first, last, container, kind, _mode, _name) in self.spans.items():
            if kind not in _STATEMENTS and kind != "syntax":
                by_span.setdefault((container, first, last), []).append(cid)
        leaving = []
        for cid, (first, last, container, kind, _mode, text) in self.spans.items():
            if kind not in _STATEMENTS or container is None:
                continue
            parts = statement_parts(text, kind, *first)
            if parts is None:
                continue
            statement = Statement(cid, kind, container, self._scope(container), first, last, parts.test[1],
                                  parts.assigns)
            self.statements.append(statement)
            for test in by_span.get((container, *parts.test), ()):
                self.test_of[test] = cid
            if parts.leaves:
                leaving.append((len(self.statements) - 1, parts.leaves))
        for index, how in leaving:
            self._leaves(index, how)

    def _leaves(self, index: int, how: frozenset[str]) -> None:
        """Record an `if` that may `break`, `continue` or `return`: what runs after it in its loop
        (or function) ran because its test let it; and it decides, as much as the loop does,
        whether the loop's names are assigned again."""
        statement = self.statements[index]
        if "function" in how:
            self.exits.setdefault(statement.container, []).append((statement.end, _END, statement.component))
        loops = [s for s in self.statements if s.kind != "if" and s.container == statement.container
                 and s.header_end < statement.start and statement.end <= s.end]
        loop = max(loops, key=lambda s: s.start, default=None)
        if "loop" in how and loop is not None:
            self.exits.setdefault(statement.container, []).append((statement.end, loop.end, statement.component))
            self.statements[index] = replace(statement, assigns=statement.assigns | loop.assigns)

    def _load_tests(self) -> None:
        """Every evaluation of a test, per statement, in execution order."""
        components = list(self.test_of)
        for start in range(0, len(components), _CHUNK):
            chunk = components[start:start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for eid, checkpoint, component in self.graph.conn.execute(
                    "SELECT id, checkpoint, code_component_id FROM evaluation"  # noqa: S608
                    f" WHERE trial_id = ? AND code_component_id IN ({marks})", (self.graph.trial_id, *chunk)):
                self.tests[self.test_of[component]].append((checkpoint or 0.0, eid))
        for evaluations in self.tests.values():
            evaluations.sort()

    # -- where a component sits ---------------------------------------------------------------

    def _scope(self, container: int | None) -> int | None:
        """The namespace of a code block: a function's own, or one for the script and all cells."""
        kind = self.spans[container][3] if container in self.spans else ""
        return _TOP if kind in self.top_blocks else container

    def _inside(self, statement: Statement, component: int) -> bool:
        first, _last, container, _kind, _mode, _name = self.spans[component]
        return container == statement.container and statement.start <= first <= statement.end

    def _place(self, component: int) -> tuple[tuple[list[tuple[float, int]], ...], tuple[Statement, ...]]:
        first, _last, container, kind, mode, name = self.spans.get(component, ((0, 0), (0, 0), None, "", "", ""))
        body = [s for s in self.by_container.get(container, ()) if s.component != component
                and s.start <= first <= s.end and first > s.header_end]
        innermost = max(body, key=lambda s: s.start, default=None)
        controls = [self.tests[innermost.component]] if innermost else []
        controls += [self.tests[exit] for after, upto, exit in self.exits.get(container, ()) if after < first <= upto]
        writers: tuple[Statement, ...] = ()
        if kind == "name" and "r" in mode:
            writers = tuple(s for s in self.by_name.get(name, ()) if not self._inside(s, component))
        placed = self._placed[component] = (tuple(controls), writers)
        return placed

    # -- the edges ----------------------------------------------------------------------------

    def of(self, eid: int) -> list[int]:
        """The test evaluations `eid` depends on: the one that let it run, and those that
        decided whether the name it reads was reassigned since its reaching definition.
        Remembered: the slices of several tags mostly share their evaluations."""
        found = self._found.get(eid)
        if found is None:
            found = self._found[eid] = self._control(eid)
        return found

    def _control(self, eid: int) -> list[int]:
        moment, component, _obj = self.evaluations[eid]
        found = [test for test in self.conditions.get(eid, ()) if self.evaluations[test][1] in self.loose] \
            if self.loose else []
        controls, writers = self._placed.get(component) or self._place(component)
        here = (moment, eid)
        for tests in controls:
            index = bisect_left(tests, here) - 1
            if index >= 0:
                found.append(tests[index][1])
        if writers:
            found.extend(self._undecided(eid, writers, here))
        return found

    def _undecided(self, eid: int, writers: tuple[Statement, ...], here: tuple[float, int]) -> Iterator[int]:
        """Tests evaluated between the read's reaching definition and the read, of statements
        of the definition's code block that may have reassigned the name."""
        definition = next((dep for dep, kind in self.deps.get(eid, ()) if kind == "assignment"), None)
        if definition is None:  # none recorded (a global, a builtin): every test before the read
            since, block = None, self.spans.get(self.evaluations[eid][1], (None, None, None))[2]
        else:
            moment, component, _obj = self.evaluations[definition]
            since, block = (moment, definition), self.spans.get(component, (None, None, None))[2]
        scope = self._scope(block)
        for statement in writers:
            if statement.scope == scope:
                test = self._latest(statement, here, since)
                if test is not None:
                    yield test

    def _latest(self, statement: Statement, before: tuple[float, int], after: tuple[float, int] | None) -> int | None:
        """The last evaluation of the statement's test before `before` (and after `after`)."""
        tests = self.tests[statement.component]
        index = bisect_left(tests, before) - 1
        if index < 0 or (after is not None and tests[index] <= after):
            return None
        return tests[index][1]
