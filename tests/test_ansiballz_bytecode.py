"""The test image's bytecode cache for Ansible's payload zips: the same code, compiled once, for root alone."""

from __future__ import annotations

import marshal
import os
import zipfile
import zipimport
from pathlib import Path
from types import CodeType

import ansiballz_bytecode
import pytest

SOURCE = b"def greet():\n    return [n for n in ('hello',)]\n\nclass Greeter:\n    def hi(self):\n        return 'hi'\n"


def payload(directory: Path, name: str = "ansible_stat_payload.zip", source: bytes = SOURCE) -> str:
    """A zip as AnsiballZ writes one on a host, holding the package module_utils/greeting.py."""
    directory.mkdir(parents=True)
    path = directory / name
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("module_utils/__init__.py", b"")
        archive.writestr("module_utils/greeting.py", source)
    return str(path)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The hook installed, with its cache in a fresh directory, for whoever runs the tests; returns that directory."""
    cache_dir = tmp_path / "cache"
    monkeypatch.setattr(ansiballz_bytecode, "CACHE_DIR", str(cache_dir))
    monkeypatch.setattr(ansiballz_bytecode, "OWNER_UID", os.geteuid())
    monkeypatch.setattr(zipimport, "_compile_source", zipimport._compile_source)
    ansiballz_bytecode.install()
    return cache_dir


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths the wrapped compile step really compiled."""
    compiled: list[str] = []
    real = ansiballz_bytecode._compile_source
    assert real is not None

    def counting(pathname: str, source: bytes) -> object:
        compiled.append(pathname)
        return real(pathname, source)

    monkeypatch.setattr(ansiballz_bytecode, "_compile_source", counting)
    return compiled


def load_from_two_payloads(tmp_path: Path, name: str = "ansible_stat_payload.zip") -> None:
    """The module loaded from two zips with the same source, as two tasks' payloads carry it."""
    for directory in ("one", "two"):
        load(payload(tmp_path / directory, name=name))


def load(zip_path: str) -> dict[str, object]:
    """The module's namespace, run from the zip as the host's Python would import it."""
    code = zipimport.zipimporter(f"{zip_path}/module_utils").get_code("greeting")
    namespace: dict[str, object] = {}
    exec(code, namespace)
    return namespace


def test_a_second_payload_with_the_same_source_is_not_compiled_again(
    cache: Path, compiles: list[str], tmp_path: Path
) -> None:
    first = payload(tmp_path / "ansible_stat_payload_a")
    second = payload(tmp_path / "ansible_stat_payload_b")
    assert load(first)["greet"]() == load(second)["greet"]() == ["hello"]
    assert compiles == [f"{first}/module_utils/greeting.py"]
    assert len(list(cache.iterdir())) == 1


def test_the_cached_code_names_the_zip_it_came_from_this_time(cache: Path, compiles: list[str], tmp_path: Path) -> None:
    load(payload(tmp_path / "one"))
    second = payload(tmp_path / "two")
    namespace = load(second)
    expected = f"{second}/module_utils/greeting.py"
    greeter = namespace["Greeter"]
    assert isinstance(greeter, type)
    assert namespace["greet"].__code__.co_filename == expected  # type: ignore[attr-defined]
    assert greeter.hi.__code__.co_filename == expected
    assert len(compiles) == 1


def test_cached_code_is_the_code_a_compile_makes(cache: Path, tmp_path: Path) -> None:
    load(payload(tmp_path / "one"))
    second = payload(tmp_path / "two")
    cached = zipimport.zipimporter(f"{second}/module_utils").get_code("greeting")
    compiled = compile(SOURCE, f"{second}/module_utils/greeting.py", "exec", dont_inherit=True)
    assert anatomy(cached) == anatomy(compiled)


