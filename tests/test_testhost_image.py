"""The test-host image builder rebuilds exactly when its recipe changes."""

from pathlib import Path

import pytest
import testhost_image


@pytest.fixture
def recipe(tmp_path: Path) -> Path:
    recipe_dir = tmp_path / "recipe"
    recipe_dir.mkdir()
    (recipe_dir / "packages.txt").write_text("# comment\nsystemd\n\n  python3  \n")
    (recipe_dir / "customize.sh").write_text("#!/bin/sh\ntrue\n")
    return recipe_dir


@pytest.fixture
def builder(tmp_path: Path) -> Path:
    path = tmp_path / "builder.py"
    path.write_text("# builder v1\n")
    return path


def test_digest_is_stable(recipe: Path, builder: Path) -> None:
    first = testhost_image.recipe_digest("trixie", recipe, builder)
    assert first == testhost_image.recipe_digest("trixie", recipe, builder)
    assert len(first) == 12


def test_digest_differs_per_suite(recipe: Path, builder: Path) -> None:
    assert testhost_image.recipe_digest("trixie", recipe, builder) != testhost_image.recipe_digest(
        "bookworm", recipe, builder
    )


@pytest.mark.parametrize("changed", ["packages.txt", "customize.sh", "new-file"])
def test_digest_changes_with_any_recipe_file(recipe: Path, builder: Path, changed: str) -> None:
    before = testhost_image.recipe_digest("trixie", recipe, builder)
    with (recipe / changed).open("a") as handle:
        handle.write("# edit\n")
    assert testhost_image.recipe_digest("trixie", recipe, builder) != before


def test_digest_changes_with_the_builder(recipe: Path, builder: Path) -> None:
    before = testhost_image.recipe_digest("trixie", recipe, builder)
    builder.write_text("# builder v2\n")
    assert testhost_image.recipe_digest("trixie", recipe, builder) != before


def test_renaming_a_file_changes_the_digest(recipe: Path, builder: Path) -> None:
    before = testhost_image.recipe_digest("trixie", recipe, builder)
    (recipe / "customize.sh").rename(recipe / "customise.sh")
    assert testhost_image.recipe_digest("trixie", recipe, builder) != before


def test_bytecode_left_beside_the_recipe_does_not_change_the_digest(recipe: Path, builder: Path) -> None:
    # The unit tests import the recipe's Python module; its __pycache__ must not rebuild the images.
    before = testhost_image.recipe_digest("trixie", recipe, builder)
    (recipe / "__pycache__").mkdir()
    (recipe / "__pycache__" / "module.cpython-311.pyc").write_bytes(b"bytecode")
    assert testhost_image.recipe_digest("trixie", recipe, builder) == before


def test_packages_skip_comments_and_blanks(recipe: Path) -> None:
    assert testhost_image.read_packages(recipe) == ["systemd", "python3"]


def test_tags() -> None:
    assert testhost_image.image_tags("bookworm", "abc123") == (
        "celery-fleet/testhost:bookworm-abc123",
        "celery-fleet/testhost:bookworm",
    )


def test_shipped_recipe_includes_what_ansible_and_the_fault_tests_need() -> None:
    packages = set(testhost_image.read_packages())
    assert {"systemd", "python3", "sudo", "openssh-server", "iproute2", "tcpdump", "iptables"} <= packages


def test_shipped_recipe_generates_host_keys_per_container_and_adds_the_deploy_user() -> None:
    script = (testhost_image.RECIPE_DIR / "customize.sh").read_text()
    # No host key baked into the image (every container would share it)...
    assert "rm -f /etc/ssh/ssh_host_*" in script
    # ...each container generates its own before sshd starts.
    assert "ExecStart=/usr/bin/ssh-keygen -A" in script
    assert "Before=ssh.service" in script
    # The unprivileged user Ansible connects as, with passwordless sudo for become.
    assert "useradd --create-home --shell /bin/bash deploy" in script
    assert "deploy ALL=(ALL:ALL) NOPASSWD: ALL" in script
    assert "PasswordAuthentication no" in script
