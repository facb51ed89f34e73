"""Hostile backups (issue 19, defects 1 and 2): every forged backup is refused and nothing is written.

One good backup is made of a store that imported, merged, unmerged, edited, decided and undid; each forgery
lies about a copy of it in one way. Restoring it goes through the whole command (`restore-backup --yes`),
and the target store must be byte-for-byte what it was.
"""

from __future__ import annotations

import hashlib
import inspect
import shutil
from pathlib import Path

import pandas as pd
import pytest

from datafactory_pipelines.backup import BackupError, backup, check_backup, restore_backup
from datafactory_pipelines.store import open_store
from datafactory_pipelines.store.snapshot_sql import UnknownIdentifierError
from tests import hostile_backups
from tests.backends import both_backends, store_digest, store_in
from tests.test_backup_every_table import _store_that_did_everything
from tests.test_cli import run_cli

pytestmark = both_backends

KEY = "operator-kept-key-0123456789"


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A good unsigned backup root and a good signed one, of the same store."""
    base = tmp_path_factory.mktemp("good")
    store, _ = _store_that_did_everything(base, base / "home")
    unsigned = backup(store, base / "unsigned")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATAFACTORY_BACKUP_KEY", KEY)
        signed = backup(store, base / "signed")
    return {"unsigned": unsigned, "signed": signed}


def _forged_copy(good_folder: Path, where: Path, forge) -> tuple[Path, Path]:
    """A copy of the backup root, forged; returns (folder, the file an injection would write)."""
    root = where / "root"
    shutil.copytree(good_folder.parent, root, symlinks=True)
    folder = root / good_folder.name
    pwned = where / "pwned.csv"
    if "target" in inspect.signature(forge).parameters:
        forge(folder, pwned)
    else:
        forge(folder)
    return folder, pwned


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _refused_and_nothing_written(folder: Path, home: Path, pwned: Path, key: str | None,
                                 monkeypatch: pytest.MonkeyPatch) -> tuple[bool, str]:
    """Restore through the library (same code as the command) into a fresh store; (refused, why)."""
    if key:
        monkeypatch.setenv("DATAFACTORY_BACKUP_KEY", key)
    else:
        monkeypatch.delenv("DATAFACTORY_BACKUP_KEY", raising=False)
    target = store_in(home)
    before, rows_before = store_digest(target), target.table_row_counts()
    try:
        restore_backup(folder, target)
        refused, why = False, "restored"
    except (BackupError, UnknownIdentifierError) as err:
        refused, why = True, str(err)
    assert store_digest(target) == before, why  # byte for byte (PostgreSQL: row for row, every table)
    assert target.table_row_counts() == rows_before, why  # row for row (a new store: its store_meta only)
    assert not pwned.exists(), "an identifier from the manifest ran as SQL"
    return refused, why


CORPUS = [(forge, "unsigned", None) for forge in hostile_backups.STRUCTURAL] + \
         [(forge, "signed", KEY) for forge in hostile_backups.NEEDS_THE_KEY]


def test_the_corpus_n_of_n_refused_nothing_written(good, tmp_path: Path, monkeypatch, capsys) -> None:
    """The figure the docs quote: every kind refused, the target unchanged."""
    refused, outcomes = 0, []
    for number, (forge, which, key) in enumerate(CORPUS):
        folder, pwned = _forged_copy(good[which], tmp_path / str(number), forge)
        ok, why = _refused_and_nothing_written(folder, tmp_path / str(number) / "home", pwned, key, monkeypatch)
        refused += ok
        outcomes.append(f"{forge.__name__}: {'refused' if ok else 'RESTORED'}: {why[:160]}")
    outcomes.append(f"{refused} of {len(CORPUS)} hostile backups refused, nothing written")
    print("\n".join(outcomes))
    assert refused == len(CORPUS) >= 10, "\n".join(outcomes)


def test_the_good_backups_restore(good, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("DATAFACTORY_BACKUP_KEY", raising=False)
    unsigned = check_backup(good["unsigned"], open_store(tmp_path / "a.duckdb"))
    assert unsigned.trust.startswith("UNSIGNED")
    restore_backup(good["unsigned"], open_store(tmp_path / "a.duckdb"))
    monkeypatch.setenv("DATAFACTORY_BACKUP_KEY", KEY)
    signed = check_backup(good["signed"], open_store(tmp_path / "b.duckdb"))
    assert signed.trust.startswith("signed, signature verified")
    result = restore_backup(good["signed"], open_store(tmp_path / "b.duckdb"))
    assert result["tables"]["leads"] == len(open_store(tmp_path / "b.duckdb").leads(include_retired=True)) > 0
    # with the key set, the unsigned backup is refused
    with pytest.raises(BackupError, match="not signed"):
        check_backup(good["unsigned"], open_store(tmp_path / "c.duckdb"))


def test_the_store_quotes_and_checks_snapshot_identifiers(tmp_path: Path) -> None:
    """Even called directly, load_snapshot refuses a name not in the catalog before writing anything."""
    store = store_in(tmp_path)
    pwned = tmp_path / "pwned.csv"
    frame = pd.DataFrame({"token": ["t"], "target": ["x"], "channel": ["c"]})
    for name in (f"tracking_links SELECT * FROM snapshot_part; COPY (SELECT 1) TO '{pwned}'; --",
                 'tracking_links"; DROP TABLE leads; --'):
        with pytest.raises(UnknownIdentifierError):
            store.load_snapshot({name: frame})
    with pytest.raises(UnknownIdentifierError):
        store.load_snapshot({"tracking_links": frame.rename(columns={"token": f"token) SELECT 1; COPY (SELECT 1) TO '{pwned}'; --"})})
    with pytest.raises(UnknownIdentifierError):
        store.table_snapshot(["leads; DROP TABLE records"])
    assert not pwned.exists() and "leads" in store.table_names()


def test_restore_backup_root_picks_the_newest_and_lists_the_others(good, tmp_path: Path) -> None:
    """`restore-backup ROOT` (ROOT as `backup ROOT` wrote it) said "no manifest.json"; now it takes the newest."""
    root = tmp_path / "root"
    shutil.copytree(good["unsigned"].parent, root)
    older = root / "20000101T000000000000Z"
    shutil.copytree(root / good["unsigned"].name, older)
    listed = run_cli(tmp_path / "home", "restore-backup", root, "--list")
    assert listed.stdout.split() == [str(root / good["unsigned"].name), str(older)]
    dry = run_cli(tmp_path / "home", "restore-backup", root, "--dry-run")
    assert dry.returncode == 0 and good["unsigned"].name in dry.stdout and "dry run: nothing was written" in dry.stdout
    assert "UNSIGNED" in dry.stdout
    assert store_in(tmp_path / "home").counts()["records"] == 0
    no_tty = run_cli(tmp_path / "home", "restore-backup", root)
    assert no_tty.returncode == 2 and "--yes" in no_tty.stderr
    assert store_in(tmp_path / "home").counts()["records"] == 0
    done = run_cli(tmp_path / "home", "restore-backup", root, "--yes")
    assert done.returncode == 0, done.stderr
    assert store_in(tmp_path / "home").counts()["records"] > 0


def test_a_backup_of_another_history_is_named_when_the_target_holds_data(good, tmp_path: Path) -> None:
    """Restoring over a store that has history is refused, saying how the backup's history compares with it."""
    home = tmp_path / "home"
    assert run_cli(home, "restore-backup", good["unsigned"], "--yes").returncode == 0
    folder, _ = _forged_copy(good["unsigned"], tmp_path / "forged", hostile_backups.history_forged_and_rehashed)
    done = run_cli(home, "restore-backup", folder, "--yes")
    assert done.returncode == 2 and "not empty" in done.stderr
    assert "DISAGREES with this store's from row 1" in done.stdout
