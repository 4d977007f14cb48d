# The production stack on loopback: Varnish :6081 -> Nginx :8081 -> uWSGI -> Django,
# run by deploy/stack.py from the very files in deploy/ (rendered for ports and paths).
# Included by the main Makefile, whose VENV, PY, `venv` and apt_install it uses.
#
#   make stack                                   start it, print the URLs
#   make stack-down                              stop it (by PID; safe to repeat)
#   make stack STACK_ARGS="--varnish-port 7081 --nginx-port 7082"

STACK_ARGS ?=

.PHONY: stack stack-down

## stack: start Varnish, Nginx and uWSGI on loopback (installs nginx and varnish if missing)
stack: venv
	$(call apt_install,nginx varnish)
	$(PY) deploy/stack.py start $(STACK_ARGS)

## stack-down: stop the stack that `make stack` started
stack-down:
	$(PY) deploy/stack.py stop $(STACK_ARGS)
