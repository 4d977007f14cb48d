# The two commands of the README: `make demo` and `make test`. Also `make stack`, `make stack-down`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_PRODUCTS ?= 500
PYTEST_ARGS ?=
# The public demo key; production sets SECRET_KEY instead (config/settings.py refuses to start).
export SHOP_DEMO ?= 1

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian packages: what mysqlclient builds against, and the real servers the tests start.
BUILD_DEBS := libmariadb-dev pkg-config
TEST_DEBS := nginx varnish chromium chromium-driver wrk memcached

# Install the Debian packages named in $(1) that are missing (apt-get update first).
define apt_install
	@missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:" $$missing; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi
endef

.PHONY: help demo test venv venv-dev test-debs lint clean

help:
	@echo "make demo        serve the store under uWSGI at http://127.0.0.1:8000/ (SQLite, DB cache)"
	@echo "make test        run the whole suite (set DATABASE_URL for MariaDB, see README)"
	@echo "make stack       run Varnish :6081 -> Nginx :8081 -> uWSGI from deploy/; make stack-down"

$(VENV)/.runtime: requirements.txt
	$(call apt_install,$(BUILD_DEBS))
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	touch $@

venv: $(VENV)/.runtime
venv-dev: $(VENV)/.dev

test-debs:
	$(call apt_install,$(TEST_DEBS))

# axe-core for the accessibility tests (tests/browser/test_accessibility.py), from the npm registry
# at the version package-lock.json pins; Debian's npm only if there is no npm at all.
AXE := node_modules/axe-core/axe.min.js
$(AXE): package.json package-lock.json
	@command -v npm >/dev/null || { echo "Installing Debian packages: npm"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq npm; }
	npm ci --no-audit --no-fund
	touch $@

demo: venv
	$(PY) manage.py migrate --noinput
	$(PY) manage.py createcachetable
	$(PY) manage.py seed_demo --products $(DEMO_PRODUCTS)
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) manage.py ensure_demo_admin --site http://127.0.0.1:8000
	@echo "Serving the store at http://127.0.0.1:8000/ (Ctrl-C stops it)"
	$(VENV)/bin/uwsgi --ini deploy/uwsgi/demo.ini

# The whole suite on the database of DATABASE_URL (SQLite by default), then the cache tests
# once more against Redis, the other backend CI proves, then Django's own cache tests against
# pagecache/backends.py (tests/django_cache_suite/run.py).
test: venv-dev test-debs $(AXE)
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) -m pytest $(PYTEST_ARGS)
	CACHE_URL=$${REDIS_CACHE_URL:-redis://127.0.0.1:6379/15} $(PY) -m pytest -q tests/test_caching.py
	$(PY) -m tests.django_cache_suite.run

lint: venv-dev
	$(VENV)/bin/ruff check .

clean:
	rm -rf staticfiles test-artifacts .pytest_cache

include deploy/stack.mk
include bench/bench.mk
include e2e/e2e.mk
