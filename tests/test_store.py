"""PolicyStore: reload on change, keep serving the old version on a bad edit, swap atomically."""

from __future__ import annotations

import datetime
import logging
import os
import threading
from pathlib import Path

import pytest

from avgpolicy import PolicyError, loads
from avgpolicy.store import PolicyStore

AT = datetime.date(2025, 10, 1)
KEY = b"store-test-key-SECRET-0123456789"
CATALOGUE = """dataset leerling subject {
    id text personal
    school text personal
    leerjaar int personal
}
partner snappet
purpose leermiddelen
"""


def rule(fields: str, name: str = "r1") -> str:
    return f"""permit {name} {{
    partner snappet
    purpose leermiddelen
    basis contract
    fields {fields}
}}
"""


STUDENT = {"id": "s1", "school": "12AB", "leerjaar": 5}
REQUEST = {"partner": "snappet", "purpose": "leermiddelen", "fields": ["leerling.school", "leerling.leerjaar"]}


def write(path: Path, text: str) -> None:
    """Write and move the mtime forward by a whole second, so the cheap change test sees it."""
    old = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, encoding="utf-8")
    ns = max(old + 1_000_000_000, path.stat().st_mtime_ns)
    os.utime(path, ns=(ns, ns))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write(tmp_path / "catalogue.avg", CATALOGUE)
    write(tmp_path / "rules.avg", rule("leerling.school"))
    return tmp_path


def allowed(store: PolicyStore) -> bool:
    return store.decide(**REQUEST, student=STUDENT, at=AT).allowed


def test_initial_load_serves_and_an_unchanged_folder_does_not_reload(folder: Path) -> None:
    store = PolicyStore(folder)
    v1 = store.version
    assert False is allowed(store)
    assert False is store.refresh()
    assert v1 == store.version
    assert 0 == store.reloads


def test_a_broken_initial_set_raises(folder: Path) -> None:
    write(folder / "rules.avg", "permit kapot {")
    with pytest.raises(PolicyError):
        PolicyStore(folder)


def test_reload_on_change_and_decisions_carry_the_version(folder: Path) -> None:
    store = PolicyStore(folder)
    v1 = store.version
    d1 = store.decide(**REQUEST, student=STUDENT, at=AT)
    write(folder / "rules.avg", rule("leerling.{school, leerjaar}"))
    assert True is store.refresh()
    assert v1 != store.version
    d2 = store.decide(**REQUEST, student=STUDENT, at=AT)
    assert (False, v1) == (d1.allowed, d1.policy_version)
    assert (True, store.version) == (d2.allowed, d2.policy_version)
    assert 1 == store.reloads


def test_a_new_and_a_deleted_file_are_changes(folder: Path) -> None:
    store = PolicyStore(folder)
    write(folder / "extra.avg", rule("leerling.leerjaar", name="r2"))
    assert True is store.refresh()
    assert True is allowed(store)
    (folder / "extra.avg").unlink()
    assert True is store.refresh()
    assert False is allowed(store)


def test_touch_without_change_does_not_swap(folder: Path) -> None:
    store = PolicyStore(folder)
    policy = store.policy
    write(folder / "rules.avg", (folder / "rules.avg").read_text())
    assert False is store.refresh()
    assert policy is store.policy


def test_bad_edit_keeps_the_old_version_and_reports_once_then_a_fix_swaps(
        folder: Path, caplog: pytest.LogCaptureFixture) -> None:
    seen: list[BaseException] = []
    store = PolicyStore(folder, on_error=seen.append, pseudonym_key=KEY)
    policy, v1 = store.policy, store.version
    write(folder / "rules.avg", rule("leerling.{school, leerjaar}") + "permit kapot { partner onbekend }\n")
    with caplog.at_level(logging.WARNING, logger="avgpolicy.store"):
        assert False is store.refresh()
        assert False is store.refresh(force=True)  # the same broken content is not reported again
    assert policy is store.policy and v1 == store.version
    assert False is allowed(store)
    assert isinstance(store.last_error, PolicyError)
    assert 1 == len(seen) and seen[0] is store.last_error
    assert {"E101", "E304"} <= {d.code for d in store.last_error.errors}
    assert 1 == len(caplog.records)
    assert "still serving " + v1 in caplog.text and "rules.avg" in caplog.text
    assert KEY.decode() not in caplog.text + repr(store) + str(store.last_error)
    assert "last reload failed" in repr(store)

    write(folder / "rules.avg", rule("leerling.{school, leerjaar}"))
    assert True is store.refresh()
    assert store.last_error is None
    assert True is allowed(store)