def anatomy(code: CodeType) -> tuple[object, ...]:
    """Everything a code object runs or reports, nested code objects included (marshal's bytes differ in how
    shared strings are referenced, which is not what runs)."""
    consts = tuple(anatomy(const) if isinstance(const, CodeType) else const for const in code.co_consts)
    return (
        code.co_code, consts, code.co_names, code.co_varnames, code.co_filename, code.co_qualname,
        code.co_firstlineno, code.co_linetable, code.co_exceptiontable, code.co_flags, code.co_stacksize,
    )  # fmt: skip


def test_other_compile_flags_are_not_cached(
    cache: Path, compiles: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Under -O the same source compiles to other code (no asserts): it must neither fill nor read the cache.
    monkeypatch.setattr(ansiballz_bytecode, "default_flags", lambda: False)
    load_from_two_payloads(tmp_path)
    assert len(compiles) == 2
    assert not cache.exists()


def test_the_per_task_sitecustomize_is_not_cached(cache: Path) -> None:
    path = "/tmp/ansible_stat_payload_x/ansible_stat_payload.zip/sitecustomize.py"
    assert ansiballz_bytecode.payload_member(path) is None
    module = path.replace("sitecustomize.py", "ansible/module_utils/basic.py")
    assert ansiballz_bytecode.payload_member(module) == "ansible/module_utils/basic.py"


def test_changed_source_is_compiled_anew(cache: Path, compiles: list[str], tmp_path: Path) -> None:
    load(payload(tmp_path / "one"))
    changed = payload(tmp_path / "two", source=b"def greet():\n    return 'changed'\n")
    assert load(changed)["greet"]() == "changed"
    assert len(compiles) == 2


def test_other_zips_are_not_cached(cache: Path, compiles: list[str], tmp_path: Path) -> None:
    load_from_two_payloads(tmp_path, name="library.zip")
    assert len(compiles) == 2
    assert not cache.exists() or list(cache.iterdir()) == []


def test_a_cache_others_can_write_is_not_used(cache: Path, compiles: list[str], tmp_path: Path) -> None:
    cache.mkdir(mode=0o700)
    cache.chmod(0o777)
    load_from_two_payloads(tmp_path)
    assert len(compiles) == 2
    assert list(cache.iterdir()) == []


def test_a_cache_another_user_owns_is_not_used(
    cache: Path, compiles: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache.mkdir(mode=0o700)
    # This process as another user than the directory's owner, whom the cache is then for.
    other = os.geteuid() + 1
    monkeypatch.setattr(ansiballz_bytecode, "OWNER_UID", other)
    monkeypatch.setattr(os, "geteuid", lambda: other)
    load_from_two_payloads(tmp_path)
    assert len(compiles) == 2
    assert list(cache.iterdir()) == []


def test_a_symlinked_cache_is_not_used(cache: Path, compiles: list[str], tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    cache.symlink_to(elsewhere)
    load_from_two_payloads(tmp_path)
    assert len(compiles) == 2
    assert list(elsewhere.iterdir()) == []


def test_no_cache_for_a_user_other_than_root(
    cache: Path, compiles: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: ansiballz_bytecode.OWNER_UID + 1)
    load_from_two_payloads(tmp_path)
    assert len(compiles) == 2
    assert not cache.exists()


@pytest.mark.parametrize(
    "damage", [b"not marshal data", marshal.dumps(None), b""], ids=["garbage", "not-code", "empty"]
)
def test_a_damaged_cache_file_is_compiled_again_and_replaced(
    cache: Path, compiles: list[str], tmp_path: Path, damage: bytes
) -> None:
    load(payload(tmp_path / "one"))
    (entry,) = cache.iterdir()
    entry.write_bytes(damage)
    assert load(payload(tmp_path / "two"))["greet"]() == ["hello"]
    assert load(payload(tmp_path / "three"))["greet"]() == ["hello"]
    assert len(compiles) == 2
    assert stat_mode(cache) == 0o700
    assert [path.name for path in cache.iterdir()] == [entry.name]


def stat_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777
