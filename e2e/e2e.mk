# End-to-end checks against any deployment: the cache contract, the carts, two real browsers.
# Included by the main Makefile, whose VENV, PY, `venv-dev` and apt_install it uses.
#
#   make e2e URL=https://shop.example/                     every check; exit 0 only if all hold
#   make e2e URL=https://staging.example/ E2E_ARGS=--insecure        a self-signed certificate
#   make e2e URL=http://127.0.0.1:6081/ E2E_ARGS="--skip browsers"   no Chromium
#   E2E_ADMIN_USER=... E2E_ADMIN_PASSWORD=... make e2e URL=...       also the admin price change
#
# The checks, what a failure usually means and the E2E_* variables: docs/e2e.md.

URL ?=
E2E_ARGS ?=

.PHONY: e2e e2e-url

## e2e: run the end-to-end checks against URL (installs chromium and chromium-driver if missing)
e2e: e2e-url venv-dev
	$(call apt_install,chromium chromium-driver)
	$(PY) -m e2e $(E2E_ARGS) "$(URL)"

# First among e2e's prerequisites: no URL, no venv or package work.
e2e-url:
	@if [ -z "$(URL)" ]; then echo "usage: make e2e URL=https://shop.example/ [E2E_ARGS='--only shared-pages']" >&2; exit 2; fi
