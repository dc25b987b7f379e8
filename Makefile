# Workbench: `make run` sets everything up and starts the app with demo data;
# `make test` runs the whole suite. Both need nothing but Python 3.11.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 8000

VIEWER := frontend/viewer

.PHONY: run test setup setup-dev migrate demo worker beat web lint bench openapi clean frontend

$(VENV)/.installed: requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed ($(PYTHON) not found)"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

# The browser viewer (Cornerstone3D, bundled by Vite) needs Node 20 and npm; its build
# lands in frontend/static/viewer/, which Django serves as static files. Its unit tests
# (Vitest, src/*.test.ts) run after the build.
frontend:
	@if [ -f $(VIEWER)/package.json ]; then \
	  command -v npm >/dev/null || { echo "Node 20 and npm are needed to build the viewer"; exit 1; }; \
	  cd $(VIEWER) && { [ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ] \
	    || npm ci --no-audit --no-fund --loglevel=error; } && npm run build --silent && npm test --silent; \
	fi

# DEBUG is off by default, so WhiteNoise serves the collected static files (staticfiles/).
setup: $(VENV)/.installed frontend
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0

setup-dev: $(VENV)/.installed-dev

demo: setup
	$(PY) manage.py seed_demo

# The web server, a Celery worker and Celery beat (the sweep that sends again what a crash
# left pending) together; Ctrl-C stops all three.
run: demo
	@echo "Workbench on http://$(HOST):$(PORT)/  (API docs: /api/docs/)"
	@$(VENV)/bin/celery -A workbench worker -Q deid,export,training,inference,default --concurrency 2 --loglevel INFO & \
	  worker=$$!; $(VENV)/bin/celery -A workbench beat --loglevel WARNING & beat=$$!; \
	  trap 'kill $$worker $$beat 2>/dev/null; wait $$worker $$beat 2>/dev/null' EXIT INT TERM; \
	  $(PY) manage.py runserver $(HOST):$(PORT)

worker: setup
	$(VENV)/bin/celery -A workbench worker -Q deid,export,training,inference,default --loglevel INFO

beat: setup
	$(VENV)/bin/celery -A workbench beat --loglevel INFO

test: setup-dev frontend
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy workbench anonymizer annotations datasets frontend inference

bench: setup-dev
	$(PY) bench/deid_throughput.py
	$(PY) bench/export_throughput.py

openapi: setup
	$(PY) manage.py spectacular --validate --file docs/openapi.yaml

clean:
	rm -rf var staticfiles
