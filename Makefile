# The two commands of the README: `make demo` (the main job) and `make test`.
# Each creates .venv and installs what it needs on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
OUT    ?= runs/demo

.PHONY: install demo test browser bench compile-check theory clean

$(STAMP): pyproject.toml
	@echo "make: creating $(VENV) and installing torch==2.13.0 (CPU), then minidl with its dev tools (pyproject.toml)"
	$(PYTHON) -m venv $(VENV)
	# torch first, pinned: the CPU wheel on the course machines; an unpinned torch pulls GBs of CUDA
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/minidl demo --out $(OUT)

test: $(STAMP) browser
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# tests/web's headless-browser test needs chromium: install it where we can (root, apt-get), else it skips
browser:
	@command -v chromium >/dev/null || (command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] \
		&& echo "make: installing chromium with apt-get, for the headless-browser test of minidl serve" \
		&& (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)) \
		|| echo "make: chromium not installed: the browser test will be skipped"

bench: $(STAMP)
	$(BIN)/minidl bench mlp
	$(BIN)/minidl bench gru
	$(BIN)/minidl bench transformer
	$(BIN)/minidl bench kernels

# every Triton kernel compiled for sm_90 and sm_80 without a GPU (not under the interpreter)
compile-check: $(STAMP)
	env -u TRITON_INTERPRET $(BIN)/python -m minidl.kernels.compile_check

theory: $(STAMP)
	$(BIN)/python -m theory.gradient_flow --out theory/gradient_flow.png

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
