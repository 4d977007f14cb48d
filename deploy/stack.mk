# The production stack on loopback: Varnish :6081 -> Nginx :8081 -> uWSGI -> Django,
# run by deploy/stack.py (python -m deploy.stack) from the very files in deploy/ (rendered for ports and paths).
# Included by the main Makefile, whose VENV, PY, DEMO_PRODUCTS, `venv` and apt_install it uses.
#
#   make stack                                   start it, print the URLs; in demo mode (SHOP_DEMO=1,
#                                                the default) seed an empty catalog with DEMO_PRODUCTS
#                                                products and print the demo admin's login
#   make stack-down                              stop it (by PID; safe to repeat)
#   make stack STACK_ARGS="--varnish-port 7081 --nginx-port 7082"
#   make stack NODES=3                           three app nodes (127.0.0.2-4) behind cluster.vcl,
#                                                sharing the database and CACHE_URL; stack-down
#                                                stops them all (docs/scale-out.md)

STACK_ARGS ?=
# App nodes, each its own Nginx + uWSGI; 1 is the single-node stack behind default.vcl.
NODES ?= 1

.PHONY: stack stack-down

## stack: start Varnish, Nginx and uWSGI on loopback (installs nginx and varnish if missing)
stack: venv
	$(call apt_install,nginx varnish)
	$(PY) -m deploy.stack start --nodes $(NODES) --seed-demo $(DEMO_PRODUCTS) $(STACK_ARGS)

## stack-down: stop the stack that `make stack` started
stack-down:
	$(PY) -m deploy.stack stop $(STACK_ARGS)
