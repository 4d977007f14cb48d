"""The replica router's decisions (the real primary + replica are started in tests/stack/)."""

import pytest

from shop import replicas
from shop.models import Cart, CartItem, Category, Product

router = replicas.ReplicaRouter()


@pytest.fixture
def replica_health(monkeypatch):
    state = {"usable": True}
    monkeypatch.setattr(replicas.health, "usable", lambda: state["usable"])
    return state


@pytest.mark.parametrize("model", [Product, Category])
def test_catalog_reads_in_shared_pages_go_to_a_healthy_replica(replica_health, model):
    with replicas.catalog_reads_from_replica():
        assert router.db_for_read(model) == "replica"


@pytest.mark.parametrize("model", [Product, Category])
def test_catalog_reads_elsewhere_stay_on_the_primary(replica_health, model):
    assert router.db_for_read(model) == "default"  # the cart page, the admin, the API


@pytest.mark.parametrize("model", [Cart, CartItem])
def test_cart_reads_always_use_the_primary(replica_health, model):
    with replicas.catalog_reads_from_replica():
        assert router.db_for_read(model) == "default"


def test_unhealthy_replica_falls_back_to_the_primary(replica_health):
    replica_health["usable"] = False
    with replicas.catalog_reads_from_replica():
        assert router.db_for_read(Product) == "default"


def test_writes_and_migrations_use_the_primary_only(replica_health):
    with replicas.catalog_reads_from_replica():
        assert router.db_for_write(Product) == "default"
    assert router.allow_migrate("replica", "shop") is False
    assert router.allow_migrate("default", "shop") is True


def test_health_is_checked_at_most_every_few_seconds(monkeypatch, settings):
    settings.REPLICA_CHECK_SECONDS = 60
    checks = []
    monkeypatch.setattr(replicas, "_check_replica", lambda: checks.append(1) or True)
    health = replicas._ReplicaHealth()
    assert all(health.usable() for _ in range(100))
    assert len(checks) == 1
