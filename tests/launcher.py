"""A warm Python that forks a child per command, so that tests killing many processes pay for the imports once.

Run as `python tests/launcher.py MODULE...`: it imports the modules (third-party ones, such as TensorFlow, which import
slowly and start no runtime at import; the project's own are left to each child, whose module-level state is then its
own), says `ready`, then answers one JSON request per line of stdin with one line on stdout:
- `["start", "-m", MODULE, ARG...]`: fork a child that runs `python -m MODULE ARG...` with stdio on /dev/null; its pid;
- `["poll", PID]`: its exit code as `Popen.returncode` gives it (negative: the signal), or null while it runs;
- `["wait", PID]`: the same, once it has ended.
At the end of stdin it kills the children still running and exits.
"""

from __future__ import annotations

import importlib
import json
import os
import runpy
import signal
import sys

children: set[int] = set()


def run_child(args: list[str]) -> None:
    """In the forked child: `python -m MODULE ARG...`, then exit with its code (never back into the request loop)."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    code = 1
    try:
        option, module, *rest = args
        assert option == "-m", "the launcher runs modules: -m MODULE ARG..."
        sys.argv = [module, *rest]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else int(e.code is not None)
    finally:
        os._exit(code)


def returncode(pid: int, block: bool) -> int | None:
    done, status = os.waitpid(pid, 0 if block else os.WNOHANG)
    if done == 0:
        return None
    children.discard(pid)
    return os.waitstatus_to_exitcode(status)


def main() -> None:
    sys.path[0] = os.getcwd()  # as for `python -m`, not this script's folder
    for module in sys.argv[1:]:
        importlib.import_module(module)
    print("ready", flush=True)
    for line in sys.stdin:
        request, *args = json.loads(line)
        if request == "start":
            pid = os.fork()
            if pid == 0:
                run_child(args)
            children.add(pid)
            answer: int | None = pid
        else:
            answer = returncode(int(args[0]), block=request == "wait")
        print(json.dumps(answer), flush=True)
    for pid in children:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
