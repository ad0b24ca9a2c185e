# Two set-up commands on a fresh machine with Python 3.11 and make: `make preview` and `make test`.
# Both create .venv and install the pinned requirements first (again only when a requirements file changes).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STACK ?= local
INSTALLED := $(VENV)/.installed
REQUIREMENTS := requirements.txt requirements-dev.txt policies/requirements.txt constraints.txt

.PHONY: preview test lint fuzz bench check e2e toolchain clean

$(INSTALLED): $(REQUIREMENTS)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed: make PYTHON=python3.11 ...")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

## preview: offline preview of STACK (default local); manifests go to build/manifests/STACK
preview: $(INSTALLED)
	$(BIN)/python -m tools.preview --stack $(STACK) --out build/manifests/$(STACK)

## test: the whole suite (tools/install-redis.sh first: the cache's config is started by real Redis servers)
test: $(INSTALLED)
	tools/install-redis.sh
	$(BIN)/python -m pytest -q

## lint: the GitHub workflows: zizmor offline (fails on a finding of medium severity or above) and actionlint,
## built once from its Go module into ${PLATFORM_LINT_CACHE:-~/.cache/platform-lint} (lint/actionlint.sh)
lint: $(INSTALLED)
	$(BIN)/zizmor --offline --min-severity medium --no-progress .github/workflows
	lint/actionlint.sh

## fuzz: stack config fuzzed with hypothesis (HYPOTHESIS_PROFILE=fuzz): 10,000 valid and 10,000 mutated configs through
## stack_config.load only (valid ones load; invalid ones are ConfigErrors naming platform: key paths), then a
## separate, smaller render property: 600 generated configs, each one load accepts (about 3 in 4) rendered whole
## (~0.3 s each) and required schema-valid and clean under the pack. Prints the number of examples each test ran;
## failing examples are kept in build/hypothesis. `make test` runs the same tests on a small derandomized profile.
fuzz: $(INSTALLED)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -q -s tests/test_fuzz_config.py

## bench: scaling benchmark (not part of test); figures also in build/bench.json
bench: $(INSTALLED)
	$(BIN)/python -m benchmarks.scaling

## toolchain: build the real Pulumi CLI, kubernetes provider and local control plane from Go modules (cached
## outside the work tree: ${PLATFORM_E2E_CACHE:-~/.cache/platform-e2e}); a cold build takes an estimated 45-55 minutes on 2 idle cores
toolchain:
	e2e/toolchain.sh

## e2e: the real engine end to end (README, "Verified for real"); writes build/e2e/report.json
e2e: $(INSTALLED) toolchain
	$(BIN)/python -m e2e.run

## check: the policy pack over plain Kubernetes YAML, e.g. make check PATHS=build/manifests
check: $(INSTALLED)
	$(BIN)/python -m tools.check $(PATHS)

clean:
	rm -rf $(VENV) build .pytest_cache
