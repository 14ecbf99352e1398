"""A pipe that tells each capture process when the pytest process that started it is gone.

The pytest process makes the pipe, keeps the only write end and never writes to it. The capture
processes (the fork server and each child it forks, a script runner started directly, the
notebook kernel) inherit the read end. However pytest ends, SIGKILL included, the system closes
the write end and a read of the read end returns end-of-file at once: on every POSIX system,
with nothing polling. A capture process that reads it kills its process group, which it leads:
itself and every process the experiment started (one that moved to a group of its own escapes).

The watching thread is a bare `_thread` thread blocked in `os.read`: it runs no Python code
until pytest is gone, so it is not in `threading.enumerate()`, not joined at exit, and neither
noWorkflow nor the experiment sees it.

A fork of the pytest process (multiprocessing in a test, say) drops its copy of the write end, so
that it does not keep capture processes alive; it makes a lifeline of its own if it runs
experiments.
"""
from __future__ import annotations

import _thread
import os
import signal
import stat
from typing import Any

_pipe: tuple[int, int, int] | None = None  # read end, write end, the pid that made them


def share() -> dict[str, Any] | None:
    """This process's lifeline, made at the first call, as a capture spec names it.

    ``{"fd": N, "id": [st_dev, st_ino], "group": G}``: the read end, which the capture process
    must inherit (`pass_fds`), what identifies the pipe, and this process's group, which a
    capture process must never kill. None where there is none (no POSIX, no free descriptor).
    """
    global _pipe
    if not hasattr(os, "fork"):
        return None
    if _pipe is None or _pipe[2] != os.getpid():
        try:
            read, write = os.pipe()  # neither end is inherited by programs this process starts
        except OSError:
            return None
        _pipe = (read, write, os.getpid())
    info = os.fstat(_pipe[0])
    return {"fd": _pipe[0], "id": [info.st_dev, info.st_ino], "group": os.getpgrp()}


def pass_fds() -> tuple[int, ...]:
    """The descriptors a capture process started by this process must inherit."""
    shared = share()
    return (shared["fd"],) if shared else ()


def _forget_in_fork() -> None:
    global _pipe
    if _pipe is not None:
        os.close(_pipe[1])  # the copy would keep the parent's capture processes alive
        _pipe = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_fork)


def guard(lifeline: dict[str, Any] | None) -> bool:
    """In a capture process: kill this process's group as soon as `lifeline` (from `share`) says
    that the pytest process is gone; True when it is watched.

    Not watched when the descriptor named is not that pipe, as in a capture process started by
    hand or without `pass_fds`. The group of pytest itself is never killed: a capture process
    that shares it (and so leads no group) kills only itself.
    """
    if not lifeline:
        return False
    fd, identity = lifeline["fd"], lifeline["id"]
    if not _is_pipe(fd, identity):
        return False
    os.set_inheritable(fd, False)  # the experiment's own programs do not hold it
    group = os.getpgrp()
    _thread.start_new_thread(_watch, (fd, identity, None if group == lifeline.get("group") else group))
    return True


def _is_pipe(fd: int, identity: list[int]) -> bool:
    try:
        info = os.fstat(fd)
    except OSError:
        return False
    return stat.S_ISFIFO(info.st_mode) and [info.st_dev, info.st_ino] == list(identity)


def _watch(fd: int, identity: list[int], group: int | None) -> None:
    try:
        while os.read(fd, 1):  # nobody writes: this returns only at end-of-file
            pass
    except OSError:  # the descriptor was closed under it: nothing left to watch
        return
    if not _is_pipe(fd, identity):  # closed and reused by the experiment meanwhile
        return
    if group is not None:
        os.killpg(group, signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)
