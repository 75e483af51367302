# One-command first run. `make demo` and `make test` each build .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# CPU machines: constrain torch to the local CPU build. A GPU user: make TORCH_CONSTRAINT= ...
TORCH_CONSTRAINT ?= -c constraints/cpu.txt

.PHONY: install demo test bench clean

# the library and what the shipped models need (text encoders)
$(BIN)/vidiff: pyproject.toml constraints/cpu.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q $(TORCH_CONSTRAINT) -e ".[text]"
	@touch $@

# plus what the tests need (pytest, diffusers, the data tools, Ray)
$(VENV)/.test-deps: $(BIN)/vidiff
	$(BIN)/pip install -q $(TORCH_CONSTRAINT) -e ".[test]"
	@touch $@

install: $(BIN)/vidiff

demo: install
	$(BIN)/vidiff demo --out demo_out

test: $(VENV)/.test-deps
	$(BIN)/python -m pytest -q

bench: $(VENV)/.test-deps
	$(BIN)/python benchmarks/sampler_exactness.py

clean:
	rm -rf $(VENV) demo_out runs
