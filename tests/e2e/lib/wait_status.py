#!/usr/bin/env python3
# wait_status.py DIR CMD... : run CMD in DIR with core dumps allowed (soft
# RLIMIT_CORE raised to the hard limit), its stdout in DIR/stdout and stderr
# in DIR/stderr; print how it ended, as waitpid(2) says: "signal N core C"
# (C = WCOREDUMP) or "exit N".  For tests/e2e/crash.sh: bash's $? cannot
# tell whether a core was dumped.
import os, resource, sys

d = sys.argv[1]
pid = os.fork()
if pid == 0:
    os.chdir(d)
    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))
    except (ValueError, OSError):
        pass
    out = os.open("stdout", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    err = os.open("stderr", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(out, 1)
    os.dup2(err, 2)
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_, st = os.waitpid(pid, 0)
if os.WIFSIGNALED(st):
    print("signal %d core %d" % (os.WTERMSIG(st), 1 if os.WCOREDUMP(st) else 0))
else:
    print("exit %d" % os.WEXITSTATUS(st))
