# prs — the two commands that do everything on a fresh machine:
#   make demo   runs Rand, PRand and PRS at equal budget on the held-out demo prompts and prints the summaries
#   make test   runs every test (unit and integration) in a release build
# Both install what they need first (scripts/setup.sh is idempotent).

SWIFT  ?= swift
PRS    := .build/release/prs

.PHONY: setup build test demo bench-engine clean

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

# This engine and llama.cpp (llama-cpp-python) on the same file and thread count, in one run.
BENCH_MODEL ?= models/SmolLM2-135M-Instruct.Q4_1.gguf
BENCH_ARGS  ?= --prompt-tokens 200 --gen 128 --n 8 --threads 2
bench-engine: setup build
	bash scripts/bench-engine.sh $(BENCH_MODEL) $(BENCH_ARGS)

clean:
	rm -rf .build runs/demo
