# The two commands of the README: `make run` and `make test`. Everything else supports them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install system-deps bench-system-deps run test lint typecheck pytest clean bench

install: $(STAMP)

# Re-install only when the packaging metadata changed; the editable install picks up code.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "chatsecure needs Python >= 3.11")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

# The system programs the suite (Xvfb) and the benchmark (ngircd) run: installed with
# apt-get when missing, or a stop at once with the command that would. The list is in
# .ci/system-deps.
system-deps:
	@.ci/system-deps test

bench-system-deps:
	@.ci/system-deps bench

# The server in the foreground with the repo's config.toml: dev certificates if missing,
# the schema migrated, then exec so Ctrl-C reaches the server itself.
run: install
	test -f certs/server.pem || $(BIN)/chatsecure-admin --config config.toml gencert --hostname localhost
	$(BIN)/chatsecure-admin --config config.toml migrate
	@echo "To add a user, in another terminal: $(BIN)/chatsecure-admin adduser NAME"
	exec $(BIN)/chatsecure-server --config config.toml

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy

pytest: install system-deps
	$(BIN)/pytest

# system-deps first, so a machine that lacks a program stops before the long checks.
test: system-deps lint typecheck pytest

# The benchmark suite against ngircd: small scale in under ten minutes; FULL=1 for the
# full scale of docs/performance.md. ONLY="rooms ..." runs only those scenarios, and
# SERVERS="chatsecure chatsecure-irc ngircd" (the default: all three) picks the servers
# of the fan-out and latency scenarios. Writes bench/results/latest.json and latest.md.
bench: install bench-system-deps
	$(BIN)/python -m bench $(if $(FULL),--full) $(foreach o,$(ONLY),--only $(o)) $(foreach s,$(SERVERS),--server $(s))

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
