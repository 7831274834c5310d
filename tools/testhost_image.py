"""Build the Debian test-host images locally, without any container registry.

Each image is a debootstrapped Debian with systemd as PID 1, imported with
`docker import`. It is tagged by a hash of its recipe (the files under
images/testhost/ and this script), so an unchanged recipe is never rebuilt,
and it is also tagged `<repository>:<suite>`, the name Molecule and the lab use.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPOSITORY = "celery-fleet/testhost"
RECIPE_DIR = Path(__file__).resolve().parent.parent / "images" / "testhost"
SUITES = ("trixie", "bookworm")
# The module (images/testhost/<name>.py) that caches the bytecode of the Python Ansible sends with each task.
BYTECODE_CACHE = "ansiballz_bytecode"
# Image metadata that makes systemd boot as PID 1 and know it runs in a container.
# (Docker 20.10's import takes no STOPSIGNAL; containers are removed with force.)
IMPORT_CHANGES = (
    "ENV container=docker",
    'CMD ["/lib/systemd/systemd"]',
)


def recipe_digest(suite: str, recipe_dir: Path = RECIPE_DIR, builder: Path = Path(__file__)) -> str:
    """Hash everything that decides the image's content."""
    digest = hashlib.sha256(f"suite={suite}\n".encode())
    # Not the bytecode Python leaves beside the recipe's module when the unit tests import it.
    recipe = (p for p in recipe_dir.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for path in sorted(recipe):
        digest.update(path.relative_to(recipe_dir).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    digest.update(builder.read_bytes())
    return digest.hexdigest()[:12]


def image_tags(suite: str, digest: str) -> tuple[str, str]:
    """The content-addressed tag and the floating tag consumers use."""
    return f"{REPOSITORY}:{suite}-{digest}", f"{REPOSITORY}:{suite}"


def read_packages(recipe_dir: Path = RECIPE_DIR) -> list[str]:
    lines = (recipe_dir / "packages.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def image_exists(tag: str) -> bool:
    result = subprocess.run(["docker", "image", "inspect", tag], capture_output=True, check=False)
    return result.returncode == 0


def build_rootfs(suite: str, root: Path) -> None:
    include = ",".join(read_packages())
    # No mirror argument: debootstrap's own default archive is used.
    subprocess.run(
        ["debootstrap", "--variant=minbase", f"--include={include}", suite, str(root)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    shutil.copy(RECIPE_DIR / "customize.sh", root / "customize.sh")
    # Every system Python loads the bytecode cache for Ansible's payloads (see its docstring).
    module = f"/usr/lib/python3/dist-packages/{BYTECODE_CACHE}.py"
    installed = root / module.lstrip("/")
    shutil.copy(RECIPE_DIR / f"{BYTECODE_CACHE}.py", installed)
    installed.with_suffix(".pth").write_text(f"import {BYTECODE_CACHE}; {BYTECODE_CACHE}.install()\n")
    # Compiled now: only root could write its __pycache__ later, and every other user's Python would compile it.
    subprocess.run(["chroot", str(root), "python3", "-m", "py_compile", module], check=True)
    subprocess.run(["chroot", str(root), "/bin/sh", "/customize.sh"], check=True)
    (root / "customize.sh").unlink()


def import_rootfs(root: Path, tag: str) -> None:
    changes = [arg for change in IMPORT_CHANGES for arg in ("--change", change)]
    tar = subprocess.Popen(["tar", "-C", str(root), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE)
    subprocess.run(["docker", "import", *changes, "-", tag], stdin=tar.stdout, check=True, stdout=subprocess.DEVNULL)
    if tar.wait() != 0:
        raise RuntimeError(f"tar of {root} failed")


def ensure_image(suite: str) -> str:
    content_tag, floating_tag = image_tags(suite, recipe_digest(suite))
    if image_exists(content_tag):
        print(f"{content_tag}: up to date")
    else:
        print(f"{content_tag}: building with debootstrap (about a minute)")
        with tempfile.TemporaryDirectory(prefix=f"testhost-{suite}-", dir="/var/tmp") as tmp:
            root = Path(tmp) / "root"
            build_rootfs(suite, root)
            import_rootfs(root, content_tag)
    subprocess.run(["docker", "tag", content_tag, floating_tag], check=True)
    return floating_tag


def check_prerequisites() -> None:
    missing = [tool for tool in ("docker", "debootstrap", "chroot", "tar") if shutil.which(tool) is None]
    if missing:
        sys.exit(f"testhost_image: missing {', '.join(missing)}; run `make host-prereqs` (Debian, as root).")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("suites", nargs="*", metavar="SUITE", help=f"default: {' '.join(SUITES)}")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.suites) - set(SUITES))
    if unknown:
        parser.error(f"unknown suite {', '.join(unknown)}; choose from {', '.join(SUITES)}")
    suites = args.suites or list(SUITES)
    check_prerequisites()
    with ThreadPoolExecutor(max_workers=len(suites)) as pool:
        for tag in pool.map(ensure_image, suites):
            print(f"ready: {tag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
