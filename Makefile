# prs — the two commands that do everything on a fresh machine:
#   make demo   runs PRS and Rand at equal budget on examples/ and prints both summaries
#   make test   runs every test (unit and integration) in a release build
# Both install what they need first (scripts/setup.sh is idempotent).

SWIFT  ?= swift
PRS    := .build/release/prs

.PHONY: setup build test demo clean

setup:
	bash scripts/setup.sh

build:
	$(SWIFT) build -c release --product prs

# Numeric and model-heavy code is slow in debug builds: tests run in release.
test: setup
	$(SWIFT) build -c release --build-tests
	$(SWIFT) test -c release --skip-build

demo: setup build
	bash scripts/demo.sh

clean:
	rm -rf .build runs/demo
