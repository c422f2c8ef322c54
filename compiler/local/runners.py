"""How `dsc run` runs a pod's containers: dsc's runtime steps in this process, the user's
container on the host (a private mount namespace) or in Docker.

A pod's containers run in order; the first that fails fails the pod, and what it printed is
kept in the pod's directory (`<container>.log`) and shown. `emptyDir` volumes are
directories of the pod; `activeDeadlineSeconds` and Ctrl-C kill the running process group.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from compiler import contract
from compiler.local.executor import ERROR, FAILED, SUCCEEDED, Container, Pod, PodResult
from compiler.local.workflow import Unsupported

# The host variables a user command keeps (a container would have its image's instead):
# enough to find programs and speak the user's language, nothing that points elsewhere.
HOST_VARIABLES = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ",
                  "TERM", "VIRTUAL_ENV", "PYTHONPATH")
TAIL_LINES = 20
DEADLINE_CODE = -1000  # not an exit status: the deadline killed it


class RunnerError(Exception):
    """A runner that cannot work on this machine; the message says what it needs."""


# `dsc runtime <verb>` in this process: (argv, environment, log, progress, alive) -> exit code.
RuntimeCall = Callable[[list[str], dict[str, str], Callable[[str], None],
                        Callable[[int, int, int], None], Callable[[], bool] | None], int]


class UserRunner(Protocol):
    name: str

    def start(self, container: Container, pod: Pod, env: dict[str, str],
              log: Path) -> subprocess.Popen[bytes]: ...

    def stop(self, process: subprocess.Popen[bytes]) -> None: ...


class LocalPods:
    """The executor's PodRunner: each container in order, runtime ones in-process."""

    def __init__(self, runtime: RuntimeCall, user: UserRunner,
                 runtime_env: Mapping[str, str] | None = None,
                 secrets: Path | None = None) -> None:
        self.runtime = runtime
        self.user = user
        self.runtime_env = dict(runtime_env or {})
        self.secrets = secrets
        self._running: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()

    def __call__(self, pod: Pod, cancel: threading.Event) -> PodResult:
        started = time.monotonic()
        for container in pod.init_containers:
            failed = self._step(container, pod, cancel, started)
            if failed is not None:
                return failed
        together = [c for c in pod.containers if not c.dependencies]
        if len(together) > 1:  # a worker pod: its runtime and user containers side by side
            failed = self._together(together, pod, cancel, started)
            if failed is not None:
                return failed
        for container in pod.containers:
            if len(together) > 1 and container in together:
                continue
            failed = self._step(container, pod, cancel, started)
            if failed is not None:
                return failed
        return PodResult(SUCCEEDED)

    def _step(self, container: Container, pod: Pod, cancel: threading.Event,
              started: float) -> PodResult | None:
        """Run one container to its end; None when it succeeded."""
        if cancel.is_set():
            return PodResult(FAILED, "interrupted")
        log = pod.directory / f"{container.name}.log"
        try:
            if container.is_runtime:
                code = self._runtime(container, pod, log)
            else:
                left = None if pod.deadline is None else \
                    pod.deadline - (time.monotonic() - started)
                code = self._user(container, pod, log, left, cancel)
        except (OSError, RunnerError) as exc:
            return PodResult(ERROR, f"container `{container.name}`: {exc}", _tail(log))
        return self._verdict(container, code, pod, cancel)

    def _verdict(self, container: Container, code: int, pod: Pod,
                 cancel: threading.Event) -> PodResult | None:
        log = pod.directory / f"{container.name}.log"
        if cancel.is_set():
            return PodResult(FAILED, "interrupted", _tail(log))
        if code == DEADLINE_CODE:
            return PodResult(FAILED, f"container `{container.name}`: killed after the "
                             f"pod's activeDeadlineSeconds ({pod.deadline:g} s)", _tail(log))
        if code == 0:
            return None
        tail = _tail(log)
        # A runtime step says why it failed in its last error line: that is the reason to
        # show, not its exit code.
        reason = next((line.split(": error: ", 1)[1] for line in reversed(tail.splitlines())
                       if ": error: " in line), None) if container.is_runtime else None
        return PodResult(FAILED, reason or f"container `{container.name}` exited with code "
                         f"{code}", tail, exit_code=code)

    def _together(self, containers: list[Container], pod: Pod, cancel: threading.Event,
                  started: float) -> PodResult | None:
        """Start the user containers, then run the runtime ones beside them (in this thread:
        dsc's worker protocol has one of each); the pod ends when all have."""
        users = [c for c in containers if not c.is_runtime]
        runtimes = [c for c in containers if c.is_runtime]
        processes: dict[str, subprocess.Popen[bytes]] = {}
        expired = threading.Event()
        timer: threading.Timer | None = None
        codes: dict[str, int] = {}
        try:
            for container in users:
                env = dict(container.env)
                for name, (secret, key) in container.secret_env.items():
                    env[name] = self._secret(secret, key, container)
                log = pod.directory / f"{container.name}.log"
                process = self.user.start(container, pod, env, log)
                processes[container.name] = process
                with self._lock:
                    self._running.add(process)
            if pod.deadline is not None:
                def expire() -> None:
                    expired.set()
                    for process in processes.values():
                        self.user.stop(process)
                timer = threading.Timer(max(0.0, pod.deadline - (time.monotonic() - started)),
                                        expire)
                timer.daemon = True
                timer.start()
            if cancel.is_set():
                self.stop_all()

            def alive() -> bool:
                return all(p.poll() is None for p in processes.values())

            for container in runtimes:
                codes[container.name] = self._runtime(
                    container, pod, pod.directory / f"{container.name}.log", alive)
                if codes[container.name] != 0:  # nothing more will be asked of the others
                    for process in processes.values():
                        self.user.stop(process)
            for name, process in processes.items():
                codes[name] = process.wait()
        except (OSError, RunnerError) as exc:
            for process in processes.values():
                self.user.stop(process)
                process.wait()
            return PodResult(ERROR, str(exc))
        finally:
            if timer is not None:
                timer.cancel()
            with self._lock:
                self._running.difference_update(processes.values())
        if expired.is_set():
            codes = {name: DEADLINE_CODE for name in codes}
        for container in [*runtimes, *users]:  # the runtime says why, if it says anything
            failed = self._verdict(container, codes[container.name], pod, cancel)
            if failed is not None:
                return failed
        return None

    def stop_all(self) -> None:
        """Ctrl-C: stop every user process now (runtime steps finish their call)."""
        with self._lock:
            running = list(self._running)
        for process in running:
            self.user.stop(process)

    def _runtime(self, container: Container, pod: Pod, log: Path,
                 alive: Callable[[], bool] | None = None) -> int:
        if container.args[:1] != ["runtime"] or len(container.args) < 2 or \
                container.args[1] not in contract.VERBS:
            raise Unsupported(f"container `{container.name}` runs `dsc "
                              f"{' '.join(container.args[:2])}`, not a runtime verb")
        env = {**container.env, **self.runtime_env,
               "DSC_OUTPUT_DIR": str(pod.output_dir)}
        pfs = _volume_at(pod, container, contract.PFS)
        if pfs is not None:
            env["DSC_PFS"] = str(pfs)
        with open(log, "a", encoding="utf-8") as f:
            def write(line: str) -> None:
                f.write(line + "\n")
                f.flush()
            return self.runtime(container.args, env, write, pod.progress, alive)

    def _user(self, container: Container, pod: Pod, log: Path, left: float | None,
              cancel: threading.Event) -> int:
        env = dict(container.env)
        for name, (secret, key) in container.secret_env.items():
            env[name] = self._secret(secret, key, container)
        if left is not None and left <= 0:
            return DEADLINE_CODE
        process = self.user.start(container, pod, env, log)
        with self._lock:
            self._running.add(process)
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            self.user.stop(process)

        timer = threading.Timer(left, expire) if left is not None else None
        if timer:
            timer.daemon = True
            timer.start()
        try:
            if cancel.is_set():
                self.user.stop(process)
            code = process.wait()
        finally:
            if timer:
                timer.cancel()
            with self._lock:
                self._running.discard(process)
        return DEADLINE_CODE if expired.is_set() else code

    def _secret(self, secret: str, key: str, container: Container) -> str:
        if self.secrets is None:
            raise RunnerError(f"variable from Secret `{secret}` key `{key}`: give the "
                              "Secret's keys as files with --secrets DIR "
                              f"(DIR/{secret}/{key})")
        where = self.secrets / secret / key
        try:
            return where.read_text().rstrip("\n")
        except OSError:
            raise RunnerError(f"Secret `{secret}` has no key `{key}` in {self.secrets} "
                              f"(expected the file {where})") from None


