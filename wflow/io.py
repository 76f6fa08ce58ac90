"""Files that appear whole or not at all: atomic writes, staged output directories, JSON.

- :func:`atomic_write` — the one way wflow writes a file (``FlowResult.save``, ``MLP.save``,
  figures, animations, reports): into a unique temporary file beside the target, renamed over
  it at the end; the temporary file is removed on every failure path.
- :class:`StagedOutput` — a directory of outputs written all-or-nothing: files go into a hidden
  staging directory beside the target, which is swapped in for the target at the end. An
  existing target is replaced as a whole (never mixed) when it holds a previous wflow run
  (marker file :data:`MARKER`) or is empty; otherwise it is refused unless ``overwrite=True``.
- :func:`json_dumps` — JSON that is always valid: NaN/±inf become ``null`` and the paths of
  the replaced numbers are listed under :data:`NONFINITE_KEY`.

File-system problems raise :class:`OutputError` (an ``OSError``) with a one-line message
naming the path. See ``docs/cli.md``.
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import math
import os
import secrets
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

__all__ = [
    "MARKER",
    "NONFINITE_KEY",
    "OutputError",
    "Terminated",
    "interrupt_handler",
    "signals_received",
    "atomic_write",
    "check_output_dir",
    "StagedOutput",
    "discard_stages",
    "to_jsonable",
    "json_dumps",
]

#: file that marks a directory as the output of a wflow run (safe to replace as a whole)
MARKER = ".wflow-run"
#: key under which :func:`json_dumps` lists the paths of non-finite numbers written as null
NONFINITE_KEY = "nonfinite_as_null"


class OutputError(OSError):
    """A file-system problem with an output path; the message names the path."""


class Terminated(KeyboardInterrupt):
    """SIGTERM turned into an exception, so that staged outputs are cleaned up as on Ctrl-C."""


#: signals turned into exceptions by :func:`interrupt_handler` (newest last)
_SIGNALLED: list[int] = []
#: directories this process created beside output directories (staging, moved-aside runs)
_LIVE_STAGES: set[str] = set()
_HELD = (signal.SIGINT, signal.SIGTERM)


def interrupt_handler(signum, frame):
    """Signal handler: SIGTERM → :class:`Terminated`, SIGINT → ``KeyboardInterrupt``.

    The signal is also remembered, so that :class:`StagedOutput` does not publish a run whose
    interruption was swallowed on the way (an exception raised inside a ``__del__`` is ignored
    by Python).
    """
    _SIGNALLED.append(signum)
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def signals_received() -> list[int]:
    """The signals :func:`interrupt_handler` has handled so far in this process (a copy)."""
    return list(_SIGNALLED)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


class _SignalsDeferred:
    """Record SIGINT/SIGTERM instead of acting on them until the block ends, then re-raise.

    Python runs signal handlers in the main thread between bytecodes, whichever thread the
    signal was delivered to, so swapping the Python-level handlers (not the thread's signal
    mask) is what keeps a handler from splitting the block. ``restore`` maps a signal to the
    handler to leave in place afterwards (default: the one found on entry).
    """

    def __init__(self) -> None:
        self.caught: list[int] = []
        self.restore: dict[int, Any] = {}

    def _defer(self, signum: int, frame: Any) -> None:
        self.caught.append(signum)

    def __enter__(self) -> _SignalsDeferred:
        if _main_thread():
            for s in _HELD:
                self.restore[s] = signal.signal(s, self._defer)
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        for s, handler in self.restore.items():
            signal.signal(s, handler)
        if self.caught:
            signal.raise_signal(self.caught[0])  # delivered to the restored handler
        return False


def _reserve(parent: str, prefix: str) -> str:
    """Create and register a new private directory ``parent/prefix<random>`` (registered first)."""
    while True:
        path = os.path.join(parent, prefix + secrets.token_hex(6))
        _LIVE_STAGES.add(path)  # before it exists: an interruption after mkdir still finds it
        try:
            os.mkdir(path, 0o700)
            return path
        except FileExistsError:
            _LIVE_STAGES.discard(path)
        except BaseException:
            _LIVE_STAGES.discard(path)
            raise


def _release(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
    _LIVE_STAGES.discard(path)


def discard_stages() -> None:
    """Delete the staging directories of this process's open :class:`StagedOutput` blocks.

    Runs at interpreter exit and from the ``wflow`` command after an interruption: a signal
    landing between creating a staging directory and entering the ``with`` block leaves no trace.
    """
    for stage in list(_LIVE_STAGES):
        _release(stage)


atexit.register(discard_stages)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fspath(p, name: str) -> str:
    try:
        s = os.fspath(p)
    except TypeError:
        s = None
    if not isinstance(s, str):
        raise TypeError(f"{name} must be a str or os.PathLike, got {type(p).__name__}")
    return s


def _describe(exc: OSError) -> str:
    return exc.strerror or str(exc)


# --------------------------------------------------------------------------------------------
# single files
# --------------------------------------------------------------------------------------------
def atomic_write(path, writer: Callable[[str], object], *, parents: bool = False) -> str:
    """Write ``path`` atomically: ``writer(tmp)`` fills a unique temporary file beside it.

    Parameters
    ----------
    path : str or PathLike
        Target file (its extension is kept on the temporary name, so writers that pick the
        format from it work).
    writer : callable(str)
        Writes the whole file to the given temporary path.
    parents : bool
        Create missing parent directories.

    Returns
    -------
    str : ``path``.

    Raises
    ------
    OutputError
        If the parent directory is missing, not a directory or not writable, or the path is a
        directory. Anything ``writer`` raises propagates; the temporary file is removed.
    """
    path = _fspath(path, "path")
    if path == "":
        raise OutputError("path must be a non-empty file name, got ''")
    if os.path.isdir(path):
        raise OutputError(f"cannot write {path}: it is a directory")
    directory = os.path.dirname(os.path.abspath(path))
    if parents:
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create directory {directory}: {_describe(exc)}") from None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.splitext(path)[1], dir=directory)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {_describe(exc)}") from None
    os.close(fd)
    try:
        writer(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a plain open() would give this
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


# --------------------------------------------------------------------------------------------
# output directories
# --------------------------------------------------------------------------------------------
def _nearest_existing(path: str) -> str:
    while not os.path.lexists(path):
        up = os.path.dirname(path)
        if up == path:
            break
        path = up
    return path


def check_output_dir(out, *, overwrite: bool = False) -> str:
    """Check that ``out`` can receive a staged output directory; returns its absolute path.

    Run this before a long computation: it finds every problem :class:`StagedOutput` would
    meet (empty name, a file in the way, an unwritable parent, an occupied directory).

    Raises
    ------
    OutputError
        One line naming the path: what is wrong and, for an occupied directory, the flag.
    """
    raw = _fspath(out, "out")
    if raw.strip() == "":
        raise OutputError("the output directory must be a non-empty path, got ''")
    path = os.path.abspath(raw)
    parent = os.path.dirname(path)
    if path == parent:
        raise OutputError(f"the output directory cannot be the root directory {path}")
    if os.path.lexists(path):
        if os.path.islink(path):
            raise OutputError(f"output directory {path} is a symbolic link; give the directory it points to")
        if not os.path.isdir(path):
            raise OutputError(f"output directory {path} exists and is not a directory")
        try:
            entries = os.listdir(path)
        except OSError as exc:
            raise OutputError(f"cannot read output directory {path}: {_describe(exc)}") from None
        if entries and MARKER not in entries and not overwrite:
            raise OutputError(
                f"output directory {path} is not empty and does not hold a previous wflow run; "
                "choose another directory or pass --overwrite (overwrite=True) to replace it"
            )
    anchor = _nearest_existing(parent)
    if not os.path.isdir(anchor):
        raise OutputError(f"cannot create output directory {path}: {anchor} is not a directory")
    if not os.access(anchor, os.W_OK | os.X_OK):
        raise OutputError(f"cannot create output directory {path}: {anchor} is not writable")
    return path


class StagedOutput:
    """Write a set of files into the directory ``out`` all-or-nothing.

    Files are written into a hidden staging directory beside ``out``; on a clean exit of the
    ``with`` block the staging directory (with the marker file :data:`MARKER`) takes the place
    of ``out`` — a previous ``out`` is moved aside first and deleted after the swap, so the
    directory is never a mix of two runs. On an exception (including ``KeyboardInterrupt``)
    the staging directory is deleted and ``out`` is left as it was. Inside the block SIGTERM
    raises :class:`Terminated` when it would otherwise kill the process; SIGINT/SIGTERM are
    deferred while the staging directory is created and during the final swap, and a run
    interrupted through :func:`interrupt_handler` is never published.

    Parameters
    ----------
    out : str or PathLike
        The output directory.
    overwrite : bool
        Replace an existing non-empty directory that does not hold a previous wflow run.
    info : dict, optional
        JSON-able description stored in the marker file (e.g. the command).

    Examples
    --------
    >>> with StagedOutput("wflow-out") as st:          # doctest: +SKIP
    ...     st.write_json("report.json", {"a": 1})
    """

    def __init__(self, out, *, overwrite: bool = False, info: dict | None = None):
        self.out = check_output_dir(out, overwrite=overwrite)
        self.overwrite = overwrite
        self.info = dict(info or {})
        self.files: list[str] = []
        self.stage: str | None = None
        self._sigterm: Any = None
        self._signalled = 0

    def __enter__(self) -> StagedOutput:
        self.out = check_output_dir(self.out, overwrite=self.overwrite)  # again: time has passed
        parent = os.path.dirname(self.out)
        self._signalled = len(_SIGNALLED)
        with _SignalsDeferred() as deferred:
            try:
                os.makedirs(parent, exist_ok=True)
                self.stage = _reserve(parent, ".wflow-stage-")
            except OSError as exc:
                raise OutputError(f"cannot create output directory {self.out}: {_describe(exc)}") from None
            if deferred.restore.get(signal.SIGTERM) == signal.SIG_DFL:  # would kill: clean up first
                self._sigterm = signal.SIG_DFL
                deferred.restore[signal.SIGTERM] = interrupt_handler
        return self

    def path(self, name: str) -> str:
        """Staging path for the output file ``name`` (recorded in :attr:`files`)."""
        if self.stage is None:
            raise RuntimeError("StagedOutput.path is only available inside the with block")
        if os.path.isabs(name) or ".." in name.replace("\\", "/").split("/"):
            raise ValueError(f"name must be a relative path inside the output directory, got {name!r}")
        if name not in self.files:
            self.files.append(name)
        p = os.path.join(self.stage, name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        return p

    def write_text(self, name: str, text: str) -> str:
        """Stage a UTF-8 text file; returns ``name``."""
        with open(self.path(name), "w", encoding="utf-8") as fh:
            fh.write(text)
        return name

    def write_json(self, name: str, data) -> str:
        """Stage ``data`` as JSON (:func:`json_dumps`: NaN → null, flagged); returns ``name``."""
        return self.write_text(name, json_dumps(data) + "\n")

    def _commit(self) -> None:
        stage, out = self.stage, self.out
        assert stage is not None, "commit outside the with block"
        with open(os.path.join(stage, MARKER), "w", encoding="utf-8") as fh:
            fh.write(json_dumps({"files": self.files, **self.info}) + "\n")
        os.chmod(stage, 0o777 & ~_umask())  # the stage was made 0700
        parent = os.path.dirname(out)
        aside = None
        if os.path.lexists(out):
            check_output_dir(out, overwrite=self.overwrite)  # still ours to replace?
            aside = _reserve(parent, ".wflow-old-")
            os.rename(out, os.path.join(aside, "old"))
        try:
            os.rename(stage, out)
        except BaseException:
            if aside is not None:
                os.rename(os.path.join(aside, "old"), out)
                _release(aside)
            raise
        _LIVE_STAGES.discard(stage)
        self.stage = None
        if aside is not None:
            _release(aside)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Literal[False]:
        swallowed = _SIGNALLED[self._signalled:]  # an interruption Python ignored on the way
        with _SignalsDeferred() as deferred:  # the swap is two renames: no handler between them
            try:
                if exc_type is None and not swallowed:
                    try:
                        self._commit()
                    except OutputError:
                        raise
                    except OSError as err:
                        raise OutputError(f"cannot write output directory {self.out}: {_describe(err)}") from None
            finally:
                if self.stage is not None:
                    _release(self.stage)
                    self.stage = None
                if self._sigterm is not None:
                    deferred.restore[signal.SIGTERM] = self._sigterm
                    self._sigterm = None
        if exc_type is None and swallowed:
            raise Terminated() if swallowed[-1] == signal.SIGTERM else KeyboardInterrupt()
        return False


# --------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------
def to_jsonable(obj, _path: str = "", _bad: list | None = None):
    """``obj`` as plain JSON data: numpy → Python, ``to_dict()``/dataclasses → dicts, NaN/±inf → None.

    Returns
    -------
    (data, paths) : the converted data and the dotted paths of the non-finite numbers.
    """
    bad: list[str] = [] if _bad is None else _bad
    if isinstance(obj, np.ndarray):
        obj = obj.tolist()
    elif isinstance(obj, np.generic):
        obj = obj.item()
    elif hasattr(obj, "to_dict") and callable(obj.to_dict):
        obj = obj.to_dict()
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, float):
        if not math.isfinite(obj):
            bad.append(_path or "$")
            return None, bad
        return obj, bad
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj, bad
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            key = k if isinstance(k, str) else str(k)
            out[key], _ = to_jsonable(v, f"{_path}.{key}" if _path else key, bad)
        return out, bad
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v, f"{_path}[{i}]", bad)[0] for i, v in enumerate(obj)], bad
    if isinstance(obj, os.PathLike):
        return os.fspath(obj), bad
    raise TypeError(f"{type(obj).__name__} at {_path or '$'} is not JSON serializable")


def json_dumps(obj, *, indent: int | None = 2) -> str:
    """Valid JSON for ``obj`` (see :func:`to_jsonable`).

    Non-finite numbers become ``null``; when ``obj`` is a dict and some were replaced, their
    paths are listed under the key :data:`NONFINITE_KEY` so that a reader can tell a missing
    value from a NaN.
    """
    data, bad = to_jsonable(obj)
    if bad and isinstance(data, dict):
        data[NONFINITE_KEY] = bad
    return json.dumps(data, indent=indent, ensure_ascii=False, allow_nan=False)
