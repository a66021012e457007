# The two commands a new user types (README): `make demo` and `make test`.
# Everything installs into .venv; Go-built tools (the official rules oracle,
# the Kubernetes control plane) are built by the test fixtures and cached in
# $(OURO_CACHE) so a second run skips them.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
export OURO_CACHE ?= $(HOME)/.cache/ouroboros

.PHONY: setup demo test unit lint bench clean cluster-demo cluster-down

# The images' exact pins constrain the dev install too: the same versions everywhere, and pip's
# resolver never backtracks through hundreds of botocore releases (s3fs pins it; unconstrained,
# the resolution took over 15 minutes).
$(BIN)/ouro: pyproject.toml setup.py requirements/trainer.txt requirements/operator.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade --quiet pip
	$(BIN)/pip install --quiet -e '.[dev,operator,trainer]' -c requirements/trainer.txt -c requirements/operator.txt
	@touch $@

setup: $(BIN)/ouro

demo: setup
	$(BIN)/ouro train --preset quick
	$(BIN)/ouro registry show --game standard-11x11-2p
	$(BIN)/ouro play --players champion,heuristic --games 20 --render 0 --render-final

# The Kubernetes story without Docker: a local control plane, the process-based
# node of the tests, `helm install` of charts/ouroboros and a tiny TrainingRun,
# watched until it succeeds (scripts/cluster_demo.py). The cluster keeps
# running until `make cluster-down`.
cluster-demo: setup
	$(BIN)/python scripts/cluster_demo.py up

cluster-down:
	$(BIN)/python scripts/cluster_demo.py down

lint: setup
	$(BIN)/ruff check contract trainer operator tests benchmarks scripts
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest

unit: setup
	$(BIN)/pytest -m "unit and not integration"  # the s3:// cases of unit modules need the S3 server

bench: setup
	$(BIN)/python -m benchmarks.engine

clean:
	rm -rf $(VENV) .pytest_cache
