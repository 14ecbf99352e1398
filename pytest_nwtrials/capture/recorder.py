"""The tag recorder active inside a captured child process.

`pytest_nwtrials.tag` hands values to the recorder installed here; outside a capture there is
none and tagging is a no-op. Data (numbers, strings, containers, arrays, frames, sparse
matrices) is encoded at tag time, so a later change to it does not change what was recorded.
Every other object (a model, anything kept as an opaque object) is kept by reference and
encoded when the run ends (`finish`): such objects are tagged to be kept, and are often tagged
before they are complete, as ``model = tag("model", RandomForestClassifier())`` before
``model.fit(X, y)``. Their record says so (``"state": "end of run"``).

A name tagged several times keeps its last value. Tagging in a loop is the usual reason; a name
recorded from two places in the code with different values is more likely a mistake, so the
recorder keeps where each name was recorded and `notes` tells about it.
"""
from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from ..redaction import Secrets
from ..compare.tolerance_rule import RULE, is_tolerance

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
NW_TAGS_SITE = "ini nw_tags"
END_OF_RUN = "end of run"  # a tag record's "state": encoded when the run ended, not when tagged

_active: Recorder | None = None


def active() -> Recorder | None:
    """The recorder of this process, or None when not running under capture."""
    return _active


def install(recorder: Recorder | None) -> None:
    global _active
    _active = recorder


def check_tag_name(name: object) -> str:
    """Reject tag names that could not be reported or stored unambiguously."""
    if not isinstance(name, str):
        raise TypeError(f"tag name must be a string, got {type(name).__name__}: {name!r:.60}")
    if not name.strip():
        raise ValueError("tag name must not be empty")
    return name


# ``now_variable`` is noWorkflow's older name of ``now_tag_variable`` (the name its 2023 notebook
# tutorial uses): both are provided, doing the same
TAG_VARIABLE_NAMES = ("now_tag_variable", "now_variable")


def provide_tag_variable(builtin: Any, now_tag_variable: Any) -> None:
    """Make `now_tag_variable` the experiment's ``now_tag_variable`` and ``now_variable``
    builtins; `builtin` is the builtins module or a namespace's ``__builtins__`` dict."""
    for name in TAG_VARIABLE_NAMES:
        if isinstance(builtin, dict):
            builtin[name] = now_tag_variable
        else:
            setattr(builtin, name, now_tag_variable)


def provide_plain_tag_variable(builtin: Any, recorder: Recorder) -> None:
    """``now_tag_variable`` (and ``now_variable``) for a run without noWorkflow
    (``--nw-capture=off``), scripts and notebooks alike: records the tag and returns `value`, as
    noWorkflow's own does, so ``x = now_tag_variable("x", f())`` keeps working."""

    def now_tag_variable(var_name: Any, value: Any) -> Any:
        recorder.record(check_tag_name(var_name), value, source="now_tag_variable")
        return value

    provide_tag_variable(builtin, now_tag_variable)


def check_tolerance(what: str, value: object) -> float | None:
    if value is None:
        return None
    if not is_tolerance(value) or not isinstance(value, (int, float)):
        raise ValueError(f"tag {what} must be {RULE}, got {value!r}")
    return float(value)


@dataclass
class TagRecord:
    """The last value recorded under one tag name, how often and from where it was recorded.

    `sites` (where in the code, in order of first use) and `varied` (a later value differed
    from an earlier one) feed the notes; they are not part of the stored record.
    """

    value: Any
    count: int = 1
    rtol: float | None = None
    atol: float | None = None
    source: str = "tag"
    sites: list[str] = field(default_factory=list)
    varied: bool = False
    live: Any = None  # an object to encode when the run ends (see the module docstring)
    deferred: bool = False

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"value": self.value, "count": self.count, "source": self.source}
        if self.deferred:
            doc["state"] = END_OF_RUN
        if self.rtol is not None:
            doc["rtol"] = self.rtol
        if self.atol is not None:
            doc["atol"] = self.atol
        return doc


