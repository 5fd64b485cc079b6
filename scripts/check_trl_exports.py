#!/usr/bin/env python3
"""Check that JSONL files written by `prs` load as TRL training data.

Usage:
    python3 scripts/check_trl_exports.py --format sft FILE.jsonl [FILE.jsonl ...]
    python3 scripts/check_trl_exports.py --format dpo FILE.jsonl [FILE.jsonl ...]
    python3 scripts/check_trl_exports.py --self-test

A file that conforms prints `FILE: N records OK (format)`; otherwise every problem is
printed as `FILE:LINE: field: problem` (the first 20, then how many more there were) and
the exit status is 1. Only the standard library is used, so the check runs without TRL,
`datasets` or pyarrow installed.

Where the format facts come from (TRL documentation, read for facts only):

* "Dataset formats and types" (huggingface.co/docs/trl/dataset_formats, source file
  docs/source/dataset_formats.md in the TRL repository):
  - a dataset is *standard* (plain strings) or *conversational* (lists of messages, each
    message an object with a `role` such as "system", "user" or "assistant" and a
    `content` string);
  - the conversational *language modeling* type keeps the whole conversation in one
    column named `messages`;
  - the *preference* type has the columns `prompt`, `chosen` and `rejected`; in the
    conversational form with an explicit prompt, `prompt` is a list of messages ending
    with the user's turn and `chosen` / `rejected` are lists of assistant messages.
    The page recommends the explicit prompt over the implicit one (prompt folded into
    `chosen` and `rejected`), so that is the only preference form accepted here;
  - `prompt` and `completion` are the column names of a different type
    (prompt-completion), which is why an SFT record must not carry them next to
    `messages`.
* "SFT Trainer" (huggingface.co/docs/trl/sft_trainer, section "Expected dataset type
  and format"): SFTTrainer takes language modeling or prompt-completion datasets, in
  standard or conversational form, and applies the chat template to conversational ones.
* "DPO Trainer" (huggingface.co/docs/trl/dpo_trainer, section "Expected dataset type
  and format"): DPOTrainer needs a preference dataset, standard or conversational, and
  its example converts a custom dataset to a one-user-message prompt with one assistant
  message each in chosen and rejected.

`score_chosen` / `score_rejected` are not TRL columns: TRL ignores them. They are the
names the UltraFeedback-binarized preference datasets use for the two ratings, and prs
writes its rewards under them, so when present they are checked for consistency.

Checks made here that go beyond the documented shapes (they catch export bugs, and a
chat template would reject or garble such data anyway): content that is empty or only
whitespace where a model turn or the final user turn is expected, two assistant
messages in a row, a system message anywhere but first, identical chosen and rejected
answers, duplicate keys in one JSON object, and NaN / Infinity numbers (not JSON).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
from typing import Any, Iterable, TextIO

ROLES = ("system", "user", "assistant")
MAX_SHOWN = 20
FORMATS = ("sft", "dpo")

Problem = tuple[int, str, str]  # (line number, field path, what is wrong)


class _DuplicateKey(ValueError):
    pass


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen[key] = value
    return seen


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _is_blank(text: str) -> bool:
    return text.strip() == ""


# ---------------------------------------------------------------------------
# Message lists


def _check_message_list(value: Any, field: str) -> tuple[list[str], list[tuple[int, dict]]]:
    """Shape checks shared by every conversational column.

    Returns the problems found and the (index, message) pairs that are well formed
    enough for the order checks (role is a known role and content is a string).
    """
    problems: list[str] = []
    usable: list[tuple[int, dict]] = []
    if not isinstance(value, list):
        problems.append(f"{field}: expected an array of messages, got {_type_name(value)}")
        return problems, usable
    if not value:
        problems.append(f"{field}: empty array; at least one message is needed")
        return problems, usable
    for i, message in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(message, dict):
            problems.append(f"{where}: expected a message object, got {_type_name(message)}")
            continue
        ok = True
        if "role" not in message:
            problems.append(f"{where}.role: missing")
            ok = False
        elif not isinstance(message["role"], str):
            problems.append(f"{where}.role: expected a string, got {_type_name(message['role'])}")
            ok = False
        elif message["role"] not in ROLES:
            problems.append(f"{where}.role: {message['role']!r} is not one of {', '.join(ROLES)}")
            ok = False
        if "content" not in message:
            problems.append(f"{where}.content: missing")
            ok = False
        elif not isinstance(message["content"], str):
            problems.append(
                f"{where}.content: expected a string, got {_type_name(message['content'])}"
            )
            ok = False
        if ok:
            usable.append((i, message))
    return problems, usable


def _check_turn_order(usable: list[tuple[int, dict]], field: str) -> list[str]:
    problems: list[str] = []
    previous_role = None
    previous_index = None
    for i, message in usable:
        role = message["role"]
        if role == "system" and i != 0:
            problems.append(f"{field}[{i}].role: a system message may only come first")
        if role == "assistant" and previous_role == "assistant" and previous_index == i - 1:
            problems.append(f"{field}[{i}].role: second assistant message in a row")
        previous_role, previous_index = role, i
    return problems


def _split(problem: str) -> tuple[str, str]:
    field, _, text = problem.partition(": ")
    return field, text


# ---------------------------------------------------------------------------
# Record checks (one parsed JSON object each); they return "field: problem" strings


def check_sft_record(record: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    if "messages" not in record:
        problems.append("messages: missing (TRL's conversational language modeling column)")
    else:
        shape, usable = _check_message_list(record["messages"], "messages")
        problems += shape
        if not shape:
            messages = record["messages"]
            last = len(messages) - 1
            if messages[last]["role"] != "assistant":
                problems.append(
                    f"messages[{last}].role: the last message must be the assistant's, "
                    f"got {messages[last]['role']!r}"
                )
            elif _is_blank(messages[last]["content"]):
                problems.append(f"messages[{last}].content: the final assistant answer is empty")
            if not any(m["role"] == "user" for m in messages[:last]):
                problems.append("messages: no user message before the final assistant message")
            problems += _check_turn_order(usable, "messages")
        for key in ("prompt", "completion"):
            if key in record:
                problems.append(
                    f"{key}: not allowed next to messages (a prompt-completion column; "
                    "TRL would see two dataset types in one record)"
                )
    return problems


def _check_score(record: dict[str, Any], key: str) -> float | None:
    value = record[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{key}: expected a number, got {_type_name(value)}")
    if not math.isfinite(value):
        raise ValueError(f"{key}: expected a finite number, got {value}")
    return float(value)


def check_dpo_record(record: dict[str, Any]) -> list[str]:
    problems: list[str] = []

    if "prompt" not in record:
        problems.append(
            "prompt: missing (prs exports use TRL's explicit-prompt preference form)"
        )
    else:
        shape, usable = _check_message_list(record["prompt"], "prompt")
        problems += shape
        if not shape:
            prompt = record["prompt"]
            last = len(prompt) - 1
            if prompt[last]["role"] != "user":
                problems.append(
                    f"prompt[{last}].role: the prompt must end with a user message, "
                    f"got {prompt[last]['role']!r}"
                )
            elif _is_blank(prompt[last]["content"]):
                problems.append(f"prompt[{last}].content: the final user message is empty")
            problems += _check_turn_order(usable, "prompt")

    answers_ok = True
    for key in ("chosen", "rejected"):
        if key not in record:
            problems.append(f"{key}: missing")
            answers_ok = False
            continue
        shape, _ = _check_message_list(record[key], key)
        problems += shape
        if shape:
            answers_ok = False
            continue
        for i, message in enumerate(record[key]):
            if message["role"] != "assistant":
                problems.append(
                    f"{key}[{i}].role: must be 'assistant' (explicit-prompt form), "
                    f"got {message['role']!r}"
                )
                answers_ok = False
            elif _is_blank(message["content"]):
                problems.append(f"{key}[{i}].content: empty answer")
    if answers_ok and record["chosen"] == record["rejected"]:
        problems.append("rejected: identical to chosen; the pair carries no preference")

    scores: dict[str, float] = {}
    for key in ("score_chosen", "score_rejected"):
        if key in record:
            try:
                scores[key] = _check_score(record, key)
            except ValueError as error:
                problems.append(str(error))
    present = [k for k in ("score_chosen", "score_rejected") if k in record]
    if len(present) == 1:
        other = "score_rejected" if present[0] == "score_chosen" else "score_chosen"
        problems.append(f"{other}: missing while {present[0]} is present")
    if len(scores) == 2 and scores["score_chosen"] < scores["score_rejected"]:
        problems.append(
            f"score_chosen: {record['score_chosen']} is below score_rejected "
            f"{record['score_rejected']}; chosen should be the better-scored answer"
        )
    return problems


RECORD_CHECKS = {"sft": check_sft_record, "dpo": check_dpo_record}


# ---------------------------------------------------------------------------
# Files


def check_text(text: str, fmt: str) -> tuple[int, list[Problem]]:
    """Check JSONL text; returns (number of records read, problems)."""
    check_record = RECORD_CHECKS[fmt]
    problems: list[Problem] = []
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the file's final newline, not a blank line
    if not lines:
        return 0, [(1, "(file)", "empty file, no records")]
    records = 0
    for number, raw in enumerate(lines, start=1):
        line = raw[:-1] if raw.endswith("\r") else raw
        try:
            line.encode("utf-8")
        except UnicodeEncodeError:  # undecodable bytes, kept as surrogates by check_file
            problems.append((number, "(line)", "not valid UTF-8"))
            continue
        if line.strip() == "":
            problems.append((number, "(line)", "blank line; every line must hold one record"))
            continue
        try:
            record = json.loads(
                line,
                object_pairs_hook=_object_without_duplicates,
                parse_constant=_refuse_constant,
            )
        except _DuplicateKey as error:
            problems.append((number, "(line)", f"duplicate key {error.args[0]!r}"))
            continue
        except json.JSONDecodeError as error:
            problems.append((number, "(line)", f"invalid JSON: {error.msg} at column {error.colno}"))
            continue
        except ValueError as error:
            problems.append((number, "(line)", f"invalid JSON: {error}"))
            continue
        if not isinstance(record, dict):
            problems.append((number, "(line)", f"expected a JSON object, got {_type_name(record)}"))
            continue
        records += 1
        for problem in check_record(record):
            field, what = _split(problem)
            problems.append((number, field, what))
    return records, problems


def report(name: str, fmt: str, records: int, problems: list[Problem], out: TextIO) -> bool:
    if not problems:
        print(f"{name}: {records} records OK ({fmt})", file=out)
        return True
    for number, field, what in problems[:MAX_SHOWN]:
        print(f"{name}:{number}: {field}: {what}", file=out)
    if len(problems) > MAX_SHOWN:
        print(
            f"{name}: {len(problems) - MAX_SHOWN} more problems not shown "
            f"({len(problems)} in total)",
            file=out,
        )
    return False


def check_file(path: str, fmt: str, out: TextIO) -> bool:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        print(f"{path}: cannot read: {error.strerror or error}", file=out)
        return False
    # Undecodable bytes become lone surrogates, so check_text can name their lines.
    text = data.decode("utf-8", errors="surrogateescape")
    records, problems = check_text(text, fmt)
    return report(path, fmt, records, problems, out)


# ---------------------------------------------------------------------------
# Self-test


def _msg(role: str, content: Any) -> dict[str, Any]:
    return {"role": role, "content": content}


def _lines(records: Iterable[Any]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def self_test() -> int:
    failures: list[str] = []
    checked = 0

    def expect_ok(fmt: str, record: Any, label: str) -> None:
        nonlocal checked
        checked += 1
        records, problems = check_text(_lines([record]), fmt)
        if problems or records != 1:
            failures.append(f"{label}: expected no problems, got {problems}")

    def expect_problem(fmt: str, text: str, field: str, fragment: str, label: str) -> None:
        nonlocal checked
        checked += 1
        _, problems = check_text(text, fmt)
        if not any(f == field and fragment in what for _, f, what in problems):
            failures.append(f"{label}: expected {field}: ...{fragment}..., got {problems}")

    sft_good = {
        "id": "sky-0",
        "reward": 0.8,
        "messages": [
            _msg("system", "Be brief."),
            _msg("user", "Why is the sky blue?"),
            _msg("assistant", "Rayleigh scattering."),
            _msg("user", "Shorter?"),
            _msg("assistant", "Scattering."),
        ],
    }
    dpo_good = {
        "id": "sky",
        "prompt": [_msg("system", "Be brief."), _msg("user", "Why is the sky blue?")],
        "chosen": [_msg("assistant", "Air scatters blue light most.")],
        "rejected": [_msg("assistant", "Because the ocean reflects into it.")],
        "score_chosen": 0.9,
        "score_rejected": 0.2,
        "preference": "one sentence",
    }
    expect_ok("sft", sft_good, "sft good")
    expect_ok("sft", {"messages": [_msg("user", "hi"), _msg("assistant", "hello")]}, "sft minimal")
    expect_ok("dpo", dpo_good, "dpo good")
    expect_ok("dpo", {**dpo_good, "score_chosen": 3, "score_rejected": 3}, "dpo tied scores")
    dpo_bare = {k: dpo_good[k] for k in ("prompt", "chosen", "rejected")}
    expect_ok("dpo", dpo_bare, "dpo without scores")

    def sft(**changes: Any) -> str:
        return _lines([{**sft_good, **changes}])

    def dpo(**changes: Any) -> str:
        return _lines([{**dpo_good, **changes}])

    def dpo_without(key: str) -> str:
        return _lines([{k: v for k, v in dpo_good.items() if k != key}])

    def u(content: str = "q") -> dict[str, Any]:
        return _msg("user", content)

    def a(content: str = "a") -> dict[str, Any]:
        return _msg("assistant", content)

    s = _msg("system", "s")
    bad = [
        # line-level problems
        ("sft", _lines([sft_good]) + "\n" + _lines([sft_good]), "(line)", "blank line", "blank line"),
        ("sft", _lines([sft_good]) + "{not json\n", "(line)", "invalid JSON", "broken JSON"),
        ("sft", "[1, 2]\n", "(line)", "expected a JSON object, got array", "array line"),
        ("dpo", '{"prompt": [], "prompt": []}\n', "(line)", "duplicate key", "duplicate key"),
        ("dpo", '{"score_chosen": NaN}\n', "(line)", "NaN", "NaN"),
        ("sft", "", "(file)", "empty file", "empty file"),
        ("sft", _lines([sft_good]) + "{\"x\": \"\udcff\"}\n", "(line)", "UTF-8", "bad bytes"),
        # sft
        ("sft", _lines([{"text": "plain"}]), "messages", "missing", "sft no messages"),
        ("sft", sft(messages=[]), "messages", "empty array", "sft empty"),
        ("sft", sft(messages="hi"), "messages", "expected an array", "sft string"),
        ("sft", sft(messages=[u(), "a"]), "messages[1]", "expected a message object", "sft str msg"),
        ("sft", sft(messages=[u(), _msg("tool", "x"), a()]), "messages[1].role", "not one of", "sft tool role"),
        ("sft", sft(messages=[u(), {"role": "assistant"}]), "messages[1].content", "missing", "sft no content"),
        ("sft", sft(messages=[u(), _msg("assistant", None)]), "messages[1].content", "expected a string", "sft null"),
        ("sft", sft(messages=[u(), a(), u()]), "messages[2].role", "last message", "sft ends with user"),
        ("sft", sft(messages=[u(), a("  \n")]), "messages[1].content", "empty", "sft blank answer"),
        ("sft", sft(messages=[s, a()]), "messages", "no user message", "sft no user"),
        ("sft", sft(messages=[u(), a(), a()]), "messages[2].role", "in a row", "sft double assistant"),
        ("sft", sft(messages=[u(), a(), s, u(), a()]), "messages[2].role", "only come first", "sft late system"),
        ("sft", sft(prompt="q"), "prompt", "not allowed", "sft with prompt"),
        ("sft", sft(completion="a"), "completion", "not allowed", "sft with completion"),
        # dpo
        ("dpo", dpo_without("prompt"), "prompt", "missing", "dpo implicit prompt"),
        ("dpo", dpo(prompt="Why?"), "prompt", "expected an array", "dpo string prompt"),
        ("dpo", dpo(prompt=[]), "prompt", "empty array", "dpo empty prompt"),
        ("dpo", dpo(prompt=[u(), a()]), "prompt[1].role", "end with a user", "dpo prompt ends assistant"),
        ("dpo", dpo(prompt=[u("")]), "prompt[0].content", "empty", "dpo blank question"),
        ("dpo", dpo(prompt=[u(), _msg("robot", "x")]), "prompt[1].role", "not one of", "dpo bad role"),
        ("dpo", dpo_without("rejected"), "rejected", "missing", "dpo no rejected"),
        ("dpo", dpo(chosen=[]), "chosen", "empty array", "dpo empty chosen"),
        ("dpo", dpo(chosen="yes"), "chosen", "expected an array", "dpo string chosen"),
        ("dpo", dpo(chosen=[u(), a()]), "chosen[0].role", "must be 'assistant'", "dpo implicit chosen"),
        ("dpo", dpo(rejected=[a("")]), "rejected[0].content", "empty answer", "dpo blank rejected"),
        ("dpo", dpo(rejected=[_msg("assistant", 5)]), "rejected[0].content", "expected a string", "dpo number"),
        ("dpo", dpo(rejected=dpo_good["chosen"]), "rejected", "identical to chosen", "dpo same answers"),
        ("dpo", dpo(score_chosen="0.9"), "score_chosen", "expected a number", "dpo string score"),
        ("dpo", dpo(score_rejected=True), "score_rejected", "expected a number", "dpo bool score"),
        ("dpo", dpo(score_chosen=0.1), "score_chosen", "below score_rejected", "dpo inverted scores"),
        ("dpo", dpo_without("score_rejected"), "score_rejected", "missing while", "dpo lone score"),
        ("dpo", '{"prompt": [], "score_chosen": 1e999, "score_rejected": 0}\n', "score_chosen", "finite", "dpo inf"),
    ]
    for fmt, text, field, fragment, label in bad:
        expect_problem(fmt, text, field, fragment, label)

    # Line numbers and the report: a good record, a bad one, then 25 more bad ones.
    checked += 3
    text = _lines([sft_good, {**sft_good, "prompt": "q"}] + [{"messages": []}] * 25)
    records, problems = check_text(text, "sft")
    if records != 27 or problems[0][:2] != (2, "prompt"):
        failures.append(f"line numbers: got {records} records, first problem {problems[:1]}")
    out = io.StringIO()
    if report("x.jsonl", "sft", records, problems, out):
        failures.append("report: a file with problems was reported OK")
    shown = out.getvalue().splitlines()
    if len(shown) != MAX_SHOWN + 1 or not shown[0].startswith("x.jsonl:2: prompt: "):
        failures.append(f"report: unexpected output {shown[:2]} ... ({len(shown)} lines)")
    elif shown[-1] != "x.jsonl: 6 more problems not shown (26 in total)":
        failures.append(f"report: unexpected last line {shown[-1]!r}")
    out = io.StringIO()
    records, problems = check_text(_lines([dpo_good, dpo_good]).replace("\n", "\r\n"), "dpo")
    report("y.jsonl", "dpo", records, problems, out)
    if out.getvalue() != "y.jsonl: 2 records OK (dpo)\n":
        failures.append(f"report OK line: got {out.getvalue()!r}")

    for failure in failures:
        print(f"self-test FAILED: {failure}")
    if failures:
        print(f"self-test: {len(failures)} of {checked} checks failed")
        return 1
    print(f"self-test: {checked} checks passed")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Check that prs JSONL exports match TRL's conversational dataset formats."
    )
    parser.add_argument("--format", choices=FORMATS, help="sft (messages) or dpo (prompt/chosen/rejected)")
    parser.add_argument("--self-test", action="store_true", help="run the built-in checks and exit")
    parser.add_argument("files", nargs="*", metavar="FILE.jsonl")
    args = parser.parse_args(argv)
    if args.self_test:
        return self_test()
    if not args.format or not args.files:
        parser.error("--format and at least one FILE are required (or use --self-test)")
    all_ok = True
    for path in args.files:
        all_ok &= check_file(path, args.format, sys.stdout)
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
