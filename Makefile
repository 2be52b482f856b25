# The user's vocabulary. Everything installs itself; see README.md.
.PHONY: dev up test test-python test-db test-edge lint types stop status reset bench

KAMIOI := .venv/bin/kamioi

dev: ## install what is missing, bring the stack up, run the demo
	@scripts/install.sh
	@$(KAMIOI) up
	@$(KAMIOI) demo

up:
	@$(KAMIOI) up

test: ## install, bring up what the tests need, run every suite
	@scripts/install.sh
	@$(KAMIOI) up --quiet
	@scripts/test.sh

lint:
	.venv/bin/ruff check .
	.venv/bin/mypy kamioi api jobs cli local_stack tests bench

types: ## regenerate the frontend's TypeScript types from the migrations (commit the result)
	@$(KAMIOI) up --quiet
	@scripts/gen-types.sh

stop:
	@$(KAMIOI) stop

status:
	@$(KAMIOI) status

reset:
	@$(KAMIOI) reset