def _volume_at(pod: Pod, container: Container, path: str) -> Path | None:
    for m in container.mounts:
        if m.path.rstrip("/") == path and m.volume in pod.volumes:
            return pod.volumes[m.volume]
    return None


def _tail(log: Path) -> str:
    try:
        with open(log, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 8192))
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-TAIL_LINES:])


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


# --- host ------------------------------------------------------------------------------------

# Inside the new namespaces (run by /bin/sh with: pfs, private tmp, working directory, the
# number of paths to keep, those paths, then the command): the pod's /pfs volume over /pfs
# and a private directory over /tmp (a container has its own; parallel datums must not share
# one). Paths under /tmp the command needs (its working directory, a virtualenv, a script
# named by absolute path) are bound into the private directory first, at the same place, so
# they stay where they were once it covers /tmp. Exit 125 (as `env` does) if a mount fails.
_ENTER = """
pfs=$1 tmp=$2 cwd=$3 n=$4
shift 4
mount --bind "$pfs" /pfs || exit 125
while [ "$n" -gt 0 ]; do
    mkdir -p "$tmp/${1#/tmp/}" && mount --bind "$1" "$tmp/${1#/tmp/}" || exit 125
    shift
    n=$((n - 1))
done
mount --rbind "$tmp" /tmp || exit 125
cd "$cwd" || exit 125
exec "$@"
"""
TMP = "/tmp"


