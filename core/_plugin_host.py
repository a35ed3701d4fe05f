"""A process of its own for one plugin: it imports the plugin, then calls its hooks when asked, over a pipe.

Why a process and not a thread: a plugin is someone else's code. In a thread of the app, ``os._exit``, a
segfault in a C extension or an import that never returns takes the whole app with it. In its own process
it takes only that process; the app sees the pipe close, counts a failure, and starts the plugin again on
its next event (a plugin that keeps crashing is disabled like one that keeps raising).

The parent side is :class:`PluginProcess` (one child) and :class:`IsolatedPlugin` (what the
:class:`core.events.EventBus` calls: ``on_start``/``on_event``/``on_stop`` forwarded to the child, which
is started again after a crash). The child runs ``python -m core._plugin_host``.

Protocol: pickled tuples over the child's stdin and its original stdout (a plugin's ``print`` goes to
stderr, so that it cannot corrupt the pipe). Parent to child: ``("load", spec, sys_path)`` once, then
``("call", seq, hook, args)`` and ``("exit",)``. Child to parent: ``("hello", info)`` once, then
``("done", seq, problem)`` (the plugin's own ``problem`` attribute after the call, or None),
``("error", seq, one_line, traceback)`` and, at any time, ``("log", level, name, text)``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = [
    "IsolatedPlugin",
    "PluginCrashed",
    "PluginInfo",
    "PluginLoadError",
    "PluginProcess",
    "PluginSpec",
    "RemoteError",
]

log = logging.getLogger(__name__)

# The folder that holds the ``core`` package: the child must import this very copy of it.
_ROOT = str(Path(__file__).resolve().parents[1])


@dataclass(frozen=True, slots=True)
class PluginSpec:
    """What to import in the child.

    Attributes:
        kind: ``"file"`` (a ``.py`` file or a package's ``__init__.py``) or ``"entry_point"``.
        name: the fallback name: the file's stem or the entry point's name.
        target: the file path, or the entry point's value (``module:attr``).
        location: where it was found, for messages.
    """

    kind: str
    name: str
    target: str
    location: str = ""


@dataclass(frozen=True, slots=True)
class PluginInfo:
    """What the child learned on import: the plugin's shape, or why it cannot be used."""

    name: str
    hooks: tuple[str, ...] = ()
    schema: Mapping[str, Any] = field(default_factory=dict)
    api_version: int | None = None
    error: str | None = None
    details: str = ""


class PluginLoadError(Exception):
    """The plugin's process could not load it: it crashed, took too long, or the import failed."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details


class PluginCrashed(Exception):
    """The plugin's process ended while a hook was running (or could not be reached)."""


class RemoteError(Exception):
    """A hook raised in the plugin's process; the text is ``"Type: message"`` as the plugin raised it."""

    def __init__(self, one_line: str, details: str = "") -> None:
        super().__init__(one_line)
        self.one_line = one_line
        self.details = details


_DEAD = object()


def _exit_text(code: int | None) -> str:
    if code is None:
        return "its process stopped answering"
    if code < 0:
        try:
            return f"its process was killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"its process was killed by signal {-code}"
    return f"its process exited with code {code}"


class PluginProcess:
    """One child process hosting one plugin.

    Args:
        spec: what to import.
        start: start the process now (its import runs in the background; see :meth:`wait_loaded`).
    """

    def __init__(self, spec: PluginSpec) -> None:
        self.spec = spec
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, env.get("PYTHONPATH", "")) if p)
        if getattr(sys, "frozen", False):  # a frozen app runs its own executable in host mode
            command = [sys.executable, "--ghostface-plugin-host"]
        else:
            command = [sys.executable, "-m", "core._plugin_host"]
        self._proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, close_fds=True
        )
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._out = Connection(os.dup(self._proc.stdin.fileno()), readable=False)
        self._in = Connection(os.dup(self._proc.stdout.fileno()), writable=False)
        self._proc.stdin.close()
        self._proc.stdout.close()
        self._replies: queue.Queue[object] = queue.Queue()
        self._send_lock = threading.Lock()
        self._seq = 0
        self._dead = False
        self.info: PluginInfo | None = None
        self._reader = threading.Thread(target=self._read, name=f"plugin-host-{spec.name}", daemon=True)
        self._reader.start()
        self._send(("load", spec, list(sys.path)))

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def alive(self) -> bool:
        return not self._dead and self._proc.poll() is None

    def _send(self, message: tuple[Any, ...]) -> None:
        try:
            with self._send_lock:
                self._out.send(message)
        except (OSError, ValueError) as exc:  # the child is gone: its pipe is closed
            raise PluginCrashed(self._death()) from exc

    def _read(self) -> None:
        while True:
            try:
                message = self._in.recv()
            except (EOFError, OSError):
                break
            except Exception:  # an unreadable message: the protocol is broken, treat it as a crash
                log.exception("plugin %r sent an unreadable message", self.spec.name)
                break
            if message[0] == "log":
                _, level, name, text = message
                logging.getLogger(name).log(level, "%s", text)
            else:
                self._replies.put(message)
        self._dead = True
        self._replies.put(_DEAD)
        self._in.close()

    def _death(self) -> str:
        try:
            code = self._proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            code = None
        return _exit_text(code)

    def wait_loaded(self, timeout: float, limit_s: float | None = None) -> PluginInfo:
        """The plugin's shape once the child imported it.

        Args:
            timeout: how long to wait now.
            limit_s: the time limit to name in the message (default ``timeout``).

        Raises:
            PluginLoadError: the import failed, crashed the child or took longer than ``timeout``
                (the child is then killed).
        """
        if self.info is not None:
            return self.info
        try:
            message = self._replies.get(timeout=max(0.0, timeout))
        except queue.Empty:
            self.kill()
            limit = timeout if limit_s is None else limit_s
            raise PluginLoadError(f"took longer than {limit:g} s to load; skipped") from None
        if message is _DEAD:
            raise PluginLoadError(f"crashed while loading: {self._death()}")
        assert isinstance(message, tuple) and message[0] == "hello"
        info: PluginInfo = message[1]
        self.info = info
        if info.error:
            self.close(1.0)
            raise PluginLoadError(info.error, info.details)
        return info

    def call(self, hook: str, *args: Any) -> str | None:
        """Run ``hook(*args)`` in the child and wait for it to finish; the plugin's ``problem`` after it.

        Raises:
            RemoteError: the hook raised.
            PluginCrashed: the child ended (or was killed) before answering.
        """
        self._seq += 1
        seq = self._seq
        self._send(("call", seq, hook, args))
        while True:
            message = self._replies.get()
            if message is _DEAD:
                self._replies.put(_DEAD)  # later waiters must see it too
                raise PluginCrashed(self._death())
            assert isinstance(message, tuple)
            if message[1] != seq:  # an answer to a call abandoned earlier
                continue
            if message[0] == "error":
                raise RemoteError(message[2], message[3])
            return message[2] if len(message) > 2 else None

    def close(self, timeout: float = 2.0) -> None:
        """Ask the child to exit; kill it if it does not within ``timeout`` seconds."""
        if self._proc.poll() is None:
            try:
                self._send(("exit",))
            except PluginCrashed:
                pass
            try:
                self._proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._out.close()

    def kill(self) -> None:
        """End the child now (a hung hook); a call waiting on it raises :class:`PluginCrashed`."""
        if self._proc.poll() is None:
            self._proc.kill()
            try:
                self._proc.wait(timeout=5.0)
            except subprocess.TimeoutExpired:  # pragma: no cover - a kill is not refused
                log.warning("plugin %r: process %d did not end after kill", self.spec.name, self.pid)


