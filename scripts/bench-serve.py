#!/usr/bin/env python3
"""Load generator for `make bench-serve`: the same fixed mix of chat requests against `prs serve`
and llama.cpp's `llama-server`, one server at a time, at 1, 8 and 32 concurrent clients.

The mix (request k of a level): n=4 for odd k, n=1 for even k; 128 generated tokens per choice,
sampled with llama-server's default truncation sent explicitly to both (temperature 0.8, top_k 40,
top_p 0.95, min_p 0.05)
(end-of-turn tokens banned with logit_bias, so every choice runs to its limit); half the prompts
share a long system prompt and one of four questions (the prefix cache can serve them), half are
distinct. Every request streams. A server that does not honour n (llama-server) gets n separate
requests with seeds seed+i, as prs's own client does; the logical request ends with its last.

Per server and level: generated tokens/s (wall), p50 and p99 latency of a logical request, p50
time to first token, and the server's peak RSS (VmHWM). Then the ratios prs / llama-server.

Usage: bench-serve.py PRS_BIN LLAMA_SERVER_BIN MODEL [--threads 2] [--requests 6,24,64] [--json OUT]
"""
import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

SYSTEM = ("You are a careful assistant. Answer the user's question directly, in plain words, "
          "without preamble. Prefer short sentences. When a list helps, use one. ") * 3
SHARED = ["Why is the sky blue?", "How do plants make food?", "What causes tides?", "Why do we have seasons?"]
TOPICS = ["volcanoes", "bread", "bicycles", "glaciers", "bees", "compasses", "rainbows", "coffee", "chess", "lightning",
          "magnets", "tea", "clocks", "owls", "bridges", "soap"]
GEN = 128
BAN = {"0": -100, "2": -100}  # SmolLM2's <|endoftext|> and <|im_end|>


def log(*a):
    print("[bench-serve]", *a, file=sys.stderr, flush=True)


def request_body(k, level, n):
    if k % 4 < 2:
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": SHARED[k % len(SHARED)]}]
    else:
        messages = [{"role": "user", "content": f"Tell me one surprising fact about {TOPICS[k % len(TOPICS)]} (request {level}-{k})."}]
    return {"messages": messages, "max_tokens": GEN, "temperature": 0.8, "top_k": 40, "top_p": 0.95, "min_p": 0.05, "seed": 1000 + k, "n": n, "stream": True, "logit_bias": BAN}


async def stream_one(host, port, body):
    """One streaming chat completion: (time to first content, tokens by choice count of content chunks, end time)."""
    reader, writer = await asyncio.open_connection(host, port)
    payload = json.dumps(body).encode()
    writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 + f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode() + payload)
    await writer.drain()
    status = (await reader.readline()).decode()
    if " 200 " not in status:
        rest = await reader.read()
        raise RuntimeError(f"{status.strip()} {rest[-300:]!r}")
    chunked = False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        if line.lower().startswith(b"transfer-encoding:") and b"chunked" in line.lower():
            chunked = True
    first = None
    pieces = 0
    buf = b""

    async def chunks():
        if not chunked:
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                yield data
        while True:
            size = int((await reader.readline()).strip().split(b";")[0], 16)
            if size == 0:
                return
            data = await reader.readexactly(size)
            await reader.readline()
            yield data

    done = False
    async for data in chunks():
        buf += data
        while b"\n\n" in buf:
            event, buf = buf.split(b"\n\n", 1)
            for line in event.split(b"\n"):
                if not line.startswith(b"data: "):
                    continue
                d = line[6:]
                if d == b"[DONE]":
                    done = True
                    continue
                o = json.loads(d)
                for c in o.get("choices", []):
                    content = (c.get("delta") or {}).get("content")
                    if content:
                        pieces += 1
                        if first is None:
                            first = time.perf_counter()
        if done:
            break
    writer.close()
    return first, pieces


async def logical(host, port, k, level, n, native_n):
    body = request_body(k, level, n)
    start = time.perf_counter()
    if native_n or n == 1:
        first, _ = await stream_one(host, port, body)
    else:
        parts = []
        for i in range(n):
            b = dict(body, n=1, seed=body["seed"] + i)
            parts.append(stream_one(host, port, b))
        results = await asyncio.gather(*parts)
        firsts = [f for f, _ in results if f is not None]
        first = min(firsts) if firsts else None
    end = time.perf_counter()
    return {"latency": end - start, "ttft": (first - start) if first else None, "tokens": n * GEN}


