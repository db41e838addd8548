"""Installing a town: the CLI migrates and seeds a fresh database, and the secret is generated once."""
import os
import stat

import pytest
from sqlmodel import Session, func, select

import models
from app import _instance_secret, create_app


def test_migrate_and_seed_a_fresh_sqlite_file(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.sqlite'}"
    app = create_app({"TESTING": True, "DATABASE_URL": url, "SECRET_KEY": "x", "ARGON2_TIME_COST": 1, "ARGON2_MEMORY_COST": 1024})
    runner = app.test_cli_runner()
    assert "Base de données à jour." in runner.invoke(args=["migrate"]).output
    assert "Données de démonstration chargées." in runner.invoke(args=["seed-demo"]).output
    assert "rien chargé" in runner.invoke(args=["seed-demo"]).output
    with Session(app.extensions["ribambelle.engine"]) as db:
        assert db.exec(select(func.count()).select_from(models.User)).one() == 6
    app.extensions["ribambelle.engine"].dispose()


def test_secret_key_is_generated_once_and_private(tmp_path):
    path = tmp_path / "secret_key"
    first = _instance_secret(path)
    assert len(first) == 64
    assert _instance_secret(path) == first
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_settings_come_from_flask_prefixed_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("FLASK_TOWN_NAME", "Ville de Saint-Essai")
    monkeypatch.setenv("FLASK_MAIL_PORT", "2525")
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite'}", "SECRET_KEY": "x"})
    assert app.config["TOWN_NAME"] == "Ville de Saint-Essai"
    assert app.config["MAIL_PORT"] == 2525
    app.extensions["ribambelle.engine"].dispose()


def test_the_portal_does_not_start_without_its_public_address(monkeypatch, tmp_path):
    """Links in mails and payments come from BASE_URL: a server without it refuses to start, saying why."""
    monkeypatch.delenv("FLASK_BASE_URL", raising=False)
    url = f"sqlite:///{tmp_path / 'x.sqlite'}"
    for value in (None, "famille.ville.fr", "ftp://famille.ville.fr", "https://famille.ville.fr/?x=1"):
        settings = {"DATABASE_URL": url, "SECRET_KEY": "x", "OUTBOX_INTERVAL": 0, **({"BASE_URL": value} if value else {})}
        with pytest.raises(RuntimeError, match="Réglage BASE_URL manquant ou invalide"):
            create_app(settings)
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "x", "BASE_URL": "https://famille.ville.fr/", "OUTBOX_INTERVAL": 0})
    assert app.config["BASE_URL"] == "https://famille.ville.fr"
    assert app.config["TRUSTED_HOSTS"][0] == "famille.ville.fr"
    app.extensions["ribambelle.engine"].dispose()