def _context_payload(context: Any) -> dict[str, Any]:
    """The parts of a :class:`core.plugins.PluginContext` that can cross to another process."""
    import pickle

    extras: dict[str, Any] = {}
    for key, value in dict(context.extras).items():
        try:
            pickle.dumps(value)
        except Exception:  # noqa: BLE001 - an app object (a window, a lock) stays in the app
            log.debug("context extra %r is not passed to an isolated plugin", key)
            continue
        extras[key] = value
    return {
        "name": context.name,
        "settings": dict(context.settings),
        "data_dir": context.data_dir,
        "session_started": context.session_started,
        "app_data_dir": context.app_data_dir,
        "extras": extras,
    }


class IsolatedPlugin:
    """A plugin living in a child process, with the hooks the bus calls.

    A crash (the process ends during a hook) raises :class:`PluginCrashed` for that call, counted by the
    bus as a failure; the next call starts a new process, runs ``on_start`` again with the last context,
    then the hook. ``on_stop`` ends the process cleanly.

    Args:
        spec: what the process imports.
        process: the process that already imported it.
        info: what it reported.
        load_timeout_s: how long a restart may take to import the plugin.
    """

    def __init__(
        self, spec: PluginSpec, process: PluginProcess | None, info: PluginInfo, load_timeout_s: float
    ) -> None:
        self.spec = spec
        self.NAME = info.name
        self.SETTINGS = dict(info.schema)
        self.API_VERSION = info.api_version
        self.hooks = info.hooks
        self.load_timeout_s = load_timeout_s
        self._process = process
        self._context: Any = None
        self._lock = threading.Lock()
        # The plugin's own `problem` as its process last reported it (after each hook call).
        self.problem: str | None = None

    def __repr__(self) -> str:
        return f"<isolated plugin {self.NAME!r} from {self.spec.location or self.spec.target}>"

    @property
    def pid(self) -> int | None:
        """The process id now, or None when no process runs."""
        process = self._process
        return process.pid if process is not None and process.alive else None

    def on_start(self, context: Any) -> None:
        self._context = context
        self._forward("on_start", _context_payload(context))

    def on_event(self, event: Any) -> None:
        self._forward("on_event", event)

    def on_stop(self) -> None:
        process = self._process
        if process is None or not process.alive:
            # The process that on_start set up is gone (it crashed): there is nothing to stop, and
            # starting a new one only to stop it would run on_start for nothing.
            self.suspend()
            return
        try:
            self._forward("on_stop")
        finally:
            self.suspend()

    def suspend(self) -> None:
        """End the process; the next hook call starts a new one."""
        with self._lock:
            process, self._process = self._process, None
        if process is not None:
            process.close()

    def terminate(self) -> None:
        """Kill the process now (the bus gave up on it); a hook waiting on it raises at once."""
        process = self._process
        if process is not None:
            process.kill()

    def _live_process(self, hook: str) -> PluginProcess:
        with self._lock:
            process = self._process
            if process is not None and process.alive:
                return process
            if process is not None:
                process.close(0.5)
            process = self._process = PluginProcess(self.spec)
        try:
            process.wait_loaded(self.load_timeout_s)
        except PluginLoadError as exc:
            raise PluginCrashed(f"could not be started again: {exc}") from None
        if hook != "on_start" and "on_start" in self.hooks and self._context is not None:
            process.call("on_start", _context_payload(self._context))
        return process

    def _forward(self, hook: str, *args: Any) -> None:
        if hook not in self.hooks and hook != "on_start":
            return
        process = self._live_process(hook)
        if hook in self.hooks:
            self.problem = process.call(hook, *args)


