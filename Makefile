# The README's commands. `make demo` and `make test` work on a fresh machine.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
HOST ?= 127.0.0.1
PORT ?= 8000
# The demo runs over plain HTTP on localhost, so its cookies cannot be Secure-only.
DEMO_ENV := LINLI_SESSION_COOKIE_SECURE=false LINLI_REMEMBER_COOKIE_SECURE=false

.PHONY: demo test install install-dev translations translations-update migrate serve worker worker-parts lint bench bench-load clean-demo

$(BIN)/python:
	$(PY) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

translations: $(VENV)/.installed
	$(BIN)/pybabel compile -d web/translations

migrate: install translations
	$(FLASK) db upgrade

demo: migrate
	$(FLASK) demo load --if-empty --history-weeks 13
	$(FLASK) schedule solve --if-unsolved --publish --time-limit 30
	@echo
	@$(FLASK) demo logins
	@echo
	@echo "Linli is starting on http://$(HOST):$(PORT)/  (Ctrl-C stops it)"
	@echo "Its JSON API: http://$(HOST):$(PORT)/api/v1/docs  (docs/api.md)"
	$(DEMO_ENV) $(BIN)/gunicorn --config gunicorn.conf.py --bind $(HOST):$(PORT) wsgi:app

serve: migrate
	$(BIN)/gunicorn --config gunicorn.conf.py --bind $(HOST):$(PORT) wsgi:app

# The suite runs on every core (pytest-xdist); TEST_WORKERS=0 runs it in one process. (One worker more
# than cores, for the browser tests' mostly waiting worker, ran the suite in 21 min 4 s on 2 cores; the
# suite before its last trims took 23 min 20 s on one per core. Busier cores expose more timing races.)
TEST_WORKERS ?= auto
test: install-dev translations
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check .

worker: migrate
	REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/0} $(BIN)/rq worker --worker-class web.jobs.Worker --with-scheduler --url $${REDIS_URL:-redis://127.0.0.1:6379/0} --path . linli

# Part workers (docs/operations.md, "Part workers"): they solve the parts of big solves for the solve
# jobs of every machine. One per core (PART_WORKERS), on this machine or any other with the same code,
# requirements and a synchronized clock, against the web app's Redis. They need no database.
PART_WORKERS ?= $(shell nproc 2>/dev/null || echo 2)
worker-parts: install
	$(BIN)/rq worker-pool --worker-class solver.rq_parts.PartWorker --num-workers $(PART_WORKERS) --url $${LINLI_SOLVE_PARTS_REDIS_URL:-$${REDIS_URL:-redis://127.0.0.1:6379/0}} --path . $${LINLI_SOLVE_PARTS_QUEUE:-linli-parts}

bench: install-dev
	$(BIN)/python bench/solver_bench.py

# The load test (bench/load_test.py): the load client, locust, lives in its own venv, never in the app's.
# Pass options with ARGS, e.g. make bench-load ARGS="--db sqlite,postgresql --users 50 --minutes 5".
.venv-load/.installed: bench/requirements-load.txt
	$(PY) -m venv .venv-load || python3 -m venv .venv-load
	.venv-load/bin/pip install --quiet -r bench/requirements-load.txt
	touch $@

bench-load: install-dev translations .venv-load/.installed
	$(BIN)/python bench/load_test.py $(ARGS)

clean-demo:
	rm -f instance/linli.sqlite

# Re-extract the interface strings and merge them into the Chinese catalogue (then translate the new ones).
translations-update: install-dev
	$(BIN)/pybabel extract -F babel.cfg -k _l -o web/translations/messages.pot web matcher
	$(BIN)/pybabel update -i web/translations/messages.pot -d web/translations -l zh_Hans_CN
