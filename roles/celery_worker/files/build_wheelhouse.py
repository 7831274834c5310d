"""Build an offline wheelhouse on the control node for one target Python.

Run by the celery_worker role (delegated to the control node). Downloads
binary wheels of the requirements for the target's Python version and
platform, and builds the app's own wheel, into DEST. A stamp file records the
inputs; when they are unchanged nothing is done and "unchanged" is printed,
so the role can report changed honestly. The wheels are also packed into one
reproducible archive (ARCHIVE): copying one file to each worker is a single
checksum, where copying the directory costs one per wheel.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from fnmatch import fnmatch
from pathlib import Path

ARCHIVE = "wheelhouse.tar"
# The archive's last member: a directory holding it was unpacked completely.
COMPLETE = ".complete"
# Build by-products: neither hashed as source nor copied into the build.
BY_PRODUCTS = ("__pycache__", "*.pyc", "build", "*.egg-info")


def is_by_product(path: Path) -> bool:
    return any(fnmatch(part, pattern) for part in path.parts for pattern in BY_PRODUCTS)


def source_files(path: Path) -> list[Path]:
    return sorted(item for item in path.rglob("*") if item.is_file() and not is_by_product(item.relative_to(path)))


def source_digest(path: Path) -> str:
    digest = hashlib.sha256()
    for item in source_files(path):
        digest.update(item.relative_to(path).as_posix().encode() + b"\0" + item.read_bytes())
    return digest.hexdigest()


def build(scratch: Path, args: argparse.Namespace) -> None:
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run(
        [*pip, "download", "--dest", str(scratch), "--only-binary=:all:", "--implementation", "cp",
         "--python-version", args.python_version, "--platform", args.platform, *args.requirements],
        check=True,
    )  # fmt: skip
    if args.app_source:
        # From a clean copy: setuptools writes build/ and *.egg-info into the tree.
        with tempfile.TemporaryDirectory() as tmp:
            app = Path(tmp) / "app"
            shutil.copytree(args.app_source, app, ignore=shutil.ignore_patterns(*BY_PRODUCTS))
            subprocess.run([*pip, "wheel", "--no-deps", "--wheel-dir", str(scratch), str(app)], check=True)


def archive(directory: Path) -> None:
    """Pack the wheels into one archive whose bytes depend on the wheels only (names sorted, no times, no owners)."""
    partial = directory / f".{ARCHIVE}.partial"
    with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
        for wheel in sorted(directory.glob("*.whl")):
            info = tar.gettarinfo(wheel, arcname=wheel.name)
            info.mtime, info.uid, info.gid, info.uname, info.gname, info.mode = 0, 0, 0, "root", "root", 0o644
            with wheel.open("rb") as data:
                tar.addfile(info, data)
        marker = tarfile.TarInfo(COMPLETE)
        marker.mode, marker.uname, marker.gname = 0o644, "root", "root"
        tar.addfile(marker)
    # Renamed into place: a run copying it meanwhile never sees half an archive.
    partial.rename(directory / ARCHIVE)


def archive_is_current(path: Path) -> bool:
    """An archive exists and ends with the marker (archives made before it had none)."""
    if not path.exists():
        return False
    with tarfile.open(path) as tar:
        return tar.getnames()[-1:] == [COMPLETE]


def update(args: argparse.Namespace, inputs: dict[str, object]) -> str:
    stamp = args.dest / ".inputs.json"
    if stamp.exists() and json.loads(stamp.read_text()) == inputs:
        if archive_is_current(args.dest / ARCHIVE):
            return "unchanged"
        archive(args.dest)
        return "changed"
    # Build into a scratch directory and swap it in, so a failed build never
    # leaves a half-filled wheelhouse behind.
    scratch = Path(tempfile.mkdtemp(prefix=args.dest.name + ".", dir=args.dest.parent))
    try:
        build(scratch, args)
        archive(scratch)
        (scratch / ".inputs.json").write_text(json.dumps(inputs, indent=2))
        shutil.rmtree(args.dest, ignore_errors=True)
        scratch.rename(args.dest)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return "changed"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dest", type=Path, required=True)
    parser.add_argument("--python-version", required=True, help="target's major.minor, e.g. 3.13")
    parser.add_argument("--platform", required=True, help="e.g. manylinux2014_x86_64")
    parser.add_argument("--app-source", type=Path, help="directory of the app to build a wheel of")
    parser.add_argument("requirements", nargs="+")
    args = parser.parse_args()

    inputs = {
        "python": args.python_version,
        "platform": args.platform,
        "requirements": sorted(args.requirements),
        "app": source_digest(args.app_source) if args.app_source else None,
    }
    args.dest.parent.mkdir(parents=True, exist_ok=True)
    # One build at a time per wheelhouse, also across concurrent playbook runs
    # (Molecule scenarios in parallel): the second finds the first's result.
    with (args.dest.parent / f".{args.dest.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        print(update(args, inputs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