# ------------------------------------------------------------------------------------------ child


class _Forward(logging.Handler):
    """Sends the plugin's log records to the app, which logs them under the same logger name."""

    def __init__(self, send: Any) -> None:
        super().__init__(logging.INFO)
        self._send = send

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._send(("log", record.levelno, record.name, self.format(record)))
        except Exception:  # noqa: BLE001 - the app is gone; nothing left to tell
            pass


def _load(spec: PluginSpec) -> object:
    from core import plugins

    if spec.kind == "file":
        return plugins._instantiate(plugins._import_file(spec.name, Path(spec.target)))
    import importlib.metadata

    entry = importlib.metadata.EntryPoint(spec.name, spec.target, plugins.ENTRY_POINT_GROUP)
    return plugins._instantiate(entry.load())


def _context(payload: dict[str, Any]) -> Any:
    from core.plugins import PluginContext

    return PluginContext(
        name=payload["name"],
        settings=MappingProxyType(payload["settings"]),
        data_dir=payload["data_dir"],
        logger=logging.getLogger(f"ghostface.plugin.{payload['name']}"),
        session_started=payload["session_started"],
        app_data_dir=payload["app_data_dir"],
        extras=MappingProxyType(payload["extras"]),
    )


# Sends one protocol message (a tuple) to the app.
_Send = Callable[[tuple[Any, ...]], None]


