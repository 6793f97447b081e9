# SESami: `make test` and `make dev` do all set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
INFRA_VENV := .venv-infra
PY := $(VENV)/bin/python
INFRA_PY := $(INFRA_VENV)/bin/python
PYTEST_ARGS ?=
# Trees ruff formats and checks; dashboard modules node checks (ES modules; vendor/ is not ours).
PY_TREES := app devstack bench tests customer-onboarding infra ops clients
DASHBOARD_JS := $(wildcard app/chalicelib/web/dashboard/*.js)
# Chart.js from npm, copied where the dashboard (and `chalice package`) finds it; not in git.
CHARTJS := app/chalicelib/web/dashboard/vendor/chart.umd.js
# The customer-onboarding program, copied where GET /account/onboarding/stack (and `chalice
# package`) finds it to hand each tenant a ready-to-run bundle; not in git.
ONBOARDING_FILES := Pulumi.yaml __main__.py onboarding.py policies.py requirements.txt README.md
ONBOARDING_COPY := app/chalicelib/tenants/onboarding_program

.PHONY: install test check fmt lint typecheck jscheck unit unit-fast infra-test infra-fast \
	package bench dev fuzz clean

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
	$(VENV)/bin/ruff format --check $(PY_TREES)

# `ruff format` then the fixes `ruff check` knows how to make.
fmt: $(VENV)/.installed
	$(VENV)/bin/ruff format $(PY_TREES)
	$(VENV)/bin/ruff check --fix .

# mypy, strict (pyproject.toml): the app, tests and tools in .venv; then with .venv-infra's
# interpreter, where pulumi and pulumi_aws are installed (typed), the two Pulumi programs: infra/
# with its tests, and customer-onboarding/ on its own (each has a __main__.py). The programs'
# modules import each other by plain name, as Pulumi runs them: hence MYPYPATH and package bases.
# The app those runs reach is checked by the first one (--follow-imports=silent).
INFRA_MYPY := $(VENV)/bin/mypy --python-executable $(INFRA_PY) --cache-dir .mypy_cache/infra \
	--follow-imports=silent
typecheck: $(VENV)/.installed $(INFRA_VENV)/.installed
	$(VENV)/bin/mypy
	MYPYPATH=infra:tests/infra $(INFRA_MYPY) --explicit-package-bases infra tests/infra/*.py
	$(INFRA_MYPY) customer-onboarding

# Syntax of every dashboard module. They are ES modules in .js files without a package.json
# "type", and Node 20's `node --check file.js` exits 0 on those even with a syntax error; read
# from stdin as a module, a syntax error fails.
jscheck:
	@test -n "$(DASHBOARD_JS)"
	@for f in $(DASHBOARD_JS); do \
		node --input-type=module --check < $$f || { echo "node --check: $$f"; exit 1; }; \
	done
	@echo "node --check: $(words $(DASHBOARD_JS)) dashboard modules"

# Every app test: the live stack (browsers, fuzzing, the client's live tests) included.
# Every app test, on both cores (a file per worker: its module-scoped fixtures stay in one
# process; each worker starts its own DynamoDB Local and, for the live tests, its own stack).
# TEST_WORKERS=0 runs them in this process, one after another.
TEST_WORKERS ?= 2
unit: install
	$(PY) -m pytest --ignore=tests/infra -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# The app tests that need neither the live stack, nor the routes (Chalice's test client with moto's
# Cognito), nor DynamoDB Local: see README "Testing" for what that leaves out and what it costs.
# CHECK_MARKERS="not live and not routes" adds the store and ingest tests on DynamoDB Local. On
# both cores, a module per worker (its module-scoped fixtures stay in one process).
CHECK_WORKERS ?= 2
CHECK_MARKERS ?= not live and not routes and not ddb_local
unit-fast: install
	$(PY) -m pytest -p no:cacheprovider -q --ignore=tests/infra -m "$(CHECK_MARKERS)" \
		-n $(CHECK_WORKERS) --dist loadfile $(PYTEST_ARGS)

# Includes the `package`-marked test (builds the Lambda package; needs PyPI). Offline:
# make infra-test PYTEST_ARGS='-m "not package"'
infra-test: $(INFRA_VENV)/.installed
	$(INFRA_PY) -m pytest -p no:cacheprovider tests/infra $(PYTEST_ARGS)

infra-fast: $(INFRA_VENV)/.installed
	$(INFRA_PY) -m pytest -p no:cacheprovider -q tests/infra -m "not package" $(PYTEST_ARGS)

# The fast loop, for every change: format, lint, types, the dashboard's JavaScript, the fast tests.
check: install lint typecheck jscheck unit-fast infra-fast

# The Lambda deployment package for `pulumi up`: build/package/{deployment.zip,sam.json}.
package: $(INFRA_VENV)/.installed $(CHARTJS) $(ONBOARDING_COPY)/.copied
	$(INFRA_PY) infra/chalice_package.py build/package

test: install lint typecheck jscheck unit infra-test

bench: install
	$(PY) -m bench

# Schemathesis against the local stack, 1,000 examples per operation (`make test` runs 100).
FUZZ_EXAMPLES ?= 1000
fuzz: install
	SESAMI_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest tests/api/test_fuzz.py $(PYTEST_ARGS)

dev: install
	$(PY) -m devstack.dev

clean:
	rm -rf $(VENV) $(INFRA_VENV) node_modules .system-deps .pytest_cache .mypy_cache .ruff_cache build
