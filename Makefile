# TWP developer tasks.  `make test` is what CI runs (through .ci/run).
#
#   make run       set up (scripts/setup.sh run) and serve the demo config (config/twp.toml)
#   make test      set up (scripts/setup.sh test) and run every test suite;
#                  PYTEST_ARGS='-k ldap -x' narrows it
#   make venv      the set-up of `make test` alone: system packages, then .venv with the kernel,
#                  its first-party plugins and contrib/twp-* (webhook, json-http), each with its test extra
#   make services  install the system packages tests need, when something is missing
#   make bench     run benchmarks/bench_*.py
#   make clean     remove build and cache files (keeps .venv; `make distclean` removes it)
#
# The set-up prints one line per step and sends apt's and pip's output to .venv/setup.log.

PYTHON ?= python3
VENV := .venv
VENV_PY := $(VENV)/bin/python
# What each set-up installed: `make run` needs no test extra and no Kerberos bindings
# (docs/architecture.md, "Dependencies and why"); `make test` needs both, and its venv
# serves `make run` too.
RUN_STAMP := $(VENV)/.stamp-run
TEST_STAMP := $(VENV)/.stamp-test
PYTEST_ARGS ?=

PLUGIN_DIRS := $(patsubst %/pyproject.toml,%,$(wildcard plugins/*/pyproject.toml))
CONTRIB_DIRS := $(patsubst %/pyproject.toml,%,$(wildcard contrib/twp-*/pyproject.toml))
PROJECTS := pyproject.toml $(addsuffix /pyproject.toml,$(PLUGIN_DIRS) $(CONTRIB_DIRS))
BENCHMARKS := $(sort $(wildcard benchmarks/bench_*.py))

.PHONY: venv run test test-scale test-cluster services bench clean distclean FORCE

venv: $(TEST_STAMP)

# A stamp records which projects were installed: a plugin added (or removed) since the
# last set-up triggers a new one even when its pyproject.toml is older than the stamp.
ifneq ($(strip $(file < $(RUN_STAMP))),$(strip $(PROJECTS)))
$(RUN_STAMP): FORCE
endif
ifneq ($(strip $(file < $(TEST_STAMP))),$(strip $(PROJECTS)))
$(TEST_STAMP): FORCE
endif

$(RUN_STAMP): $(PROJECTS)
	@PYTHON='$(PYTHON)' bash scripts/setup.sh run --venv $(VENV)
	@echo '$(strip $(PROJECTS))' > $@

$(TEST_STAMP): $(PROJECTS)
	@PYTHON='$(PYTHON)' bash scripts/setup.sh test --venv $(VENV)
	@echo '$(strip $(PROJECTS))' > $@
	@cp $@ $(RUN_STAMP)

FORCE:

run: $(RUN_STAMP)
	@$(VENV)/bin/twp serve --config config/twp.toml

# The set-up installs the system packages before the venv; `services` then checks them
# again, in case one was removed since the venv was built (quick when they are present).
test: $(TEST_STAMP) services
	$(VENV_PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

# The cluster tests against a real redis-server (issue 20); out of make test while an intermittent hang is found.
test-cluster: $(TEST_STAMP) services
	TWP_CLUSTER_TESTS=1 $(VENV_PY) -m pytest -q -p no:cacheprovider tests/test_cluster.py tests/test_cluster_nodes.py

# The directory engine's 200,000-record memory test (minutes on 2 cores; not in every make test).
test-scale: $(TEST_STAMP) services
	TWP_SCALE=1 $(VENV_PY) -m pytest -q -p no:cacheprovider tests/test_directory_scale.py

# The script's --check is quick and needs no root; install only when it fails.
services:
	@PYTHON='$(PYTHON)' bash scripts/install-system-deps.sh --check \
		|| PYTHON='$(PYTHON)' bash scripts/install-system-deps.sh

bench: venv
	@set -e; if [ -z '$(BENCHMARKS)' ]; then echo "no benchmarks/bench_*.py to run"; fi; \
	for bench in $(BENCHMARKS); do \
		echo "== $$bench"; \
		$(VENV_PY) $$bench; \
	done

clean:
	rm -rf build dist .pytest_cache .hypothesis .mypy_cache .ruff_cache
	find . -path ./$(VENV) -prune -o \( -name __pycache__ -o -name '*.egg-info' \) -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
