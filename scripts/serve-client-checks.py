#!/usr/bin/env python3
"""Checks a running `prs serve` with the official openai client (and raw HTTP where a client
would refuse to send the bytes). Prints one line per check, `PASS name` or `FAIL name: why`, and
exits 1 when any failed.

Usage:
  serve-client-checks.py main BASE_URL KEY ADAPTER PID     # a server with --api-key KEY,
                                                          # --lora ADAPTER=…, --max-body 65536
  serve-client-checks.py small BASE_URL PID                # a server with --max-batch 1 --max-queue 0;
                                                          # ends by sending it SIGTERM mid-request
  serve-client-checks.py runtime BASE_URL KEY STATIC A B   # a server with --allow-runtime-lora, --api-key
                                                          # KEY and --lora STATIC=A; A an adapter file,
                                                          # B the same adapter as a PEFT directory
"""
import concurrent.futures as futures
import http.client
import json
import os
import random
import signal
import sys
import threading
import time
import traceback
import urllib.parse

import openai

RESULTS = []


def check(fn):
    RESULTS.append(fn)
    return fn


class Failed(Exception):
    pass


def expect(cond, why):
    if not cond:
        raise Failed(why)


def raises(kind, fn):
    try:
        fn()
    except kind as e:
        return e
    except Exception as e:  # noqa: BLE001
        raise Failed(f"expected {kind.__name__}, got {type(e).__name__}: {e}")
    raise Failed(f"expected {kind.__name__}, got a reply")


def raw(base, method, path, body=None, headers=None, timeout=120):
    """One HTTP exchange with exact bytes: (status, headers, body bytes)."""
    u = urllib.parse.urlparse(base)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, dict(r.getheaders()), data


def metrics(base):
    _, _, data = raw(base, "GET", "/metrics")
    out = {}
    for line in data.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


ASK = [{"role": "user", "content": "Name three colours of the rainbow."}]


