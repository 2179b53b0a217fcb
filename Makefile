# Every target bootstraps its own virtual environment from PyPI: nothing installed by hand is needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PLUGINS := $(sort $(dir $(wildcard plugins/*/pyproject.toml)))
STAMP  := $(VENV)/.installed

.PHONY: venv demo test lint bench clean run plugin

venv: $(STAMP)

$(STAMP): pyproject.toml $(wildcard plugins/*/pyproject.toml)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' $(foreach p,$(PLUGINS),-e $(p))
	touch $(STAMP)

demo: venv
	$(BIN)/aktenhub demo

# Two workers, one test file each at a time: a file's module fixtures (servers, hubs) stay in one process.
test: venv
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

lint: venv
	$(BIN)/ruff check hub plugins tests bench contrib
	$(BIN)/ruff format --check hub plugins tests bench contrib
	$(BIN)/mypy hub plugins/*/hub_* contrib/*/hub_* bench

# A new plugin from contrib/plugin-template: make plugin NAME=k3 (then `make venv` installs it)
plugin: venv
	$(BIN)/python -m hub.testing.newplugin $(NAME)

# Every benchmark in turn, each writing its figures (--json) into .bench/; then one table of them all.
bench: venv
	$(BIN)/python -m bench.all --out .bench

run: venv
	$(BIN)/aktenhub run -c config/aktenhub.example.yaml

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