def test_reverting_a_bad_edit_clears_the_error_without_a_swap(folder: Path) -> None:
    store = PolicyStore(folder)
    policy = store.policy
    good = (folder / "rules.avg").read_text()
    write(folder / "rules.avg", "permit {")
    assert False is store.refresh()
    assert store.last_error is not None
    write(folder / "rules.avg", good)
    assert False is store.refresh()
    assert store.last_error is None
    assert policy is store.policy


def test_a_vanished_folder_keeps_the_old_version(tmp_path: Path) -> None:
    sub = tmp_path / "beleid"
    sub.mkdir()
    write(sub / "all.avg", CATALOGUE + rule("leerling.school"))
    store = PolicyStore(sub)
    (sub / "all.avg").unlink()
    sub.rmdir()
    assert False is store.refresh()
    assert isinstance(store.last_error, FileNotFoundError)
    assert False is allowed(store)


def test_a_raising_on_error_callback_does_not_break_the_store(folder: Path) -> None:
    def boom(exc: BaseException) -> None:
        raise RuntimeError("callback failed")

    store = PolicyStore(folder, on_error=boom)
    write(folder / "rules.avg", "permit {")
    assert False is store.refresh()
    assert isinstance(store.last_error, PolicyError)


def test_wrong_arguments() -> None:
    with pytest.raises(TypeError):
        PolicyStore()
    with pytest.raises(TypeError):
        PolicyStore("x", pseudonymkey=b"typo")
    with pytest.raises(FileNotFoundError):
        PolicyStore("/no/such/folder/anywhere")


def test_background_polling_picks_up_a_change(folder: Path) -> None:
    swapped = threading.Event()
    with PolicyStore(folder) as store:
        v1 = store.version
        store.start(0.01)
        assert store.polling
        with pytest.raises(RuntimeError):
            store.start(0.01)
        write(folder / "rules.avg", rule("leerling.{school, leerjaar}"))
        for _ in range(1000):  # wait for the poller (at most ~10 s), not for a fixed time
            if store.version != v1:
                swapped.set()
                break
            threading.Event().wait(0.01)
    assert swapped.is_set()
    assert not store.polling
    assert True is allowed(store)


def test_a_deciding_thread_sees_only_complete_versions(folder: Path) -> None:
    """While the set flips between two valid versions and a broken one, every decision a
    reader gets is the one its own policy_version gives, and no reader ever fails."""
    texts = [rule("leerling.school"), rule("leerling.{school, leerjaar}"), "permit kapot {"]
    # versions are content hashes (not file names): learn each valid version's answer first
    expected = {}
    for text in texts[:2]:
        p = loads({"catalogue.avg": CATALOGUE, "rules.avg": text})
        expected[p.version] = p.decide(**REQUEST, student=STUDENT, at=AT).allowed
    assert [False, True] == list(expected.values())
    store = PolicyStore(folder)
    stop = threading.Event()
    problems: list[BaseException] = []
    seen_versions: set[str] = set()

    def reader() -> None:
        try:
            while not stop.is_set():
                d = store.decide(**REQUEST, student=STUDENT, at=AT)
                seen_versions.add(d.policy_version)
                if expected.get(d.policy_version) != d.allowed:
                    problems.append(AssertionError(f"version {d.policy_version}: allowed={d.allowed}"))
        except BaseException as exc:  # pragma: no cover - the assertion below reports it
            problems.append(exc)

    readers = [threading.Thread(target=reader) for _ in range(4)]
    for t in readers:
        t.start()
    swaps = 0
    try:
        for i in range(60):
            write(folder / "rules.avg", texts[i % 3])
            swaps += store.refresh()
    finally:
        stop.set()
        for t in readers:
            t.join()
    assert [] == problems
    assert 39 == swaps  # 0 (unchanged) -> 1 -> broken (1 kept) -> 0 -> 1 -> ...: 20 + 19 swaps
    assert set(expected) == seen_versions
