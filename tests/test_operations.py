"""Operations: backup and restore on both backends, migrations over a database holding data, and two
app processes on one database (sessions, bookings and capacity seen through either)."""
import http.cookiejar
import io
import os
import random
import re
import subprocess
import sys
import tarfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from sqlmodel import Session, func, select

from models import (
    Child,
    DaySlot,
    Document,
    DocumentType,
    Establishment,
    Family,
    Period,
    Reservation,
    Unit,
    User,
    utcnow,
)
from services import backup, counters, migrations, planning
from tests.conftest import check_invariants, free_port, place_drift


def test_backup_then_restore_brings_the_data_back(app, database_url, tmp_path):
    runner = app.test_cli_runner()
    dump = tmp_path / "sauvegarde.bin"
    result = runner.invoke(args=["backup", str(dump)])
    assert result.exit_code == 0, result.output
    assert "Sauvegarde écrite" in result.output and dump.stat().st_size > 0
    engine = create_engine(database_url)
    with Session(engine) as db:
        families = db.exec(select(func.count()).select_from(Family)).one()
        db.add(Family(name="Ajoutée après la sauvegarde"))
        db.commit()
        assert db.exec(select(func.count()).select_from(Family)).one() == families + 1
    engine.dispose()
    result = runner.invoke(args=["restore", str(dump), "--yes"])
    assert result.exit_code == 0, result.output
    engine = create_engine(database_url)
    with Session(engine) as db:
        assert db.exec(select(func.count()).select_from(Family)).one() == families
        assert db.exec(select(User).where(User.email == "zoe.parent@tilleuls.test")).one()
    engine.dispose()


def test_migrations_upgrade_a_database_holding_data(tmp_path):
    """From the first revision with a family in it, up to the newest: the data stays."""
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"

    revisions = list(ScriptDirectory.from_config(migrations.config(url)).walk_revisions())
    first = revisions[-1].revision
    migrations.upgrade(url, first)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO family (name, address_line, address_extra, postcode, city, phone_home, "
                          "allowance_scheme, allowance_number, payer_position, created_at) VALUES "
                          "('Ancienne', '1 rue', '', '00100', 'Ville', '', '', '', 1, '2026-01-01 00:00:00')"))
    migrations.upgrade(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM family")).scalar_one() == "Ancienne"
    engine.dispose()


def _serve(url: str, port: int, secret: str, tmp_path: Path):
    env = dict(os.environ, DATABASE_URL=url, FLASK_SECRET_KEY=secret, FLASK_ARGON2_TIME_COST="1",
               FLASK_ARGON2_MEMORY_COST="1024", FLASK_OUTBOX_INTERVAL="0", FLASK_BASE_URL="http://127.0.0.1")
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "4",
         "app:create_app()"],
        cwd=Path(__file__).resolve().parent.parent, env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / f"g{port}.log", "w"))


def _wait(port: int):
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"no server on {port}")


class Browser:
    """A cookie jar shared by requests to either server: one parent's browser."""

    def __init__(self):
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def get(self, url):
        with self.opener.open(url) as r:
            return r.read().decode()

    def post(self, url, data):
        with self.opener.open(urllib.request.Request(url, data=urllib.parse.urlencode(data).encode())) as r:
            return r.read().decode()

    def login(self, base, email, password):
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', self.get(base + "/")).group(1)
        return self.post(base + "/", {"csrf_token": token, "email": email, "password": password})


