"""Hearth python3 template ("zygote"): the interpreter with the runtime loaded
once, cloning sandboxed workers on request instead of starting Python again.

Owns: the loop that asks libhearth_zygote.so (src/zygote_child.c) for the
next worker, and, in each worker, handing over to the runtime's main().
Must never: run user code, import anything a worker would not (a worker is
a copy of this process), or keep going once the spawner that started it
is gone. Runs as `python3 -I -B -c <this> <library> <bootstrap.py text>`
with its socket on fd 3. Standard library only.

A pre-built worker is a clone like any other: its environment has
HEARTH_PREBUILT=1, so the runtime's main() waits for the SPECIALIZE frame
(bootstrap.py's specialize_if_prebuilt) before it loads user code.
"""

import ctypes
import os
import signal
import sys
import types

SOCKET_FD = 3


def load_runtime(text):
    """The runtime program as a module, imported but not started."""
    module = types.ModuleType("hearth_bootstrap")
    exec(compile(text, "bootstrap.py", "exec"), module.__dict__)
    return module


def adopt_environment(lib):
    """The clone set the C environment to the function's; make os.environ agree."""
    env = {}
    i = 0
    while True:
        item = lib.hz_env(i)
        if item is None:
            break
        key, _, value = os.fsdecode(item).partition("=")
        env[key] = value
        i += 1
    os.environ.clear()
    os.environ.update(env)


def restore_python_signals():
    """The clone reset every signal to its default, as exec would have; an
    interpreter starting up then ignores SIGPIPE and SIGXFSZ (so a closed
    pipe is an exception, not death) and turns SIGINT into
    KeyboardInterrupt. Do the same."""
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def main():
    library, runtime_text = sys.argv[1], sys.argv[2]
    runtime = load_runtime(runtime_text)
    # PyDLL: the GIL stays held across the calls, so the one thread that
    # exists is the one that clones, as os.fork() would have it.
    lib = ctypes.PyDLL(library)
    lib.hz_env.restype = ctypes.c_char_p
    lib.hz_env.argtypes = [ctypes.c_int]
    api = ctypes.pythonapi
    if lib.hz_init(SOCKET_FD) != 0:
        sys.exit(1)
    while True:
        api.PyOS_BeforeFork()
        got = lib.hz_next()
        if got == 1:
            api.PyOS_AfterFork_Child()
            break
        api.PyOS_AfterFork_Parent()
        if got < 0:
            os._exit(0)
    adopt_environment(lib)
    restore_python_signals()
    del lib, api
    # As when exec'd (-c), the runtime is __main__ to the code it loads.
    runtime.__name__ = "__main__"
    sys.modules["__main__"] = runtime
    runtime.main()


main()
