"""fork_thread.py - fork from a thread that is not the main thread, the
shape of Python's test_threading fork tests: the child's only thread
returns, so the child ends (status 0); the parent polls waitpid(WNOHANG).

usage: python3 fork_thread.py [WAIT_S=20]
The child leaks 3 x 123457 B (370371 B) through libc malloc (ctypes: an
exact size Python's allocators do not round or pool) and writes
"child done".  The parent prints "fork_thread.py: child=PID status=S" once
the child is reaped, or "fork_thread.py: child=PID still alive after N s"
(then SIGKILLs it).  Exit 0 when the child exited with 0.
"""
import ctypes
import os
import signal
import sys
import threading
import time
import warnings

warnings.simplefilter("ignore")  # 3.12+: DeprecationWarning on fork with threads
WAIT_S = float(sys.argv[1]) if len(sys.argv) > 1 else 20.0
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
result = [1]


def forker():
    pid = os.fork()
    if pid == 0:
        for _ in range(3):
            libc.malloc(123457)
        sys.stdout.write("child done\n")
        sys.stdout.flush()
        return  # the child's last thread ends here
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        r, st = os.waitpid(pid, os.WNOHANG)
        if r == pid:
            print(f"fork_thread.py: child={pid} status={st}", flush=True)
            result[0] = 0 if st == 0 else 1
            return
        time.sleep(0.01)
    print(f"fork_thread.py: child={pid} still alive after {WAIT_S:g} s", flush=True)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


print(f"fork_thread.py: parent={os.getpid()}", flush=True)
t = threading.Thread(target=forker)
t.start()
t.join()
sys.exit(result[0])
