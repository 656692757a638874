# Everything a fresh machine needs; the virtual environment lives in .venv.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch first, from the CPU build (a bare "torch" requirement may pull a multi-GB CUDA build).
TORCH := torch==2.13.0

.PHONY: install install-test demo test lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e .

install-test: install
	$(BIN)/pip install -q -e '.[test]'

demo: install
	$(BIN)/ragls index .
	$(BIN)/ragls search "how are files split into chunks" --root . --top-k 5

test: install-test
	$(BIN)/ruff check .
	$(BIN)/pytest -q

bench: install-test
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) build *.egg-info
