"""Test hosts only: a bytecode cache for the Python that Ansible sends with every task.

Ansible sends each module, with the module_utils it imports, as a zip (AnsiballZ), and the host's Python imports
them from that zip. Python keeps compiled bytecode for files on disk (`__pycache__`) but never for a zip's, so
every task compiles `ansible.module_utils.basic` and the rest of them again: 0.06 of the 0.20 CPU-seconds a task
cost a test host (20 `stat` tasks on a Debian 13 host: 0.20, then 0.14 CPU-s each). `make test` runs thousands of
tasks on 2 cores (docs/testing.md has what this saved).

Every system Python on the image loads this module through a .pth file (tools/testhost_image.py puts both in
place), and `install()` wraps zipimport's compile step: what root's Python compiles from an Ansible payload zip
(`ansible_<module>_payload.zip`) is kept in CACHE_DIR, keyed by the SHA-256 of the bytecode version, the file's
path in the zip and its source. The same source compiles to the same code, so what runs is unchanged; a cached
copy only gets the file name of the zip it came from this time. Any other zip, and any failure to read or write
the cache, compiles as before.

Only for root, and only in a directory owned by root that no one else can write: a cache another user could write
would let them choose the code root runs. Real fleet hosts do not get this; it is part of the test image.
"""

# os, not pathlib: every Python process on the host imports this module, and pathlib costs it more to import.
# ruff: noqa: PTH102, PTH105, PTH118, PTH123

from __future__ import annotations

import os
import stat
import zipimport
from types import CodeType

CACHE_DIR = "/var/cache/ansiballz-bytecode"
# How AnsiballZ names the zip it writes to a temporary directory on the host (ansible-core's _ansiballz wrapper).
PAYLOAD_ZIP = "_payload.zip" + os.sep

# The one step this module wraps (a private function of zipimport, in every Python 3 the images carry).
_compile_source = getattr(zipimport, "_compile_source", None)


def cache_key(pathname: str, source: bytes) -> str | None:
    """The cache's file name for a file in an Ansible payload zip; None for any other path."""
    _, found, member = pathname.partition(PAYLOAD_ZIP)
    if not found:
        return None
    # Imported here, not at startup: every Python process on the host loads this module.
    import hashlib
    from importlib.util import MAGIC_NUMBER

    return hashlib.sha256(MAGIC_NUMBER + member.encode() + b"\0" + source).hexdigest()


def usable(cache_dir: str) -> bool:
    """Whether this process may use the cache: it runs as root, and the directory is root's alone."""
    if os.geteuid() != 0:
        return False
    try:
        os.mkdir(cache_dir, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return False
    status = os.lstat(cache_dir)
    return stat.S_ISDIR(status.st_mode) and status.st_uid == 0 and status.st_mode & 0o077 == 0


def with_filename(code: CodeType, filename: str) -> CodeType:
    """The code object, and every one nested in it, naming `filename` (what tracebacks show)."""
    consts = tuple(with_filename(const, filename) if isinstance(const, CodeType) else const for const in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


def cached_compile(pathname: str, source: bytes) -> CodeType:
    """zipimport's compile step, through the cache for Ansible's payloads."""
    assert _compile_source is not None  # install() wraps nothing otherwise
    key = cache_key(pathname, source)
    if key is None or not usable(CACHE_DIR):
        return _compile_source(pathname, source)
    import marshal

    path = os.path.join(CACHE_DIR, key)
    try:
        with open(path, "rb") as cached:
            return with_filename(marshal.load(cached), pathname)
    except (OSError, EOFError, ValueError, TypeError):
        pass
    code = _compile_source(pathname, source)
    # Written aside, then renamed: a concurrent task on the host reads a whole file or none.
    partial = f"{path}.{os.getpid()}"
    try:
        with open(partial, "wb") as out:
            marshal.dump(code, out)
        os.replace(partial, path)
    except OSError:
        pass
    return code


def install() -> None:
    """Route zipimport's compile step through the cache (the .pth file calls this as Python starts); a Python
    whose zipimport has no such step is left as it is."""
    if _compile_source is not None:
        zipimport._compile_source = cached_compile
