# The two commands of the README. Each installs what it needs first.
.PHONY: demo test setup

demo:
	@bash scripts/setup.sh
	.venv/bin/genedge demo $(ARGS)

test:
	@bash scripts/setup.sh --test
	.venv/bin/ruff check .
	.venv/bin/mypy
	.venv/bin/lint-imports
	.venv/bin/python -m pytest $(ARGS)