# A path under /tmp inside a word: `sh -c "python3 /tmp/x/train.py"`, `--out=/tmp/y`.
_TMP_IN_TEXT = re.compile(r"(?<![\w.~/-])/tmp/[^\s'\"`;|&<>(){}$=,:]+")


def kept_under_tmp(paths: list[str]) -> list[str]:
    """The directories under /tmp to keep reachable for these paths, or for the paths under
    /tmp that they hold as text (a shell command's words), files by their directory, each
    once, outermost first; /tmp itself cannot be both kept and covered."""
    found: set[str] = set()
    for path in [*paths, *(m for p in paths for m in _TMP_IN_TEXT.findall(p))]:
        if not path.startswith("/"):
            continue
        # As named (a virtualenv's bin/python is a link under /tmp to a python elsewhere),
        # and where it leads (a link elsewhere to code under /tmp).
        for place in {os.path.normpath(path), os.path.realpath(path)}:
            if not place.startswith(TMP + "/"):
                continue
            if not os.path.isdir(place):
                place = os.path.dirname(place)
                if not os.path.isdir(place) or place == TMP:
                    continue
            if os.path.basename(place) == "bin" and os.path.isfile(
                    os.path.join(os.path.dirname(place), "pyvenv.cfg")):
                place = os.path.dirname(place)  # a virtualenv: Python reads its pyvenv.cfg
            if os.path.realpath(place) in (TMP, "/"):
                continue  # a link to /tmp itself would bind the whole host /tmp back
            found.add(place)
    outer = sorted(found)
    return [p for p in outer if not any(p.startswith(o + "/") for o in outer if o != p)]