class Main:
    def __init__(self, base, key, adapter, pid):
        self.base, self.key, self.adapter, self.pid = base, key, adapter, int(pid)
        self.root = base[: -len("/v1")] if base.endswith("/v1") else base
        self.client = openai.OpenAI(base_url=base, api_key=key, max_retries=0, timeout=300)
        self.model = self.client.models.list().data[0].id

    def chat(self, **kw):
        args = dict(model=self.model, messages=ASK, max_tokens=24, temperature=1.0, seed=5)
        args.update(kw)
        return self.client.chat.completions.create(**args)

    @check
    def models_list_the_base_and_the_adapter(self):
        data = self.client.models.list().data
        ids = [m.id for m in data]
        expect(self.adapter in ids and len(ids) == 2, f"models: {ids}")
        a = next(m for m in data if m.id == self.adapter)
        expect((a.model_extra or {}).get("parent") == self.model, f"the adapter's parent: {a.model_extra}")

    @check
    def echo_with_logprobs_scores_every_prompt_token(self):
        text = "The capital of France is Paris."
        ids = self.rootpost("/tokenize", {"prompt": text, "add_special_tokens": False})["tokens"]
        # A text prompt, a token-id prompt and a list of both: each choice starts with its prompt.
        r = self.client.completions.create(model=self.model, prompt=text, max_tokens=1, logprobs=1, echo=True, temperature=0)
        lp = r.choices[0].logprobs
        expect(len(lp.tokens) == len(ids) + 1, f"{len(lp.tokens)} entries for {len(ids)} prompt tokens and 1 generated")
        expect(lp.token_logprobs[0] is None and lp.top_logprobs[0] is None, "the first prompt token has null")
        expect(all(isinstance(x, float) and x <= 0 for x in lp.token_logprobs[1:]), f"log-probabilities {lp.token_logprobs}")
        expect("".join(lp.tokens[: len(ids)]) == text, f"the prompt's tokens spell it: {lp.tokens}")
        expect(lp.text_offset[: len(ids)] == [len("".join(lp.tokens[:i])) for i in range(len(ids))], f"offsets {lp.text_offset}")
        for tok, top in zip(lp.token_logprobs[1 : len(ids)], lp.top_logprobs[1 : len(ids)]):
            expect(max(top.values()) >= tok and tok in top.values(), f"top_logprobs {top} holds the token's {tok}")
        expect(r.choices[0].text.startswith(text), "echo: the text starts with the prompt")
        r2 = self.client.completions.create(model=self.model, prompt=ids, max_tokens=1, logprobs=1, echo=True, temperature=0)
        expect(r2.choices[0].logprobs.token_logprobs == lp.token_logprobs, "a token-id prompt scores as its text")
        other = "Bees make honey."
        r3 = self.client.completions.create(model=self.model, prompt=[ids, other], max_tokens=1, logprobs=1, echo=True, temperature=0)
        expect(len(r3.choices) == 2 and r3.choices[0].logprobs.token_logprobs == lp.token_logprobs, "a list of prompts: each its own")
        expect(r3.choices[1].text.startswith(other) and r3.choices[1].logprobs.token_logprobs[0] is None, "the second prompt's choice")
        # max_tokens 0 scores the prompt only; vLLM's prompt_logprobs gives the same numbers by token id.
        status, _, body = raw(self.base, "POST", "/v1/completions", json.dumps(
            {"model": self.model, "prompt": text, "max_tokens": 0, "echo": True, "logprobs": 0, "prompt_logprobs": 2}).encode(),
            {"Authorization": f"Bearer {self.key}"})
        expect(status == 200, f"max_tokens 0 with echo: {status} {body[:300]}")
        choice = json.loads(body)["choices"][0]
        expect(choice["logprobs"]["token_logprobs"] == lp.token_logprobs[: len(ids)], "max_tokens 0: the prompt's entries only")
        pl = choice["prompt_logprobs"]
        expect(pl[0] is None and len(pl) == len(ids), f"prompt_logprobs: {len(pl)} entries for {len(ids)} tokens")
        for i in range(1, len(ids)):
            entry = pl[i][str(ids[i])]
            expect(abs(entry["logprob"] - lp.token_logprobs[i]) < 1e-6 and entry["rank"] >= 1, f"prompt_logprobs[{i}] {pl[i]}")
        chat = self.client.chat.completions.create(model=self.model, messages=ASK, max_tokens=2, extra_body={"prompt_logprobs": 0})
        cpl = (chat.model_extra or {}).get("prompt_logprobs")
        expect(isinstance(cpl, list) and cpl[0] is None and len(cpl) > 5, f"chat prompt_logprobs: {str(cpl)[:200]}")
        e = raises(openai.BadRequestError, lambda: self.client.completions.create(model=self.model, prompt=text, max_tokens=0))
        expect("max_tokens" in str(e), f"max_tokens 0 without echo: {e}")

    @check
    def runtime_adapters_are_off_unless_allowed(self):
        status, _, data = raw(self.base, "POST", "/v1/load_lora_adapter", json.dumps({"lora_name": "x", "lora_path": "/tmp/x"}).encode(),
                              {"Authorization": f"Bearer {self.key}"})
        expect(status == 404 and b"--allow-runtime-lora" in data, f"{status} {data[:200]}")

    @check
    def tokenizer_endpoints_in_vllms_shapes(self):
        status, _, data = raw(self.root, "GET", "/tokenizer_info", headers={"Authorization": f"Bearer {self.key}"})
        expect(status == 200, f"/tokenizer_info: {status} {data[:200]}")
        info = json.loads(data)
        for field in ("eos_token", "bos_token", "pad_token", "model_max_length", "chat_template"):
            expect(field in info, f"/tokenizer_info has no {field}: {sorted(info)}")
        expect(info["eos_token"] == "<|im_end|>" and "im_start" in (info["chat_template"] or ""), f"{info}")
        eos = self.rootpost("/tokenize", {"prompt": info["eos_token"], "add_special_tokens": False})["tokens"]
        expect(len(eos) == 1, f"the eos token's text is one token: {eos}")
        t = self.rootpost("/tokenize", {"prompt": "hello world", "add_special_tokens": False, "return_token_strs": True})
        expect(t["count"] == len(t["tokens"]) and "".join(t["token_strs"]) == "hello world", f"{t}")
        expect(self.rootpost("/detokenize", {"tokens": t["tokens"]})["prompt"] == "hello world", "detokenize gives the text back")
        m = self.rootpost("/tokenize", {"messages": ASK, "add_generation_prompt": True})
        expect(m["count"] > 8, f"messages tokenize through the chat template: {m}")
        old = self.rootpost("/tokenize", {"content": "hello world"})
        expect(old["tokens"] == t["tokens"], "llama-server's content field still works")

    def rootpost(self, path, body):
        status, _, data = raw(self.root, "POST", path, json.dumps(body).encode(), {"Authorization": f"Bearer {self.key}"})
        expect(status == 200, f"{path}: {status} {data[:300]}")
        return json.loads(data)

    @check
    def n_choices_use_seed_plus_i(self):
        r = self.chat(n=3, seed=11)
        expect([c.index for c in r.choices] == [0, 1, 2], f"indexes {[c.index for c in r.choices]}")
        for i, c in enumerate(r.choices):
            alone = self.chat(n=1, seed=11 + i).choices[0].message.content
            expect(c.message.content == alone, f"choice {i} {c.message.content!r} != seed {11 + i} alone {alone!r}")
        expect(len({c.message.content for c in r.choices}) > 1, "three seeds gave one answer")
        u = r.usage
        expect(u.prompt_tokens > 0 and u.completion_tokens > 0 and u.total_tokens == u.prompt_tokens + u.completion_tokens, f"usage {u}")

    @check
    def a_seed_repeats_and_another_seed_differs(self):
        a, b, c = (self.chat(seed=s, max_tokens=32).choices[0].message.content for s in (21, 21, 22))
        expect(a == b, f"seed 21 twice: {a!r} vs {b!r}")
        expect(a != c, "seeds 21 and 22 gave the same answer")

    @check
    def streaming_gives_the_same_text_and_usage(self):
        for n in (1, 2):
            whole = self.chat(n=n, seed=31, max_tokens=40)
            parts = {i: "" for i in range(n)}
            finish, usage, roles = {}, None, 0
            for chunk in self.chat(n=n, seed=31, max_tokens=40, stream=True, stream_options={"include_usage": True}):
                expect(chunk.object == "chat.completion.chunk", f"object {chunk.object}")
                if chunk.usage is not None:
                    usage = chunk.usage
                for c in chunk.choices:
                    if c.delta.role:
                        roles += 1
                    parts[c.index] += c.delta.content or ""
                    if c.finish_reason:
                        finish[c.index] = c.finish_reason
            for c in whole.choices:
                expect(parts[c.index] == c.message.content, f"n={n} choice {c.index}: stream {parts[c.index]!r} vs {c.message.content!r}")
                expect(finish.get(c.index) == c.finish_reason, f"finish {finish} vs {c.finish_reason}")
            expect(roles == n, f"{roles} role chunks for n={n}")
            expect(usage is not None and usage.completion_tokens == whole.usage.completion_tokens, f"usage {usage} vs {whole.usage}")

    @check
    def logprobs_have_openais_shape(self):
        r = self.chat(temperature=0, logprobs=True, top_logprobs=3, max_tokens=12)
        content = r.choices[0].logprobs.content
        expect(len(content) == r.usage.completion_tokens, f"{len(content)} entries, {r.usage.completion_tokens} tokens")
        expect("".join(t.token for t in content) == r.choices[0].message.content, "the tokens spell the answer")
        for t in content:
            expect(len(t.top_logprobs) == 3, f"top_logprobs {len(t.top_logprobs)}")
            lps = [a.logprob for a in t.top_logprobs]
            expect(lps == sorted(lps, reverse=True) and all(lp <= 0 for lp in lps), f"alternatives {lps}")
            expect(t.top_logprobs[0].token == t.token and abs(t.top_logprobs[0].logprob - t.logprob) < 1e-6, "greedy picks the top")
            expect(bytes(t.bytes).decode("utf-8", "replace") == t.token, "bytes spell the token")
        plain = self.chat(temperature=0, max_tokens=12)
        expect(plain.choices[0].logprobs is None, "no logprobs unless asked")

    @check
    def text_completions_take_text_or_token_ids(self):
        prompt = "The three primary colours are"
        a = self.client.completions.create(model=self.model, prompt=prompt, max_tokens=10, temperature=0, logprobs=2)
        c = a.choices[0]
        expect(a.object == "text_completion" and c.text, f"reply {a}")
        expect(len(c.logprobs.tokens) == a.usage.completion_tokens == len(c.logprobs.token_logprobs), "one logprob per token")
        expect(all(len(t) <= 2 for t in c.logprobs.top_logprobs), "at most 2 alternatives")
        expect(c.logprobs.text_offset[0] == 0 and "".join(c.logprobs.tokens) == c.text, "offsets and tokens")
        _, _, body = raw(self.root, "POST", "/tokenize", json.dumps({"content": prompt, "add_special": True}),
                         {"Authorization": f"Bearer {self.key}"})
        ids = json.loads(body)["tokens"]
        b = self.client.completions.create(model=self.model, prompt=ids, max_tokens=10, temperature=0)
        expect(b.choices[0].text == c.text, f"token ids {b.choices[0].text!r} vs text {c.text!r}")
        _, _, body = raw(self.root, "POST", "/detokenize", json.dumps({"tokens": ids}), {"Authorization": f"Bearer {self.key}"})
        expect(json.loads(body)["content"].endswith(prompt), f"detokenize {body!r}")
        e = self.client.completions.create(model=self.model, prompt=prompt, max_tokens=4, temperature=0, echo=True)
        expect(e.choices[0].text.startswith(prompt), "echo")

    @check
    def errors_raise_the_clients_exceptions(self):
        e = raises(openai.BadRequestError, lambda: self.chat(n=0))
        expect(e.status_code == 400 and e.param == "n" and "n must be between" in e.message, f"n=0: {e.body}")
        e = raises(openai.BadRequestError, lambda: self.chat(temperature=7))
        expect(e.param == "temperature", f"temperature: {e.body}")
        e = raises(openai.BadRequestError, lambda: self.chat(max_tokens=100000))
        expect(e.code == "context_length_exceeded" and "100000" in e.message and "prompt has" in e.message, f"context: {e.body}")
        e = raises(openai.BadRequestError, lambda: self.client.chat.completions.create(model=self.model, messages=[{"role": "robot", "content": "x"}]))
        expect("messages[0].role" in e.message, f"role: {e.body}")
        e = raises(openai.NotFoundError, lambda: self.chat(model="no-such-model"))
        expect(e.param == "model" and e.code == "model_not_found", f"model: {e.body}")
        nokey = openai.OpenAI(base_url=self.base, api_key="wrong", max_retries=0)
        e = raises(openai.AuthenticationError, lambda: nokey.chat.completions.create(model=self.model, messages=ASK, max_tokens=2))
        expect(e.status_code == 401, f"key: {e.body}")
        expect(len(nokey.models.list().data) == 2, "models stay open without the key")
        status, _, _ = raw(self.root, "GET", "/health")
        expect(status == 200, f"health {status}")
        status, _, body = raw(self.base, "POST", "/v1/chat/completions", b'{"messages": [', {"Authorization": f"Bearer {self.key}"})
        err = json.loads(body)["error"]
        expect(status == 400 and "not valid JSON" in err["message"] and set(err) == {"message", "type", "param", "code"}, f"malformed: {body!r}")
        big = [{"role": "user", "content": "x" * 100_000}]
        e = raises(openai.APIStatusError, lambda: self.client.chat.completions.create(model=self.model, messages=big, max_tokens=2))
        expect(e.status_code == 413 and "65536 bytes" in e.message, f"413: {e.status_code} {e.body}")

    @check
    def an_adapter_is_a_model_and_batches_with_the_base(self):
        base = self.chat(temperature=0, max_tokens=32).choices[0].message.content
        tuned = self.chat(model=self.adapter, temperature=0, max_tokens=32).choices[0].message.content
        expect(base != tuned, f"the adapter changes nothing: {base!r}")
        with futures.ThreadPoolExecutor(6) as pool:
            jobs = [pool.submit(self.chat, model=m, temperature=0, max_tokens=32) for m in [self.model, self.adapter] * 3]
            outs = [j.result().choices[0].message.content for j in jobs]
        expect(outs == [base, tuned] * 3, f"mixed batch: {outs}")

    @check
    def eight_concurrent_clients_get_what_each_gets_alone(self):
        prompts = [f"Write one sentence about the number {k}." for k in range(8)]

        def ask(k):
            return self.client.chat.completions.create(model=self.model, messages=[{"role": "user", "content": prompts[k]}],
                                                      max_tokens=48, temperature=0.9, top_p=0.95, seed=100 + k, n=2 if k % 2 else 1)

        alone = [[c.message.content for c in ask(k).choices] for k in range(8)]
        before = metrics(self.root)
        with futures.ThreadPoolExecutor(8) as pool:
            together = list(pool.map(lambda k: [c.message.content for c in ask(k).choices], range(8)))
        for k in range(8):
            expect(together[k] == alone[k], f"client {k}: {together[k]} vs alone {alone[k]}")
        after = metrics(self.root)
        batched = sum(after.get(f'prs_decode_steps_total{{batch_size="{b}"}}', 0) - before.get(f'prs_decode_steps_total{{batch_size="{b}"}}', 0)
                      for b in ("4-7", "8-15", "16+"))
        expect(batched > 0, "the eight requests never decoded four or more sequences together")

    @check
    def a_client_that_goes_away_frees_its_blocks(self):
        before = metrics(self.root)
        u = urllib.parse.urlparse(self.base)
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        body = json.dumps({"model": self.model, "messages": ASK, "max_tokens": 2000, "temperature": 1, "seed": 9, "stream": True,
                           "logit_bias": {"0": -100, "2": -100}})
        c.request("POST", "/v1/chat/completions", body=body, headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"})
        r = c.getresponse()
        expect(r.status == 200, f"status {r.status}")
        for _ in range(6):
            r.fp.readline()
        during = metrics(self.root)
        expect(during["prs_kv_blocks_in_use"] > 0 and during["prs_requests_running"] >= 1, f"while streaming: {during.get('prs_kv_blocks_in_use')}")
        r.close()  # the stream's socket (the server said Connection: close, so the response owns it)
        c.close()
        deadline = time.time() + 30
        while time.time() < deadline:
            m = metrics(self.root)
            if m["prs_kv_blocks_in_use"] == 0 and m["prs_requests_cancelled_total"] > before.get("prs_requests_cancelled_total", 0):
                break
            time.sleep(0.05)
        expect(m["prs_kv_blocks_in_use"] == 0, f"blocks still held: {m['prs_kv_blocks_in_use']}")
        expect(m["prs_requests_cancelled_total"] == before.get("prs_requests_cancelled_total", 0) + 1, "one cancellation counted")
        gen = m["prs_generation_tokens_total"] - before["prs_generation_tokens_total"]
        expect(gen < 1000, f"{gen} tokens generated after the client left")

    @check
    def fuzzed_bodies_get_4xx_never_5xx_and_memory_stays_bounded(self):
        rng = random.Random(1234)
        auth = {"Authorization": f"Bearer {self.key}"}
        valid = json.dumps({"model": self.model, "messages": ASK, "max_tokens": 4, "n": 2, "seed": 3, "temperature": 0.7,
                            "stop": ["\n"], "logprobs": True, "top_logprobs": 2})
        specials = [
            b"", b"null", b"[]", b"42", b'"text"', b"{", b"}", b"{}", b'{"messages": null}', b'{"messages": {}}',
            b"[" * 100000, b'{"a":' * 5000 + b"1" + b"}" * 5000,
            b'{"messages":[{"role":"user","content":"hi"}],"max_tokens":1e400}',
            b'{"messages":[{"role":"user","content":"hi"}],"max_tokens":99999999999999999999999}',
            b'{"messages":[{"role":"user","content":"hi"}],"n":-5}', b'{"messages":[{"role":"user","content":"hi"}],"n":1000000000}',
            b'{"messages":[{"role":"user","content":"hi"}],"max_tokens":-1}', b'{"messages":[{"role":"user","content":"hi"}],"max_tokens":0}',
            b'{"messages":[{"role":"user","content":"\xff\xfe"}]}', b'\xc3\x28{"messages":[]}',
            b'{"messages":[{"role":"user","content":[{"type":"image_url"}]}]}', b'{"messages":[{"role":"user","content":"hi"}],"seed":1.5}',
            b'{"messages":[{"role":"user","content":"hi"}],"logit_bias":{"abc":1}}', b'{"messages":[{"role":"user","content":"hi"}],"stop":[1,2]}',
            b'{"messages":[{"role":"user","content":"hi"}],"top_logprobs":50,"logprobs":true}', b'{"prompt":[999999999]}',
            b"x" * 70000,
        ]
        bodies = list(specials)
        for _ in range(150):
            b = bytearray(valid.encode())
            for _ in range(rng.randint(1, 6)):
                op, i = rng.randint(0, 2), rng.randrange(len(b))
                if op == 0:
                    del b[i]
                elif op == 1:
                    b.insert(i, rng.choice(b'{}[]",:0123456789-e.\\ntruefalsnul\xff'))
                else:
                    b[i] = rng.randrange(256)
            bodies.append(bytes(b))
        for _ in range(40):
            bodies.append(bytes(rng.randrange(256) for _ in range(rng.randint(1, 400))))
        start = rss_mb(self.pid)
        seen = {}
        for i, body in enumerate(bodies):
            path = "/v1/completions" if i % 5 == 0 else "/v1/chat/completions"
            status, _, data = raw(self.base, "POST", path, body, auth)
            seen[status] = seen.get(status, 0) + 1
            expect(status < 500, f"body {i} {body[:80]!r}: HTTP {status} {data[:200]!r}")
            if status >= 400:
                err = json.loads(data)["error"]
                expect(isinstance(err.get("message"), str) and "type" in err, f"body {i}: envelope {data[:200]!r}")
        grown = rss_mb(self.pid) - start
        expect(grown < 64, f"RSS grew {grown:.0f} MB over {len(bodies)} bodies")
        status, _, _ = raw(self.root, "GET", "/health")
        expect(status == 200, "healthy after the fuzz")
        print(f"  fuzz: {len(bodies)} bodies, statuses {dict(sorted(seen.items()))}, RSS {start:.0f} MB → {start + grown:.0f} MB")


class Runtime:
    """vLLM's runtime adapter endpoints: load and unload under load, as the openai client sees it."""

    def __init__(self, base, key, static, a, b):
        self.base, self.key, self.static, self.a, self.b = base, key, static, a, b
        self.client = openai.OpenAI(base_url=base, api_key=key, max_retries=0, timeout=300)
        self.model = self.client.models.list().data[0].id

    def call(self, path, body, key=None):
        status, _, data = raw(self.base, "POST", path, json.dumps(body).encode(), {"Authorization": f"Bearer {key or self.key}"})
        return status, data

    def ask(self, model, k):
        return self.client.chat.completions.create(model=model, messages=[{"role": "user", "content": f"Tell me about the number {k}."}],
                                                  max_tokens=40, temperature=0.8, seed=300 + k).choices[0].message.content

    def ids(self):
        return [m.id for m in self.client.models.list().data]

    @check
    def bad_requests_get_openai_shaped_errors(self):
        for body, status, code in [
            ({"lora_name": "x"}, 400, None),
            ({"lora_path": self.a}, 400, None),
            ({"lora_name": "x", "lora_path": "/nonexistent/adapter.gguf"}, 404, "not_found"),
            ({"lora_name": "x", "lora_path": "/etc/hostname"}, 400, "invalid_adapter"),
            ({"lora_name": self.static, "lora_path": self.a}, 400, "adapter_exists"),
            ({"lora_name": self.model, "lora_path": self.a}, 400, "adapter_exists"),
        ]:
            got, data = self.call("/v1/load_lora_adapter", body)
            err = json.loads(data).get("error", {}) if data.startswith(b"{") else {}
            expect(got == status and err.get("message") and (code is None or err.get("code") == code), f"load {body}: {got} {data[:300]}")
        got, data = self.call("/v1/unload_lora_adapter", {"lora_name": "never-loaded"})
        expect(got == 404 and json.loads(data)["error"]["code"] == "adapter_not_found", f"unload unknown: {got} {data[:200]}")
        got, _ = self.call("/v1/load_lora_adapter", {"lora_name": "x", "lora_path": self.a}, key="wrong")
        expect(got == 401, f"the endpoints are behind the API key: {got}")
        expect("x" not in self.ids(), "nothing was loaded by the bad requests")

    @check
    def a_runtime_adapter_answers_as_the_one_given_at_start(self):
        for name, path in (("late-gguf", self.a), ("late-peft", self.b)):
            got, data = self.call("/v1/load_lora_adapter", {"lora_name": name, "lora_path": path})
            expect(got == 200, f"load {name}: {got} {data[:300]}")
            expect(name in self.ids(), f"{name} is listed in /v1/models: {self.ids()}")
            for k in range(3):
                mine, static = self.ask(name, k), self.ask(self.static, k)
                expect(mine == static, f"{name} (seed {300 + k}): {mine!r} != the adapter given at start {static!r}")
            got, data = self.call("/v1/unload_lora_adapter", {"lora_name": name})
            expect(got == 200, f"unload {name}: {got} {data[:200]}")
            e = raises(openai.NotFoundError, lambda: self.ask(name, 0))
            expect(e.code == "model_not_found", f"after unloading: {e}")
            expect(name not in self.ids(), f"{name} is gone from /v1/models")

    @check
    def load_and_unload_under_load_fail_no_request(self):
        # Each answer alone first: the base, the adapter that will be unloaded, the one that will be loaded.
        got, data = self.call("/v1/load_lora_adapter", {"lora_name": "early", "lora_path": self.a})
        expect(got == 200, f"load early: {got} {data[:200]}")
        got, data = self.call("/v1/load_lora_adapter", {"lora_name": "late", "lora_path": self.b})
        expect(got == 200, f"load late: {got} {data[:200]}")
        alone = {(m, k): self.ask(m, k) for m in (self.model, "early", "late") for k in range(8)}
        expect(alone[("early", 0)] != alone[(self.model, 0)], "the adapter changes the answer")
        self.call("/v1/unload_lora_adapter", {"lora_name": "late"})
        errors = []

        def run(model, k):
            try:
                return (model, k, self.ask(model, k))
            except Exception as e:  # noqa: BLE001
                errors.append(f"{model} {k}: {e}")
                return (model, k, None)

        with futures.ThreadPoolExecutor(8) as pool:
            # Eight clients: four for the base and four for "early", all in flight when it is unloaded.
            first = [pool.submit(run, m, k) for k in range(4) for m in (self.model, "early")]
            time.sleep(0.3)
            loader = pool.submit(self.call, "/v1/load_lora_adapter", {"lora_name": "late", "lora_path": self.b})
            t = time.time()
            got, data = self.call("/v1/unload_lora_adapter", {"lora_name": "early"})
            expect(got == 200, f"unload early under load: {got} {data[:200]}")
            unloaded_after = time.time() - t
            expect(loader.result()[0] == 200, f"load late under load: {loader.result()}")
            second = [pool.submit(run, m, k) for k in range(8) for m in (self.model, "late")]
            results = [f.result() for f in first + second]
        expect(not errors, f"requests failed: {errors[:3]}")
        for model, k, text in results:
            expect(text == alone[(model, k)], f"{model} {k}: {text!r} != alone {alone[(model, k)]!r}")
        early_done = [f for f in first if f.result()[0] == "early"]
        expect(len(early_done) == 4 and all(f.result()[2] for f in early_done), "every request for the unloaded adapter finished")
        e = raises(openai.NotFoundError, lambda: self.ask("early", 0))
        expect("early" not in self.ids() and "late" in self.ids(), f"models after: {self.ids()}")
        print(f"  under load: 24 requests by 8 clients, unload waited {unloaded_after:.2f} s for its requests in flight")
        self.call("/v1/unload_lora_adapter", {"lora_name": "late"})


class Small:
    """A server with one slot and no queue."""

    def __init__(self, base, pid):
        self.base, self.pid = base, int(pid)
        self.root = base[: -len("/v1")]
        self.client = openai.OpenAI(base_url=base, api_key="none", max_retries=0, timeout=300)
        self.model = self.client.models.list().data[0].id

    @check
    def a_full_queue_answers_429_with_retry_after(self):
        started = threading.Event()

        def long():
            s = self.client.chat.completions.create(model=self.model, messages=ASK, max_tokens=300, temperature=1, seed=1, stream=True,
                                                    logit_bias={"0": -100, "2": -100})
            for _ in s:
                started.set()

        t = threading.Thread(target=long)
        t.start()
        expect(started.wait(60), "the first request did not start")
        e = raises(openai.RateLimitError, lambda: self.client.chat.completions.create(model=self.model, messages=ASK, max_tokens=2))
        expect(e.response.headers.get("retry-after") == "1" and e.code == "queue_full", f"429: {e.response.headers} {e.body}")
        t.join()
        ok = self.client.chat.completions.create(model=self.model, messages=ASK, max_tokens=2)
        expect(ok.choices, "a request after the queue drained")

    @check
    def sigterm_finishes_the_request_in_flight_then_exits(self):
        got = []

        def long():
            s = self.client.chat.completions.create(model=self.model, messages=ASK, max_tokens=200, temperature=1, seed=2, stream=True,
                                                    stream_options={"include_usage": True}, logit_bias={"0": -100, "2": -100})
            for chunk in s:
                got.append(chunk)

        t = threading.Thread(target=long)
        t.start()
        deadline = time.time() + 60
        while len(got) < 3 and time.time() < deadline:
            time.sleep(0.01)
        os.kill(self.pid, signal.SIGTERM)
        refused = False
        while t.is_alive() and not refused:
            try:
                raw(self.root, "GET", "/health", timeout=5)
                time.sleep(0.05)
            except OSError:
                refused = True
        t.join(120)
        expect(not t.is_alive(), "the request in flight never ended")
        usage = [c.usage for c in got if c.usage]
        expect(usage and usage[-1].completion_tokens == 200, f"the request in flight was cut: {usage}")
        expect(refused, "a new connection was accepted while draining")


def main():
    mode = sys.argv[1]
    target = Main(*sys.argv[2:6]) if mode == "main" else Runtime(*sys.argv[2:7]) if mode == "runtime" else Small(*sys.argv[2:4])
    failed = 0
    for fn in RESULTS:
        if fn.__qualname__.split(".")[0] != type(target).__name__:
            continue
        t = time.time()
        try:
            fn(target)
            print(f"PASS {fn.__name__} ({time.time() - t:.1f} s)", flush=True)
        except Failed as e:
            failed += 1
            print(f"FAIL {fn.__name__}: {e}", flush=True)
        except Exception:  # noqa: BLE001
            failed += 1
            print(f"FAIL {fn.__name__}: {traceback.format_exc()}", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
