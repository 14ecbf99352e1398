"""What an experiment's run depended on besides its data: libraries, its own modules, Python.

Collected in the capture process after the script ran, from the modules it imported (the
difference of ``sys.modules`` before and after), instead of noWorkflow's module analysis, which
reads and hashes the source of every imported module. Modules the capture machinery had already
imported before the script started cannot be told apart and are not listed.
"""
from __future__ import annotations

import ast
import contextlib
import hashlib
import importlib.metadata as metadata
import inspect
import itertools
import os
import platform
import sys
import types
from collections.abc import Iterator, Mapping
from typing import Any

from ..redaction import Secrets


def redacting(serialize: Any, secrets: Secrets) -> Any:
    """Wrap noWorkflow's value serializer so that the values it records have `secrets` masked."""
    if not secrets:
        return serialize

    def serialize_redacted(value: Any) -> str:
        return secrets.mask_text(serialize(value))

    return serialize_redacted


def hide_secrets(metascript: Any, serialize: Any, secrets: Secrets) -> None:
    """Set up a noWorkflow trial so that secrets reach neither its environment table nor values.

    Also keeps the trial small: noWorkflow's own deployment collector stores every ``sysconf``
    and ``confstr`` value of the machine with each trial (about 200 rows); this one stores the
    environment variables, redacted, and the few attributes that identify the machine.
    """
    metascript.serialize = redacting(serialize, secrets)
    metascript.deployment.collect_provenance = lambda: _collect_deployment(metascript, secrets)


def _collect_deployment(metascript: Any, secrets: Secrets) -> None:
    """Our version of noWorkflow's ``Deployment.collect_provenance``."""
    import getpass
    import socket

    from noworkflow.now.utils.functions import version

    attrs, trial_id = metascript.environment_attrs_store, metascript.trial_id
    with redacted_environ(secrets):
        for name, value in os.environ.items():
            attrs.add(trial_id, name, value)
    uname = platform.uname()
    for name, value in (("OS_NAME", uname.system), ("OS_RELEASE", uname.release),
                        ("OS_VERSION", uname.version), ("HOSTNAME", socket.gethostname()),
                        ("ARCH", platform.architecture()[0]), ("PWD", os.getcwd()),
                        ("PYTHON_IMPLEMENTATION", platform.python_implementation()),
                        ("PYTHON_VERSION", platform.python_version()),
                        ("NOWORKFLOW_VERSION", version())):
        attrs.add(trial_id, name, value)
    with contextlib.suppress(Exception):  # no user name in some containers
        attrs.add(trial_id, "USER", getpass.getuser())


def secrets_of(spec: Mapping[str, Any]) -> Secrets:
    """The secrets of the run a capture spec describes: this process's environment (the
    experiment's) and the spec's arguments."""
    return Secrets.from_environment(os.environ, spec.get("env_redact", ()), spec.get("argv", ()))


def skip_compositions(metascript: Any) -> None:
    """Do not store the syntax-tree composition table: nothing here reads it, and it is a
    third of what a trial adds to noWorkflow's database. Operations, values, dependencies and
    file accesses are stored as usual."""
    definition = metascript.definition

    def store_provenance() -> None:
        metascript.code_components_store.do_store(True)
        metascript.code_blocks_store.do_store(True)

    definition.store_provenance = store_provenance


def balance_elif_conditions() -> None:
    """Have each `elif` test replace the failed test before it as the condition of what follows.

    noWorkflow (2.1.3) rewrites `if a: ... elif b: ...` so that each test it evaluates pushes a
    condition on the activation and the whole statement pops one when it ends: the tests before
    the one taken stay, and every later evaluation of the function or cell depends on them. In
    a loop that runs an `elif` test on each pass, evaluation k carries k conditions: 300 passes
    stored 500,000 dependencies. Here the `elif` test pops the failed test's condition before
    pushing its own, as noWorkflow's `while` does on each pass; the `elif` body then depends on
    its own test, which `provenance/control.py` connects to the test before it. Applied once per
    process, before any code is rewritten.
    """
    from noworkflow.now.collection.prov_definition import transformer_stmt
    from noworkflow.now.collection.prov_definition.ast_elements import activation, noworkflow
    from noworkflow.now.collection.prov_definition.ast_helpers import ast_copy

    rewrite = transformer_stmt.RewriteAST
    original = rewrite.visit_If
    if getattr(original, "balanced", False):
        return

    def visit_If(self: Any, node: Any) -> Any:  # noqa: N802 (noWorkflow's visitor name)
        new = original(self, node)
        try:
            branch = new.body[0].exc.orelse  # try: raise (E0 if test0 else E1 if test1 else ...)
        except (AttributeError, IndexError):
            return new  # not the shape of 2.1.3's rewrite: left as it is
        while isinstance(branch, ast.IfExp):
            branch.test = ast_copy(ast.Call(noworkflow("remove_condition", [activation()]), [branch.test], []),
                                   branch.test)
            branch = branch.orelse
        return new

    visit_If.balanced = True  # type: ignore[attr-defined]
    rewrite.visit_If = visit_If


@contextlib.contextmanager
def redacted_environ(secrets: Secrets) -> Iterator[None]:
    """Show noWorkflow an ``os.environ`` whose secret values are replaced, while it records it.

    The experiment itself runs with the real environment; only this window is redacted.
    """
    real = os.environ
    os.environ = secrets.mask_environ(real)  # type: ignore[assignment]
    try:
        yield
    finally:
        os.environ = real