@pytest.mark.backends("postgresql")  # several app servers run on PostgreSQL
def test_two_app_processes_share_sessions_bookings_and_capacity(app, database_url, db, tmp_path, backend):
    # The last place of the day's Journée, for two families.
    est = db.exec(select(Establishment).where(Establishment.name == "Centre de loisirs Les Tilleuls")).one()
    period = db.exec(select(Period).where(Period.establishment_id == est.id)).one()
    journee = db.exec(select(Unit).where(Unit.establishment_id == est.id, Unit.code == "journee")).one()
    zoe = db.exec(select(Child).where(Child.first_name == "Zoé")).one()
    rayan = db.exec(select(Child).where(Child.first_name == "Rayan")).one()

    started = utcnow()  # the reservations made through the two servers are the ones after this
    plan = planning.load_planning(db, zoe, period, planning.all_period_days(period), started)
    day = next(d for d in plan.days if plan.cell(journee, d).state == "available" and plan.outcome(journee, d) == "accepted")
    db.add(DaySlot(unit_id=journee.id, day=day, taken=journee.capacity - 1))
    db.commit()

    ports = [free_port(), free_port()]
    servers = [_serve(database_url, p, "a-secret-shared-by-every-server", tmp_path) for p in ports]
    try:
        for p in ports:
            _wait(p)
        a, b = (f"http://127.0.0.1:{p}" for p in ports)
        durand = Browser()
        durand.login(a, "zoe.parent@tilleuls.test", "zoe-parent-tilleuls")
        assert "Mon compte famille" in durand.get(b + "/")  # the session is valid on the other server

        def book(browser, server, child):
            page = browser.get(f"{server}/reservations/planning/{child.id}/{period.id}?mois={day:%Y-%m}")
            token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
            browser.post(f"{server}/reservations/planning/{child.id}/{period.id}/cellule",
                         {"csrf_token": token, "cellule": f"{day.isoformat()}.{journee.id}", "mois": f"{day:%Y-%m}"})
            recap = browser.get(f"{server}/reservations/planning/{child.id}/{period.id}/recapitulatif")
            revision = re.search(r'name="revision" value="(\d+)"', recap).group(1)
            return browser.post(f"{server}/reservations/planning/{child.id}/{period.id}/confirmer",
                                {"csrf_token": token, "revision": revision})

        summary = book(durand, a, zoe)  # through server A
        assert "Votre réservation est enregistrée" in summary
        seen = durand.get(f"{b}/reservations/planning/{zoe.id}/{period.id}?mois={day:%Y-%m}")  # through B
        assert f'id="cell-{day.isoformat()}-journee" class="cell cell--booked"' in seen

        haddad = Browser()
        haddad.login(b, "rayan.parent@tilleuls.test", "rayan-parent-tilleuls")
        summary = book(haddad, b, rayan)  # through server B: the place is gone
        assert "Liste d&#39;attente" in summary or "Liste d'attente" in summary
    finally:
        for s in servers:
            s.terminate()
            s.wait(10)
    db.expire_all()
    assert db.get(DaySlot, (journee.id, day)).taken == journee.capacity
    assert planning.overbooked(db) == []
    assert len(db.exec(select(Reservation).where(Reservation.created_at >= started)).all()) >= 2


def _invariants(url, drift=None):
    engine = create_engine(url)
    with Session(engine) as db:
        if drift is None:
            return place_drift(db)
        check_invariants(db, drift)
    engine.dispose()


def _counts(url):
    engine = create_engine(url)
    with engine.connect() as conn:
        counts = {t: conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one()
                  for t in ("family", "user", "reservation", "invoice", "counter")}
    engine.dispose()
    return counts


