# One-command first run. `make demo` and `make test` each build .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# CPU machines: constrain torch to the local CPU build. A GPU user: make TORCH_CONSTRAINT= ...
TORCH_CONSTRAINT ?= -c constraints/cpu.txt

.PHONY: install demo test bench clean

$(BIN)/vidiff: pyproject.toml constraints/cpu.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q $(TORCH_CONSTRAINT) -e ".[test]"
	@touch $@

install: $(BIN)/vidiff

demo: install
	$(BIN)/vidiff demo --out demo_out

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python benchmarks/sampler_exactness.py

clean:
	rm -rf $(VENV) demo_out runs
