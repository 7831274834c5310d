"""Test hosts only: a bytecode cache for the Python that Ansible sends with every task.

Ansible sends each module, with the module_utils it imports, as a zip (AnsiballZ), and the host's Python imports
them from that zip. Python keeps compiled bytecode for files on disk (`__pycache__`) but never for a zip's, so
every task compiles `ansible.module_utils.basic` and the rest of them again (20 `stat` tasks on a Debian 13 host:
0.20 CPU-s each, 0.14 with this cache filled). `make test` runs thousands of tasks on 2 cores.

Every system Python on the image loads this module through a .pth file (tools/testhost_image.py puts both in
place), and `install()` wraps zipimport's compile step: what root's Python compiles from an Ansible payload zip
(`ansible_<module>_payload.zip`) is kept in CACHE_DIR, keyed by the SHA-256 of the bytecode version, the file's
path in the zip and its source. Only at the interpreter's default flags, as Ansible starts it: `-O` or
`-X no_debug_ranges` would compile the same source to other code. A cached copy gets the file name of the zip it
came from this time, as Python does for a __pycache__ file. Any other zip or flag, and any failure to read or
write the cache, compiles as before.

Only for root, and only in a directory owned by root that no one else can write: a cache another user could write
would let them choose the code root runs. Real fleet hosts do not get this; it is part of the test image.
"""

# os, not pathlib, and no `from __future__` import: every Python process on the host imports this module (keepalived's
# check, every second), and those cost it more to import.
# ruff: noqa: PTH102, PTH105, PTH108, PTH118, PTH123

import os
import stat
import sys
import zipimport
from types import CodeType

CACHE_DIR = "/var/cache/ansiballz-bytecode"
# The only user whose Python uses the cache (a constant, so that tests can run as anyone).
OWNER_UID = 0
# How AnsiballZ names the zip it writes to a temporary directory on the host (ansible-core's _ansiballz wrapper).
PAYLOAD_ZIP = "_payload.zip" + os.sep
# A zip member that holds per-task text (the payload's temporary path), never worth keeping.
PER_TASK_MEMBERS = ("sitecustomize.py",)

# The one step this module wraps (a private function of zipimport, in every Python 3 the images carry).
_compile_source = getattr(zipimport, "_compile_source", None)


def default_flags() -> bool:
    """Whether this interpreter compiles as Ansible starts it: no -O, no -X no_debug_ranges."""
    return (
        sys.flags.optimize == 0 and "no_debug_ranges" not in sys._xoptions and not os.environ.get("PYTHONNODEBUGRANGES")
    )


def payload_member(pathname: str) -> str | None:
    """The path inside an Ansible payload zip of a file worth caching; None for any other path."""
    _, found, member = pathname.partition(PAYLOAD_ZIP)
    return member if found and not member.endswith(PER_TASK_MEMBERS) else None


def cache_key(member: str, source: bytes) -> str:
    """The cache's file name for a payload member's source."""
    # Imported here, not at startup: every Python process on the host loads this module.
    import hashlib
    from importlib.util import MAGIC_NUMBER

    return hashlib.sha256(MAGIC_NUMBER + member.encode() + b"\0" + source).hexdigest()


def usable(cache_dir: str) -> bool:
    """Whether this process may use the cache: it runs as OWNER_UID, and the directory is that user's alone."""
    if os.geteuid() != OWNER_UID:
        return False
    try:
        os.mkdir(cache_dir, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return False
    try:
        status = os.lstat(cache_dir)
    except OSError:
        return False
    return stat.S_ISDIR(status.st_mode) and status.st_uid == OWNER_UID and status.st_mode & 0o077 == 0


def with_filename(code: CodeType, filename: str) -> CodeType:
    """The code object, and every one nested in it, naming `filename` (what tracebacks show)."""
    consts = tuple(with_filename(const, filename) if isinstance(const, CodeType) else const for const in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


def read_cached(path: str, pathname: str) -> CodeType | None:
    """The cached code for `pathname`, or None when there is none or it is not whole code."""
    import marshal

    try:
        with open(path, "rb") as cached:
            code = marshal.load(cached)
    except (OSError, EOFError, ValueError, TypeError):
        return None
    return with_filename(code, pathname) if isinstance(code, CodeType) else None


def write_cached(path: str, code: CodeType) -> None:
    """Keep `code` at `path`: written aside, then renamed, so a reader sees a whole file or none."""
    import marshal

    partial = f"{path}.{os.getpid()}"
    try:
        # O_EXCL: a second thread of this process writing the same file leaves it to the first.
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:
        return
    try:
        with os.fdopen(descriptor, "wb") as out:
            marshal.dump(code, out)
        os.replace(partial, path)
    except (OSError, ValueError):
        import contextlib

        with contextlib.suppress(OSError):
            os.unlink(partial)


def cached_compile(pathname: str, source: bytes) -> CodeType:
    """zipimport's compile step, through the cache for Ansible's payloads."""
    assert _compile_source is not None  # install() wraps nothing otherwise
    # The cheap checks first: the source is hashed only for a compile the cache may serve.
    member = payload_member(pathname)
    if member is None or not default_flags() or not usable(CACHE_DIR):
        return _compile_source(pathname, source)
    path = os.path.join(CACHE_DIR, cache_key(member, source))
    code = read_cached(path, pathname)
    if code is None:
        code = _compile_source(pathname, source)
        write_cached(path, code)
    return code


def install() -> None:
    """Route zipimport's compile step through the cache (the .pth file calls this as Python starts); a Python
    whose zipimport has no such step is left as it is."""
    if _compile_source is not None:
        zipimport._compile_source = cached_compile