async def level_run(host, port, clients, requests, native_n, level):
    queue = list(range(requests))
    out = []

    async def worker():
        while queue:
            k = queue.pop(0)
            out.append(await logical(host, port, k, level, 4 if k % 2 else 1, native_n))

    t = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return time.perf_counter() - t, out


def vmhwm_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def wait_health(port, proc, seconds=300):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the server did not answer /health")


def percentile(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    i = min(len(xs) - 1, max(0, int(round(p / 100 * (len(xs) - 1)))))
    return xs[i]


def bench(name, cmd, port, native_n, levels, logdir):
    logf = open(os.path.join(logdir, f"{name}.log"), "w")
    proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT)
    try:
        wait_health(port, proc)
        # Warm-up: one request, not counted.
        asyncio.run(level_run("127.0.0.1", port, 1, 1, native_n, "warm"))
        rows = {}
        for clients, requests in levels:
            log(f"{name}: {clients} clients, {requests} requests")
            wall, out = asyncio.run(level_run("127.0.0.1", port, clients, requests, native_n, f"c{clients}"))
            lat = [o["latency"] for o in out]
            ttft = [o["ttft"] for o in out if o["ttft"] is not None]
            tokens = sum(o["tokens"] for o in out)
            rows[clients] = {"tok_s": tokens / wall, "p50": percentile(lat, 50), "p99": percentile(lat, 99),
                             "ttft_p50": percentile(ttft, 50), "wall_s": wall, "requests": requests, "tokens": tokens}
        rows["rss_mb"] = vmhwm_mb(proc.pid)
        return rows
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        logf.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("prs")
    ap.add_argument("llama_server")
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--requests", default="6,24,64", help="requests at 1, 8 and 32 clients")
    ap.add_argument("--json")
    a = ap.parse_args()
    counts = [int(x) for x in a.requests.split(",")]
    levels = list(zip([1, 8, 32], counts))
    logdir = tempfile.mkdtemp(prefix="prs-bench-serve-")
    p1, p2 = random.randint(20000, 29999), random.randint(30000, 39999)
    prs_cmd = [a.prs, "serve", "--model", a.model, "--port", str(p1), "--threads", str(a.threads), "--max-batch", "32",
               "--context", "4096"]
    llama_cmd = [a.llama_server, "-m", a.model, "--host", "127.0.0.1", "--port", str(p2), "-t", str(a.threads), "-tb", str(a.threads),
                 "-np", "8", "-cb", "-c", str(8 * 512)]
    log(f"logs in {logdir}")
    results = {"llama-server": bench("llama-server", llama_cmd, p2, False, levels, logdir),
               "prs serve": bench("prs-serve", prs_cmd, p1, True, levels, logdir)}
    ls, ps = results["llama-server"], results["prs serve"]
    print(f"bench-serve: {a.model}, {a.threads} threads; mix: n=1 and n=4 alternating, {GEN} tokens per choice, half the prompts shared")
    print(f"{'clients':>7} {'server':<13} {'tok/s':>8} {'p50 s':>7} {'p99 s':>7} {'TTFT p50 s':>10}")
    for clients, _ in levels:
        for name, r in (("llama-server", ls[clients]), ("prs serve", ps[clients])):
            print(f"{clients:>7} {name:<13} {r['tok_s']:8.1f} {r['p50']:7.2f} {r['p99']:7.2f} {r['ttft_p50']:10.3f}")
    print(f"peak RSS: llama-server {ls['rss_mb']:.0f} MB, prs serve {ps['rss_mb']:.0f} MB")
    print("ratios prs serve / llama-server:")
    for clients, _ in levels:
        l, p = ls[clients], ps[clients]
        print(f"  {clients:>2} clients: throughput {p['tok_s'] / l['tok_s']:.2f}x, p99 latency {p['p99'] / l['p99']:.2f}x, "
              f"TTFT p50 {p['ttft_p50'] / l['ttft_p50']:.2f}x")
    if a.json:
        json.dump(results, open(a.json, "w"), indent=1, default=str)


if __name__ == "__main__":
    main()
