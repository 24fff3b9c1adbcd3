# dist_spk: `make demo` and `make test` set everything up on a fresh machine.
#
#   make setup   system packages (ffmpeg, espeak-ng) when missing + .venv with the package, idempotent
#   make demo    the main job, locally on the built-in synthetic demo corpus
#   make test    ruff, then the whole test suite (unit, integration, slow, ray, chaos)
#   make lint    ruff
#   make lock    regenerate constraints.txt from the current .venv

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo
SYSTEM_PACKAGES := ffmpeg espeak-ng
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup system-packages demo test test-fast test-chaos bench lint lock clean

setup: system-packages $(STAMP)

# ffmpeg's shared libraries for torchcodec (pyannote.audio 4 decodes with it); espeak-ng for the demo corpus.
system-packages:
	@missing=""; \
	command -v ffmpeg >/dev/null || missing="$$missing ffmpeg"; \
	command -v espeak-ng >/dev/null || missing="$$missing espeak-ng"; \
	if [ -n "$$missing" ]; then \
		echo "installing system packages:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; dist_spk needs Python 3.11 (set PYTHON=...)"; exit 1; }
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=24"
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[test,dev]"
	touch $(STAMP)

demo: setup
	$(BIN)/dist-spk demo --out $(DEMO_DIR)

test: setup
	$(BIN)/ruff check src tests bench ray_jobs
	$(BIN)/python -m pytest -q

test-chaos: setup
	$(BIN)/python -m pytest -q -m chaos

bench: setup
	$(BIN)/python -m bench.run

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow and not ray and not chaos"

lint: setup
	$(BIN)/ruff check src tests bench ray_jobs

lock: setup
	{ sed -n '1,2p' constraints.txt; $(BIN)/python -m pip freeze --exclude-editable | grep -vi '^dist-spk'; } > constraints.tmp
	mv constraints.tmp constraints.txt

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .ruff_cache