class HostRunner:
    """The spec's command on this machine, in a private mount namespace per container where
    the datum's directory is /pfs: datums run in parallel and the real /pfs is never written.
    Needs Linux, unshare(1), and root or unprivileged user namespaces."""

    name = "host"

    def __init__(self, cwd: Path, environ: Mapping[str, str] | None = None,
                 log: Callable[[str], None] = lambda _line: None) -> None:
        host = os.environ if environ is None else environ
        self.host_env = {k: host[k] for k in HOST_VARIABLES if k in host}
        if not sys.platform.startswith("linux"):
            raise RunnerError("the host runner needs Linux (mount namespaces); use "
                              "--runner docker")
        unshare = shutil.which("unshare")
        if unshare is None:
            raise RunnerError("the host runner needs unshare(1) (util-linux)")
        self.cwd = cwd
        # A private PID namespace with its own /proc: user code sees its own processes only,
        # never dsc's (whose environment may hold lakeFS credentials), and dies with it
        # (--kill-child). unshare itself dies with the thread of dsc that started it, which
        # waits for it (setpriv's --pdeathsig): a `dsc run` killed with SIGKILL leaves no user
        # process behind.
        self.prefix = [unshare, "--mount", "--propagation", "private", "--pid", "--fork",
                       "--mount-proc", "--kill-child"]
        if os.geteuid() != 0:
            self.prefix[1:1] = ["--user", "--map-root-user"]
        setpriv = shutil.which("setpriv")
        if setpriv is not None:
            self.prefix[0:0] = [setpriv, "--pdeathsig", "KILL"]
        if not os.path.isdir(contract.PFS):
            if os.geteuid() != 0:
                raise RunnerError(f"the host runner binds each datum at {contract.PFS}, which "
                                  f"does not exist: create it once (sudo mkdir {contract.PFS})")
            os.makedirs(contract.PFS, exist_ok=True)
            log(f"created the empty mount point {contract.PFS} (the host runner binds each "
                "datum there, in its own mount namespace)")
        probe = subprocess.run([*self.prefix, "/bin/sh", "-c", "mount --bind /tmp /pfs"],
                               capture_output=True, text=True, check=False)
        if probe.returncode != 0:
            why = (probe.stderr.strip().splitlines() or ["no message"])[-1]
            raise RunnerError("the host runner needs root or unprivileged user namespaces "
                              f"(sysctl kernel.unprivileged_userns_clone=1): unshare said: "
                              f"{why}")

    def start(self, container: Container, pod: Pod, env: dict[str, str],
              log: Path) -> subprocess.Popen[bytes]:
        for m in container.mounts:
            if m.path.rstrip("/") != contract.PFS or m.volume not in pod.volumes:
                raise Unsupported(f"container `{container.name}` mounts volume `{m.volume}` "
                                  f"at {m.path}: the host runner binds only {contract.PFS} "
                                  "(use --runner docker)")
        pfs = _volume_at(pod, container, contract.PFS)
        if pfs is None:
            raise Unsupported(f"container `{container.name}` has no {contract.PFS} volume")
        if not container.command:
            raise Unsupported(f"container `{container.name}` has no command (the image's "
                              "entrypoint needs --runner docker)")
        cwd = container.working_dir or str(self.cwd)
        tmp = pod.directory / f"tmp-{container.name}"
        tmp.mkdir(parents=True, exist_ok=True)
        environ = {**self.host_env, **env}
        keep = kept_under_tmp([cwd, *container.command, *container.args,
                               *(p for name in ("PATH", "PYTHONPATH")
                                 for p in environ.get(name, "").split(":")),
                               environ.get("VIRTUAL_ENV", ""), environ.get("HOME", "")])
        with open(log, "ab") as out:
            return subprocess.Popen(
                [*self.prefix, "/bin/sh", "-c", _ENTER, "dsc-host", str(pfs), str(tmp), cwd,
                 str(len(keep)), *keep, *container.command, *container.args],
                env=environ, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        _kill_group(process)


# --- docker ----------------------------------------------------------------------------------

class DockerRunner:
    """The spec's image under Docker, with the pod's volumes mounted where the manifest
    says (secrets from --secrets DIR)."""

    name = "docker"

    def __init__(self, secrets: Path | None = None, docker: str | None = None) -> None:
        found = docker or shutil.which("docker")
        if not found:
            raise RunnerError("the docker runner needs the docker CLI and a Docker engine")
        probe = subprocess.run([found, "version", "--format", "{{.Server.Version}}"],
                               capture_output=True, text=True, check=False, timeout=30)
        if probe.returncode != 0:
            why = (probe.stderr.strip().splitlines() or ["no message"])[-1]
            raise RunnerError(f"the docker runner needs a running Docker engine: {why}")
        self.docker = found
        self.secrets = secrets
        self._names: dict[int, str] = {}

    def command(self, container: Container, pod: Pod, env: Mapping[str, str]) -> list[str]:
        """The `docker run` argv (values of variables travel in docker's environment, so no
        secret is ever on a command line)."""
        name = f"dsc-{pod.node.id}-{container.name}-{os.getpid()}"
        argv = [self.docker, "run", "--rm", "--name", name, "--init"]
        for m in container.mounts:
            if m.volume in pod.volumes:
                source = pod.volumes[m.volume]
            elif m.volume in pod.secret_volumes:
                if self.secrets is None:
                    raise RunnerError(f"volume `{m.volume}` is Secret "
                                      f"`{pod.secret_volumes[m.volume]}`: give it with "
                                      "--secrets DIR")
                source = self.secrets / pod.secret_volumes[m.volume]
            else:
                raise Unsupported(f"container `{container.name}` mounts unknown volume "
                                  f"`{m.volume}`")
            argv += ["-v", f"{source}:{m.path}{':ro' if m.read_only else ''}"]
        for variable in sorted(env):
            argv += ["-e", variable]
        if container.run_as_user is not None:
            argv += ["--user", str(container.run_as_user)]
        if container.working_dir:
            argv += ["-w", container.working_dir]
        if container.command:
            argv += ["--entrypoint", container.command[0]]
        argv.append(container.image)
        argv += [*container.command[1:], *container.args]
        return argv

    def start(self, container: Container, pod: Pod, env: dict[str, str],
              log: Path) -> subprocess.Popen[bytes]:
        argv = self.command(container, pod, env)
        with open(log, "ab") as out:
            process = subprocess.Popen(argv, env={**os.environ, **env},
                                       stdin=subprocess.DEVNULL, stdout=out,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        self._names[process.pid] = argv[argv.index("--name") + 1]
        return process

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        name = self._names.get(process.pid)
        if name:
            subprocess.run([self.docker, "kill", name], capture_output=True, check=False)
        _kill_group(process)
