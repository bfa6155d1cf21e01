# TWP developer tasks.  `make test` is what CI runs (through .ci/run).
#
#   make venv      create/refresh .venv: the kernel, its first-party plugins, contrib/twp-webhook
#   make run       serve the demo config (config/twp.toml)
#   make test      run every test suite; PYTEST_ARGS='-k ldap -x' narrows it
#   make services  install the system packages tests need, when something is missing
#   make bench     run benchmarks/bench_*.py
#   make clean     remove build and cache files (keeps .venv; `make distclean` removes it)

PYTHON ?= python3
VENV := .venv
VENV_PY := $(VENV)/bin/python
STAMP := $(VENV)/.stamp
PYTEST_ARGS ?=

# Every first-party plugin with a pyproject.toml, then the example third-party plugin.
# Each is installed with its [test] extra (the real servers its tests start); a plugin
# without that extra only makes pip print a warning.
PLUGIN_DIRS := $(patsubst %/pyproject.toml,%,$(wildcard plugins/*/pyproject.toml))
CONTRIB_DIRS := $(patsubst %/pyproject.toml,%,$(wildcard contrib/twp-webhook/pyproject.toml))
PROJECTS := pyproject.toml $(addsuffix /pyproject.toml,$(PLUGIN_DIRS) $(CONTRIB_DIRS))
BENCHMARKS := $(sort $(wildcard benchmarks/bench_*.py))

.PHONY: venv run test services bench clean distclean FORCE

venv: $(STAMP)

# The stamp records which projects were installed: a plugin added (or removed) since
# the last install triggers a new one even when its pyproject.toml is older than the stamp.
ifneq ($(strip $(file < $(STAMP))),$(strip $(PROJECTS)))
$(STAMP): FORCE
endif

$(STAMP): $(PROJECTS)
	@test -x $(VENV_PY) || { echo "creating $(VENV) with $$(command -v $(PYTHON))"; $(PYTHON) -m venv $(VENV); }
	$(VENV_PY) -m pip install --quiet --disable-pip-version-check --upgrade pip "setuptools>=68" wheel
	$(VENV_PY) -m pip install --disable-pip-version-check --progress-bar off \
		-e '.[test]' $(foreach dir,$(PLUGIN_DIRS) $(CONTRIB_DIRS),-e '$(dir)[test]')
	@echo '$(strip $(PROJECTS))' > $@

FORCE:

run: venv
	$(VENV)/bin/twp serve --config config/twp.toml

test: venv services
	$(VENV_PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

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