def _damaged_copies(dump: Path, tmp_path: Path) -> dict[str, Path]:
    data = dump.read_bytes()
    truncated = tmp_path / "tronquee.bin"
    truncated.write_bytes(data[: len(data) // 2])
    corrupted = tmp_path / "abimee.bin"
    middle = len(data) // 2
    corrupted.write_bytes(data[:middle] + random.Random(16).randbytes(4096) + data[middle + 4096:])
    garbage = tmp_path / "autre.bin"
    garbage.write_bytes(b"ceci n'est pas une sauvegarde" * 100)
    return {"truncated": truncated, "corrupted": corrupted, "garbage": garbage}


def test_a_damaged_backup_is_refused_and_the_live_data_stays(app, database_url, tmp_path):
    """Truncated, corrupted or foreign: the restore says why and changes nothing (critical: no wipe)."""
    runner = app.test_cli_runner()
    dump = tmp_path / "sauvegarde.bin"
    made = runner.invoke(args=["backup", str(dump)])
    assert made.exit_code == 0 and "Sauvegarde écrite et vérifiée" in made.output, made.output
    before = _counts(database_url)
    drift = _invariants(database_url)
    for what, damaged in _damaged_copies(dump, tmp_path).items():
        result = runner.invoke(args=["restore", str(damaged), "--yes"])
        assert result.exit_code != 0, what
        assert "Les données actuelles n'ont pas été modifiées." in result.output, (what, result.output)
        assert ("illisible" in result.output or "endommagée" in result.output or "pg_restore a échoué" in result.output
                or "n'est pas une sauvegarde" in result.output), (what, result.output)
        assert _counts(database_url) == before, what
        _invariants(database_url, drift)
    # the portal still works on the untouched data
    engine = create_engine(database_url)
    with Session(engine) as db:
        assert db.exec(select(User).where(User.email == "zoe.parent@tilleuls.test")).one()
    engine.dispose()


def test_backup_refuses_to_call_a_damaged_file_good(app, database_url, tmp_path):
    dump = tmp_path / "sauvegarde.bin"
    backup.backup(database_url, dump)
    for damaged in _damaged_copies(dump, tmp_path).values():
        with pytest.raises(backup.BackupError):
            backup.check(database_url, damaged)
    backup.check(database_url, dump)


def test_a_tool_that_echoes_the_damaged_bytes_is_still_reported_in_french():
    """pg_restore quotes a corrupt table of contents as it read it, in bytes that are not UTF-8."""
    with pytest.raises(backup.BackupError) as refused:
        backup._run(["sh", "-c", r"printf 'pg_restore: error: dependency ID \262\276 out of range' >&2; exit 1"],
                    "pg_restore")
    assert str(refused.value).startswith("pg_restore a échoué : pg_restore: error: dependency ID")
    assert "out of range" in str(refused.value)


def test_restore_is_refused_while_the_portal_is_in_service(app, make_app, database_url, tmp_path):
    runner = app.test_cli_runner()
    dump = tmp_path / "sauvegarde.bin"
    assert runner.invoke(args=["backup", str(dump)]).exit_code == 0
    serving = make_app()  # another process of the portal on this database
    assert serving.test_client().get("/readyz").status_code == 200  # it holds its connection
    result = runner.invoke(args=["restore", str(dump), "--yes"])
    assert result.exit_code != 0 and "Restauration refusée" in result.output, result.output
    assert "Arrêtez le portail" in result.output
    serving.extensions["ribambelle.engine"].dispose()
    lock = serving.extensions.pop("ribambelle.running_lock", None)
    if lock:
        lock.close()  # that process stops
    assert runner.invoke(args=["restore", str(dump), "--yes"]).exit_code == 0


def test_after_a_restore_no_number_already_shown_is_handed_out_again(app, database_url, tmp_path):
    runner = app.test_cli_runner()
    dump = tmp_path / "sauvegarde.bin"
    assert runner.invoke(args=["backup", str(dump)]).exit_code == 0
    drift = _invariants(database_url)
    engine = create_engine(database_url)
    with Session(engine) as db:  # numbers given out after the backup (shown to families)
        for _ in range(3):
            shown = counters.next_value(db, "reservation-2099")
        db.commit()
    engine.dispose()
    restored = runner.invoke(args=["restore", str(dump), "--yes"])
    assert restored.exit_code == 0, restored.output
    engine = create_engine(database_url)
    with Session(engine) as db:
        assert counters.next_value(db, "reservation-2099") == shown + 1
        db.commit()
        check_invariants(db, drift)
    engine.dispose()


def test_the_families_documents_are_saved_and_restored_with_the_database(app, database_url, tmp_path):
    folder = tmp_path / "pieces"
    app.config["DOCUMENTS_DIR"] = str(folder)
    folder.mkdir()
    (folder / "a1.jpg").write_bytes(b"photo du carnet")
    engine = create_engine(database_url)
    with Session(engine) as db:
        family = db.exec(select(Family)).first()
        parent = db.exec(select(User).where(User.family_id == family.id)).first()
        kind = DocumentType(name="Carnet de vaccination")
        db.add(kind)
        db.flush()
        db.add(Document(family_id=family.id, document_type_id=kind.id, file_name="carnet.jpg", stored_name="a1.jpg",
                        content_type="image/jpeg", size=15, sha256="0" * 64, uploaded_by_id=parent.id))
        db.commit()
    runner = app.test_cli_runner()
    dump = tmp_path / "sauvegarde.bin"
    result = runner.invoke(args=["backup", str(dump)])
    assert result.exit_code == 0, result.output
    assert backup.documents_archive(dump).is_file() and "documents des familles" in result.output
    (folder / "a1.jpg").unlink()  # lost after the backup
    (folder / "b2.jpg").write_bytes(b"sent after the backup")
    result = runner.invoke(args=["restore", str(dump), "--yes"])
    assert result.exit_code == 0, result.output
    assert (folder / "a1.jpg").read_bytes() == b"photo du carnet" and not (folder / "b2.jpg").exists()
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("pieces.avant-restauration-")]
    assert len(kept) == 1 and (kept[0] / "b2.jpg").exists()  # the directory it replaced, kept aside
    engine.dispose()


def test_a_backup_whose_documents_are_missing_or_tampered_is_refused(app, database_url, tmp_path):
    folder = tmp_path / "pieces"
    app.config["DOCUMENTS_DIR"] = str(folder)
    runner = app.test_cli_runner()
    dump = tmp_path / "sauvegarde.bin"
    assert runner.invoke(args=["backup", str(dump)]).exit_code == 0
    archive = backup.documents_archive(dump)
    with tarfile.open(archive, "w") as tar:  # a folder, a path: not documents
        info = tarfile.TarInfo("../../etc/cron.d/x")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    result = runner.invoke(args=["restore", str(dump), "--yes"])
    assert result.exit_code != 0 and "autre chose que des documents" in result.output
    assert "n'ont pas été modifiées" in result.output and not (tmp_path / "etc").exists()
