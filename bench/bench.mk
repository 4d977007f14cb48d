# `make bench`: every layer measured side by side (python -m bench.run; see bench/README.md).
# Included by the main Makefile, whose VENV, PY, `venv` and apt_install it uses.
#
#   make bench                                  full run, about 20 minutes on 2 cores
#   make bench BENCH_QUICK=1                    a few seconds per row: checks the pipeline
#   make bench BENCH_OUT=results/mine.json      where the JSON goes (.md and .png beside it)
#   make bench BENCH_STEPS=matrix               some steps only (matrix, spike, rss, costs)
#
# A full run also copies its table and chart to docs/bench/ (committed: the README shows them).

BENCH_DEBS := nginx varnish wrk memcached valgrind
BENCH_OUT ?= results/bench-$(shell date +%Y-%m-%d).json
BENCH_QUICK ?=
BENCH_STEPS ?=

.PHONY: bench bench-venv bench-scaleout

$(VENV)/.bench: $(VENV)/.runtime requirements-bench.txt
	$(VENV)/bin/pip install -q -r requirements-bench.txt
	touch $@

bench-venv: $(VENV)/.bench

## bench: seed, start the stack, measure every layer; JSON + Markdown + PNG in results/
bench: bench-venv
	$(call apt_install,$(BENCH_DEBS))
	BENCH_QUICK=$(BENCH_QUICK) BENCH_STEPS=$(BENCH_STEPS) $(PY) -m bench.run --out $(BENCH_OUT)

## bench-scaleout: the same store on 1, 2 and 3 app nodes behind one Varnish (docs/scale-out.md)
bench-scaleout: bench-venv
	$(call apt_install,$(BENCH_DEBS) redis-server)
	$(PY) -m bench.scaleout $(if $(BENCH_QUICK),--quick) --out results/scaleout-$(shell date +%Y-%m-%d).json
