# Everything a user runs. `make` alone prints this list.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STRATEGY ?= rls
PORT ?= 8000
ACCOUNTS ?= 5
PGPORT ?= 54320
# CLUSTER=citus: rls or schemas on a Citus coordinator (PGPORT) and two workers (the next ports).
CLUSTER ?=
WORKERS ?= 2
COUNTS ?= 10,100
STRATEGIES := rls multidb schemas
comma := ,
space := $(subst ,, )
export PGPORT

.DEFAULT_GOAL := help
.PHONY: help install check-strategy up serve worker down test citus-install lint format lock bench-install bench bench-scale bench-load bench-tenants bench-lifecycle bench-tasks slides slides-install clean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  Variables: STRATEGY=$(STRATEGY) (one of: $(STRATEGIES)) PORT=$(PORT) ACCOUNTS=$(ACCOUNTS) PGPORT=$(PGPORT) CLUSTER=$(CLUSTER) (citus, or unset)"

install: $(VENV)/.installed ## Build .venv from requirements.lock (needs python3 >= 3.11)

$(VENV)/.installed: requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || \
		{ echo "error: Python 3.11 or newer is needed as '$(PYTHON)' (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.lock
	$(VENV)/bin/pip install --quiet --no-deps -e .
	@touch $@

check-strategy:
	@case " $(STRATEGIES) " in *" $(STRATEGY) "*) ;; \
		*) echo "error: STRATEGY=$(STRATEGY) is not one of: $(STRATEGIES)"; exit 2;; esac
	@case "$(CLUSTER)" in "") ;; \
		citus) case "$(STRATEGY)" in rls|schemas) ;; \
			*) echo "error: CLUSTER=citus is for STRATEGY=rls or schemas (multidb spreads tenant databases over servers itself)"; exit 2;; esac;; \
		*) echo "error: CLUSTER=$(CLUSTER) is not one of: citus (or leave it unset)"; exit 2;; esac

up: check-strategy install ## Start PostgreSQL and serve STRATEGY on http://tenant-1.localhost:PORT/
	@if docker info >/dev/null 2>&1; then \
		echo "Docker engine found: running STRATEGY=$(STRATEGY) with docker compose"; \
		DJANGO_SECRET_KEY="$${DJANGO_SECRET_KEY:-$$($(PY) -m shared.localdb secret-key)}" \
		STRATEGY=$(STRATEGY) PORT=$(PORT) ACCOUNTS=$(ACCOUNTS) \
		$(if $(CLUSTER),DB_HOST=citus-coordinator TENANCY_CITUS=1 COMPOSE_PROFILES=citus) \
		docker compose up --build; \
	else \
		echo "No Docker engine answers: using a project-local PostgreSQL cluster (.pgdata/)"; \
		$(PY) -m shared.localdb up --cluster $(or $(CLUSTER),single) && \
			$(MAKE) --no-print-directory serve; \
	fi

serve: check-strategy install ## Migrate, add ACCOUNTS test accounts if empty, serve (database already up)
	@$(PY) $(STRATEGY)/manage.py migrate --verbosity 0
	@if [ "$(ACCOUNTS)" != 0 ]; then \
		$(PY) $(STRATEGY)/manage.py createtestdata --accounts $(ACCOUNTS) --if-empty; fi
	@$(PY) $(STRATEGY)/manage.py check --database default
	@echo "Serving $(STRATEGY): http://tenant-1.localhost:$(PORT)/ (tenant index: http://localhost:$(PORT)/)"
	@echo "Ctrl-C stops the server; 'make down' stops PostgreSQL."
	@echo "Background tasks: 'make worker STRATEGY=$(STRATEGY)' in another shell runs them."
	@exec $(VENV)/bin/gunicorn $(STRATEGY).wsgi --bind 127.0.0.1:$(PORT) --workers $(WORKERS) \
		--access-logfile - --log-level warning

worker: check-strategy install ## Run STRATEGY's background tasks, each in its tenant (database already up)
	@exec $(PY) $(STRATEGY)/manage.py runworker

down: ## Stop PostgreSQL (compose, or the local cluster or Citus nodes); data is kept
	@if docker info >/dev/null 2>&1; then COMPOSE_PROFILES=citus docker compose down; \
	else $(PY) -m shared.localdb down; fi

test: install slides-install ## Run every test against a throwaway PostgreSQL (or DATABASE_URL's server)
	$(PY) -m tests.run

# Build Citus from source where no package or image can be used (bash .ci/run does, with the
# files the CI machines keep); it installs the build dependencies from Debian's packages.
CITUS_SOURCE ?=
CITUS_PATCH ?=
citus-install: ## Build and install Citus from CITUS_SOURCE (a tarball) and CITUS_PATCH (optional; needs root)
	@[ -n "$(CITUS_SOURCE)" ] || { echo "error: set CITUS_SOURCE=path/to/citus-X.Y.Z.tar.gz"; exit 2; }
	bash shared/citus/install.sh "$(CITUS_SOURCE)" "$(CITUS_PATCH)"

