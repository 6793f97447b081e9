# SESami: `make test` and `make dev` do all set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
INFRA_VENV := .venv-infra
PY := $(VENV)/bin/python
INFRA_PY := $(INFRA_VENV)/bin/python
PYTEST_ARGS ?=
# Chart.js from npm, copied where the dashboard (and `chalice package`) finds it; not in git.
CHARTJS := app/chalicelib/web/dashboard/vendor/chart.umd.js
# The customer-onboarding program, copied where GET /account/onboarding/stack (and `chalice
# package`) finds it to hand each tenant a ready-to-run bundle; not in git.
ONBOARDING_FILES := Pulumi.yaml __main__.py onboarding.py policies.py requirements.txt README.md
ONBOARDING_COPY := app/chalicelib/tenants/onboarding_program

.PHONY: install test lint typecheck unit infra-test package bench dev fuzz clean

install: $(VENV)/.installed $(INFRA_VENV)/.installed node_modules/.installed .system-deps $(CHARTJS) $(ONBOARDING_COPY)/.copied

.system-deps: scripts/install-system-deps.sh
	bash scripts/install-system-deps.sh
	@touch $@

# App + tests: the Lambda bundle's requirements plus test tools (protobuf 7 via momento).
$(VENV)/.installed: requirements-dev.txt app/requirements.txt clients/python/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip check
	@touch $@

# The Pulumi programs (protobuf < 7 via pulumi): a separate environment, see README.
$(INFRA_VENV)/.installed: requirements.txt customer-onboarding/requirements.txt
	test -x $(INFRA_PY) || $(PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_PY) -m pip install -q --upgrade pip
	$(INFRA_PY) -m pip install -q -r requirements.txt -r customer-onboarding/requirements.txt
	$(INFRA_PY) -m pip check
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(CHARTJS): node_modules/.installed
	mkdir -p $(@D)
	cp node_modules/chart.js/dist/chart.umd.min.js $@

$(ONBOARDING_COPY)/.copied: $(addprefix customer-onboarding/,$(ONBOARDING_FILES))
	mkdir -p $(ONBOARDING_COPY)
	cp $(addprefix customer-onboarding/,$(ONBOARDING_FILES)) $(ONBOARDING_COPY)/
	@touch $@

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check app devstack bench tests customer-onboarding infra ops clients

typecheck: $(VENV)/.installed
	$(VENV)/bin/mypy

unit: install
	$(PY) -m pytest --ignore=tests/infra $(PYTEST_ARGS)

# Includes the `package`-marked test (builds the Lambda package; needs PyPI). Offline:
# make infra-test PYTEST_ARGS='-m "not package"'
infra-test: $(INFRA_VENV)/.installed
	$(INFRA_PY) -m pytest -p no:cacheprovider tests/infra $(PYTEST_ARGS)

# The Lambda deployment package for `pulumi up`: build/package/{deployment.zip,sam.json}.
package: $(INFRA_VENV)/.installed $(CHARTJS) $(ONBOARDING_COPY)/.copied
	$(INFRA_PY) infra/chalice_package.py build/package

test: install lint typecheck unit infra-test

bench: install
	$(PY) -m bench

# Schemathesis against the local stack, 1,000 examples per operation (`make test` runs 100).
FUZZ_EXAMPLES ?= 1000
fuzz: install
	SESAMI_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest tests/test_fuzz.py $(PYTEST_ARGS)

dev: install
	$(PY) -m devstack.dev

clean:
	rm -rf $(VENV) $(INFRA_VENV) node_modules .system-deps .pytest_cache .mypy_cache .ruff_cache build