def _distribution_versions(top_level: set[str]) -> dict[str, str]:
    """Distribution name -> version for top-level module names that belong to a distribution."""
    found: dict[str, str] = {}
    missing = []
    for name in sorted(top_level):
        try:
            found[name] = metadata.version(name)  # the common case: import name == distribution name
        except (metadata.PackageNotFoundError, ValueError):
            missing.append(name)
    if missing:
        owners = metadata.packages_distributions()
        for name in missing:
            for dist in owners.get(name, ()):
                try:
                    found[dist] = metadata.version(dist)
                except metadata.PackageNotFoundError:
                    pass
    return found


def _sha1(path: str) -> str | None:
    try:
        with open(path, "rb") as handle:
            return hashlib.sha1(handle.read()).hexdigest()
    except OSError:
        return None


def collect(before: set[str], root: str) -> dict[str, Any]:
    """Libraries and local modules imported since `before`, and the Python version.

    Local modules are those whose file lies under `root` (the rootdir); they are listed by
    relative path with the SHA-1 of their source, so an edited helper module shows as a cause.
    """
    root = os.path.realpath(root)
    # a virtual environment inside the project holds libraries, not the project's own modules
    installed = tuple({os.path.realpath(p) + os.sep for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)})
    stdlib = sys.stdlib_module_names
    libraries: set[str] = set()
    local: dict[str, str | None] = {}
    for name in set(sys.modules) - before:
        module = sys.modules.get(name)
        top = name.partition(".")[0]
        if module is None or top in stdlib or top.startswith("_") or top == "pytest_nwtrials":
            continue
        path = getattr(module, "__file__", None)
        if not path:
            continue
        real = os.path.realpath(path)
        if real.startswith(root + os.sep) and not real.startswith(installed) and "site-packages" not in real:
            local[os.path.relpath(real, root).replace(os.sep, "/")] = _sha1(real)
        else:
            libraries.add(top)
    return {
        "python": platform.python_version(),
        "libraries": dict(sorted(_distribution_versions(libraries).items())),
        "modules": dict(sorted(local.items())),
    }


# ---------------------------------------------------------------------------------------------
# facts about the experiment itself, for telling variation between identical runs from a change

FACT_NAMES = 500  # names of the namespace looked at, at most: the work stays bounded
FACTS_KEPT = 50  # unseeded objects recorded, at most
_SKIPPED_TYPES = (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType, types.MethodType,
                  types.BuiltinMethodType, types.MethodWrapperType, types.WrapperDescriptorType)


def source_digest(code: str | bytes) -> str:
    """The SHA-1 of the experiment's own code (a script's bytes, a notebook's cells' code), so
    that a later comparison knows whether the code changed."""
    return hashlib.sha1(code.encode("utf-8") if isinstance(code, str) else code).hexdigest()


def experiment_facts(namespace: Mapping[str, Any], code: str | bytes | None) -> dict[str, Any]:
    """`source` (the digest of the code, when it could be read) and `unseeded` (`unseeded_objects`)
    for the trial's inputs. Never raises: the capture and the experiment come first."""
    facts: dict[str, Any] = {}
    if code is not None:
        facts["source"] = source_digest(code)
    try:
        facts["unseeded"] = unseeded_objects(namespace)
    except Exception:  # noqa: BLE001 - a namespace that cannot even be listed has nothing to say
        facts["unseeded"] = []
    return facts


def unseeded_objects(namespace: Mapping[str, Any]) -> list[dict[str, str]]:
    """The namespace's estimator-like objects whose ``random_state`` is None: scikit-learn's
    ``get_params()`` saying so, or an attribute ``random_state`` that is None. Each as its name,
    its class's qualified name and the parameter.

    Modules, classes and functions are skipped, and so are names that start with ``_``
    (IPython's history); an object whose look-ups raise is skipped too. The attribute is read
    without running the object's ``__getattr__`` or properties.
    """
    found = []
    for name, value in itertools.islice(list(namespace.items()), FACT_NAMES):
        if not isinstance(name, str) or name.startswith("_") or issubclass(type(value), _SKIPPED_TYPES):
            continue
        try:
            param = _unseeded_param(value)
        except Exception:  # noqa: BLE001 - a hostile object tells nothing, and breaks nothing
            continue
        if param is not None:
            cls = type(value)
            found.append({"name": name, "class": f"{cls.__module__}.{cls.__qualname__}", "param": param})
            if len(found) == FACTS_KEPT:
                break
    return found


def _unseeded_param(value: Any) -> str | None:
    """"random_state" when the object's random state is None, else None."""
    state = inspect.getattr_static(value, "random_state", _ABSENT)
    if state is None:
        return "random_state"
    if state is not _ABSENT and not isinstance(state, (property, types.MemberDescriptorType)):
        return None  # set to a seed or a generator
    get_params = inspect.getattr_static(value, "get_params", None)
    if not isinstance(get_params, types.FunctionType):
        return None
    params = get_params(value, deep=False)
    if type(params) is dict and "random_state" in params and params["random_state"] is None:
        return "random_state"
    return None


_ABSENT = object()