# mypy reads each strategy's settings (django-stubs); these stand in for a server, never reached.
TYPECHECK_ENV := TENANCY_ENV_FILE=/dev/null DJANGO_DEBUG=1 \
	RUNTIME_DATABASE_URL=postgresql://tenancy_app@127.0.0.1/ \
	OWNER_DATABASE_URL=postgresql://tenancy_owner@127.0.0.1/
lint: install ## ruff (lint, formatting), then mypy: shared and bench with each strategy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	@# One strategy at a time: their apps share labels ("tracker"), so each needs its settings.
	@for s in $(STRATEGIES); do \
		echo "mypy shared bench $$s ($$s.settings)"; \
		env $(TYPECHECK_ENV) DJANGO_SETTINGS_MODULE=$$s.settings \
			$(VENV)/bin/mypy --cache-dir .mypy_cache/$$s shared bench $$s || exit 1; \
	done

format: install ## ruff: fix what can be fixed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

lock: ## Re-resolve pyproject.toml into requirements.lock
	rm -rf /tmp/tenancy-lock && $(PYTHON) -m venv /tmp/tenancy-lock
	/tmp/tenancy-lock/bin/pip install --quiet --upgrade pip
	/tmp/tenancy-lock/bin/pip install --quiet -e '.[dev]'
	{ echo "# Fully pinned set for Python 3.11; regenerate with 'make lock' after changing pyproject.toml."; \
	  /tmp/tenancy-lock/bin/pip freeze --exclude-editable; } > requirements.lock

# `make bench` knobs; ACCOUNTS and WORKERS count only when given on the command line here,
# since `make up` has its own defaults for them.
# (A list with commas cannot be a default inside $(or ...): its commas would split it.)
BENCH_TENANTS := 10,50,100
BENCH_ACCOUNTS = $(if $(filter command line,$(origin ACCOUNTS)),$(ACCOUNTS),100)
bench-install: $(VENV)/.bench-installed

$(VENV)/.bench-installed: $(VENV)/.installed
	$(VENV)/bin/pip install --quiet -e '.[bench]' -c requirements.lock
	@touch $@

bench: install bench-install ## Strategies, unsafe baselines, ceiling and control under locust, at TENANTS=10,50,100 busy tenants (about 25 min; CLUSTER=citus adds rls and schemas on Citus)
	$(PY) -m bench.compare --accounts $(BENCH_ACCOUNTS) --users $(or $(USERS),20) \
		$(if $(filter citus,$(CLUSTER)),--citus) $(if $(TARGETS),--targets $(TARGETS)) \
		--spawn-rate $(or $(SPAWN_RATE),20) --duration $(or $(DURATION),15s) \
		--rounds $(or $(ROUNDS),3) --workers $(WORKERS) --tenants $(or $(TENANTS),$(BENCH_TENANTS))

bench-scale: install bench-install ## Cost as tenants grow: provisioning, migrations, sizes, connections, requests/s in ROUNDS interleaved rounds (COUNTS=10,100; CLUSTER=citus adds rls and schemas on Citus)
	$(PY) -m bench.scale --counts $(COUNTS) --duration $(or $(DURATION),15s) \
		--workers $(WORKERS) --rounds $(or $(ROUNDS),3) \
		--strategies $(subst $(space),$(comma),$(STRATEGIES)$(if $(filter citus,$(CLUSTER)), rls-citus schemas-citus))

bench-load: install bench-install ## createtestdata into rls: median rows/s of RUNS runs (ACCOUNTS=2000 RUNS=3)
	$(PY) -m bench.load --strategy rls --accounts $(if $(filter command line,$(origin ACCOUNTS)),$(ACCOUNTS),2000) --runs $(or $(RUNS),3)

bench-lifecycle: install bench-install ## export + import in every strategy, movetenant under load (multidb)
	$(PY) -m bench.lifecycle $(if $(ROUNDS),--rounds $(ROUNDS))

bench-tasks: install bench-install ## tasks (enqueue, worker) and per-tenant limits in every strategy
	$(PY) -m bench.background $(if $(ROUNDS),--rounds $(ROUNDS))

bench-tenants: install bench-install ## multidb and schemas: provisioning, migratetenants, loading beside rls (TENANTS=200)
	$(PY) -m bench.tenants --strategy multidb --tenants $(or $(TENANTS),200)
	$(PY) -m bench.tenants --strategy schemas --tenants $(or $(TENANTS),200)

slides-install: presentation/node_modules/.package-lock.json ## Install reveal.js from npm (once)

presentation/node_modules/.package-lock.json: presentation/package.json presentation/package-lock.json
	@command -v npm >/dev/null || { echo "error: npm is needed for the slides (Debian: apt-get install npm)"; exit 1; }
	cd presentation && npm ci --no-audit --no-fund --loglevel=error

SLIDES_PORT ?= 8001
slides: install slides-install ## Serve the deck, built from the code, on http://localhost:8001/
	@$(PY) presentation/serve.py --port $(SLIDES_PORT)

clean: ## Remove the virtualenv and caches (not .pgdata)
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