def _connect() -> tuple[Connection, _Send]:
    """Take over stdin and stdout as the pipe to the app and route logging through it.

    Returns:
        The connection messages come in on, and a thread-safe function that sends one to the app.
    """
    # The pipe owns the real stdout; fd 1 becomes stderr so a plugin's print() cannot corrupt it.
    out_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    # Ctrl+C in a terminal reaches the whole process group: the app decides when its plugins stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn_in = Connection(os.dup(0), writable=False)
    conn_out = Connection(out_fd, readable=False)
    lock = threading.Lock()

    def send(message: tuple[Any, ...]) -> None:
        # A plugin's threads log too: one message at a time on the pipe.
        with lock:
            conn_out.send(message)

    logging.root.handlers = [_Forward(send)]
    logging.root.setLevel(logging.INFO)
    return conn_in, send


def _hello(spec: PluginSpec, send: _Send) -> object | None:
    """Import and check the plugin, and tell the app what it is (or why it cannot run).

    Returns:
        The plugin object, or None when it failed to load or is not a valid plugin.
    """
    from core import plugins

    try:
        obj = _load(spec)
    except BaseException as exc:  # noqa: BLE001 - SystemExit at import too: report, do not vanish
        details = "".join(traceback.format_exception(exc))
        send(("hello", PluginInfo(spec.name, error=plugins._one_line(exc), details=details)))
        return None
    name, problem = plugins._check(obj, spec.name)
    if problem:
        send(("hello", PluginInfo(name, error=problem)))
        return None
    hooks = tuple(h for h in plugins.HOOKS if callable(getattr(obj, h, None)))
    send(("hello", PluginInfo(name, hooks, plugins.settings_schema(obj), getattr(obj, "API_VERSION", None))))
    return obj


def _problem(obj: object) -> str | None:
    """The plugin's optional ``problem`` attribute as one line of text (None when all is well)."""
    try:
        value = getattr(obj, "problem", None)
    except Exception:  # noqa: BLE001 - a property that raises reports nothing
        return None
    return str(value)[:500] if value else None


def _serve(obj: object, conn_in: Connection, send: _Send) -> None:
    """Call the plugin's hooks as the app asks, until it says exit or goes away."""
    from core import plugins

    loop: asyncio.AbstractEventLoop | None = None
    while True:
        try:
            message = conn_in.recv()
        except EOFError:  # the app is gone
            break
        if message[0] == "exit":
            break
        _, seq, hook, args = message
        if hook == "on_start":
            args = (_context(args[0]),)
        try:
            result = getattr(obj, hook)(*args)
            if inspect.isawaitable(result):
                # One loop for the plugin's life, so what on_start creates can be awaited later.
                loop = loop or asyncio.new_event_loop()
                loop.run_until_complete(result)
        except BaseException as exc:  # noqa: BLE001 - SystemExit in a hook is a failure, not an exit
            send(("error", seq, plugins._one_line(exc), "".join(traceback.format_exception(exc))))
        else:
            send(("done", seq, _problem(obj)))
    if loop is not None:
        loop.close()


def main() -> int:
    """The child's loop (``python -m core._plugin_host``)."""
    conn_in, send = _connect()
    try:
        _, spec, sys_path = conn_in.recv()
    except EOFError:
        return 0
    # Before the plugin is imported: it must find what the app's own sys.path finds.
    sys.path[:] = [p for p in sys_path if p] + [p for p in sys.path if p not in sys_path]
    obj = _hello(spec, send)
    if obj is None:
        return 0
    _serve(obj, conn_in, send)
    time.sleep(0)  # let the log handler's last records out
    return 0


if __name__ == "__main__":
    # Run the copy imported under its real name, so that what it pickles (PluginInfo) is found by the
    # app as core._plugin_host.PluginInfo, not as __main__.PluginInfo.
    from core._plugin_host import main as _main

    sys.exit(_main())
