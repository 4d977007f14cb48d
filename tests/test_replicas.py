"""The replica router's decisions (the real primary + replica are started in tests/stack/)."""

import pytest

from shop import replicas
from shop.models import Cart, CartItem, Category, Product

router = replicas.ReplicaRouter()


def _read_in_a_shared_page(model):
    """Where the router sends a read of `model` made while a shared page renders."""
    return replicas.render_from_replica(router.db_for_read, model)


@pytest.fixture
def replica_health(monkeypatch):
    state = {"usable": True}
    monkeypatch.setattr(replicas.health, "usable", lambda: state["usable"])
    return state


@pytest.mark.parametrize("model", [Product, Category])
def test_catalog_reads_in_shared_pages_go_to_a_healthy_replica(replica_health, model):
    assert _read_in_a_shared_page(model) == "replica"


@pytest.mark.parametrize("model", [Product, Category])
def test_catalog_reads_elsewhere_stay_on_the_primary(replica_health, model):
    assert router.db_for_read(model) == "default"  # the cart page, the admin, the API


@pytest.mark.parametrize("model", [Cart, CartItem])
def test_cart_reads_always_use_the_primary(replica_health, model):
    assert _read_in_a_shared_page(model) == "default"


def test_unhealthy_replica_falls_back_to_the_primary(replica_health):
    replica_health["usable"] = False
    assert _read_in_a_shared_page(Product) == "default"


def test_writes_and_migrations_use_the_primary_only(replica_health):
    assert replicas.render_from_replica(router.db_for_write, Product) == "default"
    assert router.allow_migrate("replica", "shop") is False
    assert router.allow_migrate("default", "shop") is True


def test_health_is_checked_at_most_every_few_seconds(monkeypatch, settings):
    settings.REPLICA_CHECK_SECONDS = 60
    checks = []
    monkeypatch.setattr(replicas, "_check_replica", lambda: checks.append(1) or True)
    health = replicas._ReplicaHealth()
    assert all(health.usable() for _ in range(100))
    assert len(checks) == 1


def _failing_on_replica(calls):
    """A view that reads the catalog: it fails while the router sends the read to the replica."""

    def view():
        database = router.db_for_read(Product)
        calls.append(database)
        if database == "replica":
            raise replicas.OperationalError(2013, "Lost connection to server during query")
        return database

    return view


def test_replica_failing_a_read_is_skipped_and_the_page_rendered_from_the_primary(replica_health, monkeypatch):
    monkeypatch.setattr(replicas.health, "mark_down", lambda: replica_health.update(usable=False))
    calls = []

    assert replicas.render_from_replica(_failing_on_replica(calls)) == "default"
    assert calls == ["replica", "default"]
    assert replica_health["usable"] is False


def test_primary_failing_a_read_is_not_retried(replica_health):
    replica_health["usable"] = False
    calls = []

    def view():
        calls.append(router.db_for_read(Product))
        raise replicas.OperationalError(2006, "MySQL server has gone away")

    with pytest.raises(replicas.OperationalError):
        replicas.render_from_replica(view)
    assert calls == ["default"]