@dataclass
class Recorder:
    """Collects encoded tag values for one trial; large values go to files in `blobs_dir`.

    The value encoders (and numpy with them) are imported at the first tag, not before the
    experiment starts, so that the experiment's own imports are what capture sees.
    """

    blobs_dir: str
    secrets: Secrets = field(default_factory=Secrets)  # masked in names and values before encoding
    tags: dict[str, TagRecord] = field(default_factory=dict)
    masked: dict[str, set[str]] = field(default_factory=dict)  # tag name -> whose secrets were masked
    model_files: bool = False  # write models' skops files (values.encode): the run saves a baseline
    linkable: tuple[str, ...] = ()  # folders of blobs a value already stored there is linked from
    _blobs: Any = None

    def record(self, name: str, value: Any, *, rtol: float | None = None,
               atol: float | None = None, source: str = "tag") -> None:
        from .experiment_imports import ours

        with ours():  # the encoders it loads are not the experiment's libraries
            self._record(name, value, rtol, atol, source)

    def _record(self, name: str, value: Any, rtol: float | None, atol: float | None, source: str) -> None:
        from ..values import codec as values

        site = NW_TAGS_SITE if source == "nw_tags" else caller_site()
        hits: set[str] = set()
        name = self.secrets.mask_text(name, hits)
        if hits:
            self.masked.setdefault(name, set()).update(hits)
        deferred = not is_data(value)
        doc = None if deferred else self._encode(name, value, values)
        previous = self.tags.get(name)
        record = TagRecord(doc, 1, rtol, atol, source, [site], live=value if deferred else None, deferred=deferred)
        if previous is not None:
            record.count = previous.count + 1
            record.sites = previous.sites + [site] if site not in previous.sites else previous.sites
            same = previous.live is value if deferred and previous.deferred else previous.value == doc
            record.varied = previous.varied or not same
        self.tags[name] = record

    def _encode(self, name: str, value: Any, values: Any) -> Any:
        if self._blobs is None:
            self._blobs = values.BlobStore(self.blobs_dir, linkable=self.linkable)
        hits: set[str] = set()
        try:
            with untracked_files():
                doc = values.encode(value, self._blobs, self.secrets, hits, model_files=self.model_files)
        except OSError as exc:  # a full disk, a quota: say where, and what to do
            message = (f"could not write the value of tag {name!r} to {self.blobs_dir} ({exc.strerror or exc}); "
                       f"free space on that disk, or raise the limit on file size, and run the experiment again")
            raise (OSError(exc.errno, message) if exc.errno else OSError(message)) from None
        if hits:
            self.masked.setdefault(name, set()).update(hits)
        return doc

    def finish(self) -> None:
        """Encode the objects kept by reference, in the state the run left them in.

        Called once the experiment's code has ended and before the result is written; calling it
        again does nothing. An OSError names the tag and what to do.
        """
        from .experiment_imports import ours

        pending = [(name, record) for name, record in self.tags.items() if record.live is not None]
        if not pending:
            return
        from ..values import codec as values

        with ours():
            for name, record in pending:
                record.value = self._encode(name, record.live, values)
                record.live = None

    def record_ini_tags(self, names: Any, namespace: Any) -> None:
        """Record the ini ``nw_tags`` variables the experiment left in `namespace`, those it
        did not tag itself."""
        for name in names:
            if name in namespace and name not in self.tags:
                self.record(name, namespace[name], source="nw_tags")

    def notes(self, ini_tags: tuple[str, ...] | list[str] = ()) -> list[str]:
        """What the user should know about how names were tagged, even when the run passes."""
        notes = []
        for name, record in self.tags.items():
            if record.varied and len(record.sites) > 1:
                notes.append(f"tag {name!r} was recorded {record.count} times with different values, "
                             f"from {', '.join(record.sites)}; only its last value is kept and compared")
        if self.masked:
            notes.append(Secrets.note(self.masked))
        for name in ini_tags:
            listed = self.tags.get(name)
            if listed is not None and listed.source != "nw_tags":
                notes.append(f"{name!r} is listed in ini nw_tags and also tagged by the experiment "
                             f"({', '.join(listed.sites)}); the tagged value is kept, the variable is not recorded")
        return notes


def is_data(value: Any) -> bool:
    """Whether a tagged value is data, encoded (snapshotted) when tagged; other objects (models
    and whatever would be stored as an opaque object) are encoded when the run ends.

    Decided from the type alone, without importing numpy, pandas or scipy: a value of theirs
    exists only once the experiment imported them.
    """
    kind = type(value)
    if value is None or kind in (bool, int, float, complex, str, bytes, list, tuple, dict, set, frozenset):
        return True
    module = getattr(kind, "__module__", "") or ""
    if module.startswith("numpy"):
        numpy = sys.modules["numpy"]
        return isinstance(value, (numpy.generic, numpy.ndarray))
    pandas = sys.modules.get("pandas")
    if pandas is not None and kind in (pandas.DataFrame, pandas.Series):
        return True
    if module.startswith("scipy.sparse"):
        from ..values.sparse import is_sparse

        return is_sparse(value)
    return False


def caller_site() -> str:
    """Where the experiment's code recorded a tag: "train.py line 12" (the first frame outside
    this package and noWorkflow), or "?" when there is no such frame."""
    noworkflow = sys.modules.get("noworkflow")
    skipped: tuple[str, ...] = (_PACKAGE,)
    if noworkflow is not None and noworkflow.__file__:
        skipped += (os.path.dirname(noworkflow.__file__) + os.sep,)
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(skipped):
            return f"{os.path.basename(filename)} line {frame.f_lineno}"
        frame = frame.f_back
    return "?"


def untracked_files() -> contextlib.AbstractContextManager:
    """A block whose file accesses noWorkflow does not record.

    Under capture noWorkflow patches ``open`` for the whole process: it would record the value
    files written here as the experiment's own, and read each one whole into memory to hash it,
    doubling the memory a large array takes. Only used when noWorkflow is already loaded.
    """
    safeopen = sys.modules.get("noworkflow.now.persistence.content.safeopen")
    return safeopen.use_safe_open() if safeopen is not None else contextlib.nullcontext()
