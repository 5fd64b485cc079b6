# prs — the two commands that do everything on a fresh machine:
#   make demo   runs Rand, PRand and PRS at equal budget on the held-out demo prompts and prints the summaries
#   make test   runs every test (unit, gradient, reference and integration) in a release build
# Both install what they need first, idempotently: make demo only what building and running prs
# need (scripts/setup.sh), make test also the reference tools (scripts/setup.sh --tests).

SWIFT  ?= swift
PRS    := .build/release/prs

.PHONY: setup setup-tests setup-bench build test demo bench-engine bench-run bench-concurrency bench-train bench-serve loop-experiment evidence evidence-loop clean

# What building and running prs need (Debian's SQLite and OpenBLAS headers, the default model).
setup:
	bash scripts/setup.sh

# That, and the reference tools the tests and benchmarks need (llama.cpp, gguf, autograd, Chromium).
setup-tests:
	bash scripts/setup.sh --tests

# That, and the second llama.cpp build the engine benchmark compares with (AVX-512 + VNNI + BF16).
setup-bench:
	bash scripts/setup.sh --bench

build: setup
	$(SWIFT) build -c release --product prs

# Numeric and model-heavy code is slow in debug builds: tests run in release.
test: setup-tests
	python3 scripts/check-layers.py
	bash scripts/check-emulated-kernels.sh
	$(SWIFT) build -c release --build-tests
	$(SWIFT) test -c release --skip-build

demo: build
	bash scripts/demo.sh

# This engine and two llama.cpp builds (llama-cpp-python for AVX2, and for AVX-512 + VNNI + BF16;
# scripts/setup.sh --bench) on the same file and thread count, in one run, with the read bandwidth:
# SmolLM2-135M (Q4_1, a format llama.cpp does not repack) and a SmolLM2-1.7B-shaped model with
# random weights in Q4_0 and Q4_K_M (scripts/make-random-model.py, made once into models/), each
# against the issue's targets. BENCH_MODEL=path runs one file only.
BENCH_MODEL ?=
BENCH_ARGS  ?= --prompt-tokens 200 --gen 128 --n 8 --threads 2
LARGE_MODELS := models/random-smollm2-1.7b.q4_0.gguf models/random-smollm2-1.7b.q4_k_m.gguf
models/random-smollm2-1.7b.%.gguf:
	.venv/bin/python scripts/make-random-model.py --shape smollm2-1.7b --types $* --out models
bench-engine: setup-bench build $(if $(BENCH_MODEL),,$(LARGE_MODELS))
ifneq ($(BENCH_MODEL),)
	bash scripts/bench-engine.sh $(BENCH_MODEL) $(BENCH_ARGS)
else
	bash scripts/bench-engine.sh models/SmolLM2-135M-Instruct.Q4_1.gguf $(BENCH_ARGS) --targets 3,1.5,3
	for m in $(LARGE_MODELS); do bash scripts/bench-engine.sh $$m $(BENCH_ARGS) --targets 1.5,1.1,2 --bandwidth-target 0.8 || exit 1; done
endif

# A whole prs sample run (16 prompts, PRS budget 8, 8 in flight, 2 threads) against llama.cpp's
# own llama-server (8 slots, continuous batching; built once by scripts/llama-server.sh) and with
# the embedded engine: wall time, tokens, peak RSS and the speed-up.
bench-run: setup-tests build
	bash scripts/bench-run.sh

# One prs sample run against a llama.cpp server (llama-cpp-python's), K prompts in flight against one at a time.
bench-concurrency: setup-tests build
	bash scripts/bench-concurrency.sh 4 examples/prefs-heldout.jsonl 8

# prs serve against llama.cpp's llama-server (8 slots, continuous batching; scripts/llama-server.sh)
# on one fixed mix of streamed chat requests at 1, 8 and 32 clients: tokens/s, p50/p99 latency,
# time to first token, peak RSS and the ratios. The servers run one after the other.
SERVE_REQUESTS ?= 6,24,64
bench-serve: setup-tests build
	.venv/bin/python scripts/bench-serve.py $(PRS) "$$(bash scripts/llama-server.sh)" $(BENCH_MODEL) --threads 2 --requests $(SERVE_REQUESTS)

# prs train against PyTorch + PEFT (CPU; installed into .venv-bench) on the same model, batch
# shape (4 x 256 tokens), threads and LoRA settings: tokens/s and peak RSS with the ratios.
bench-train: setup-tests build
	bash scripts/bench-train.sh

# Budgets where the paper measured: Rand, PRand and three PRS variants at N = 4, 8, 16 and 32 on the
# 120 held-out loop prompts (about an hour on 2 cores), then docs/evidence.md from the figures.
evidence: build
	bash scripts/evidence.sh runs/evidence
	cp runs/evidence/evidence.md docs/evidence.md

# The paper's iterative offline-RL experiment: PRS, PRand and Rand chains, 3 iterations (about an hour on 2 cores).
loop-experiment: build
	.build/release/prs loop --config examples/loop-experiment.yaml --out runs/loop-experiment
	.build/release/prs report runs/loop-experiment --out runs/loop-experiment/report.html
	.build/release/prs report runs/loop-experiment --out runs/loop-experiment/report.md --format md

# The loop with a trained refiner (issue 36): the PRS chain on synthetic pairs and PRand, searched at
# N = 16 on the held-out prompts, then today's PRS and Rand chains with the same sizes, seed and
# prompts; docs/evidence-loop.md from both. About three and a half hours on 2 cores; resumable.
evidence-loop: build
	.build/release/prs loop --config examples/loop-refiner.yaml --out runs/loop-refiner
	.build/release/prs loop --config examples/loop-refiner-peers.yaml --out runs/loop-refiner-peers
	python3 scripts/evidence.py --loop-only runs/loop-refiner runs/loop-refiner-peers > runs/evidence-loop.md
	cp runs/evidence-loop.md docs/evidence-loop.md

clean:
	rm -rf .build runs/demo
