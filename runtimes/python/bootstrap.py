"""Entry point of Lambent's Python runtime: `<python> $LAMBDA_RUNTIME_DIR/python/bootstrap.py`.

The client lives in lambent_runtime.py because Python never caches the script it is started
with as bytecode, and compiling the client costs ~10 ms of every cold start; an imported module
loads from __pycache__ in ~0.1 ms (precompile it where the runtime directory is read-only, see
README.md).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import lambent_runtime  # noqa: E402

_zygote_fd = os.environ.get("LAMBENT_ZYGOTE_FD")
if _zygote_fd:
    lambent_runtime.zygote(int(_zygote_fd))
del _zygote_fd
lambent_runtime.main()
