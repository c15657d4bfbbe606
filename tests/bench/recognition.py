#!/usr/bin/env python3
"""Message-level recognition of a worker build on a corpus of conversation tests.

Every customer message of the corpus whose expectation names what it is (`topic`, `intent` or
`not_known = true`; replies giving a request detail, which need their conversation, are left
out) is decided alone by `WORKER decide EVENT.json`, as a message of a
conversation already under way (no greeting, no earlier state), with its `languageCustomer`.
The reply's messages are mapped back to what the playbook answered by their texts: a knowledge
entry's answer (or the question for the detail it requires), an intent's answer, or the
not-known path (any other text: the not-known, not-understood, clarifying or request texts).
The script then prints how many messages were read right, and how many got a knowledge answer
their expectation does not name (confident wrong answers).

`RECOGNITION_VERBOSE=1` also prints each confident wrong answer. It judges any build by its
replies only, so the same method measures the previous matcher and
the classifier (docs/benchmarks.md, "Understanding"). Standard library only (Python 3.11+).

    python3 tests/bench/recognition.py target/release/worker worker/playbooks/default.toml tests/corpus/dev
"""

import json
import os
import subprocess
import sys
import tempfile
import tomllib
from collections import Counter
from pathlib import Path


VERBOSE = os.environ.get("RECOGNITION_VERBOSE") == "1"


def texts(value):
    """Every language version of a playbook text (a string or a table of translations)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [v for v in value.values() if isinstance(v, str)]
    return []


def answers(playbook):
    """(prefix of a reply text, what it means) for every answer of the playbook file."""
    out = []
    for entry in playbook.get("knowledge", []):
        for text in texts(entry.get("answer")):
            out.append((text.split("{")[0][:40], entry["id"]))
        for variant in entry.get("variants", []):
            for text in texts(variant.get("answer")):
                out.append((text.split("{")[0][:40], entry["id"]))
    for intent in playbook.get("intents", []):
        for text in texts(intent.get("answer")):
            out.append((text[:40], "intent:" + intent["id"]))
    for code, pack in playbook.get("packs", {}).items():
        for kid, entry in pack.get("knowledge", {}).items():
            if "answer" in entry:
                out.append((entry["answer"].split("{")[0][:40], kid))
        for iid, intent in pack.get("intents", {}).items():
            if "answer" in intent:
                out.append((intent["answer"][:40], "intent:" + iid))
    # Asking for the order number addresses the entries that require it.
    requiring = [k["id"] for k in playbook.get("knowledge", []) if k.get("requires")]
    asks = []
    for detail in playbook.get("details", []):
        asks += texts(detail.get("ask"))
    for pack in playbook.get("packs", {}).values():
        for detail in pack.get("details", {}).values():
            if "ask" in detail:
                asks.append(detail["ask"])
    for text in asks:
        for kid in requiring[:1]:
            out.append((text[:40], kid))
    return [(prefix, meaning) for prefix, meaning in out if prefix.strip()]


def meaning(messages, table):
    """What a reply answered: knowledge ids and intents found, else not known."""
    found = []
    for message in messages:
        for prefix, what in table:
            if message.startswith(prefix) and what not in found:
                found.append(what)
    return found or ["not_known"]


def expected(expect):
    accepts = []
    for key in ("topic", "topic_or_clarify"):
        value = expect.get(key, [])
        accepts += [value] if isinstance(value, str) else value
    if "intent" in expect:
        accepts.append("intent:" + expect["intent"])
    if expect.get("not_known") is True:
        accepts.append("not_known")
    return accepts


def event(text, language):
    return {
        "requestId": "3c99280a-9871-4656-a472-5da68d30c01f",
        "accountId": "corpus",
        "expires": "2030-01-01T00:00:00Z",
        "trigger": {"type": "MESSAGE", "participantType": "CUSTOMER", "content": text,
                    "contentCustomer": text, "languageCustomer": language},
        "conversation": {"pid": "corpus", "needsHelp": False, "custom": {"yl": {"p": "a"}}},
        "engagements": [],
        "turns": [{"type": "MESSAGE", "participantType": "BOT", "content": "Hello!"}],
    }


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    worker, playbook_path, corpus = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    table = answers(tomllib.loads(playbook_path.read_text()))
    counts = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "event.json"
        for path in sorted(corpus.glob("*.toml")):
            for case in tomllib.loads(path.read_text()).get("case", []):
                for step in case.get("step", []):
                    expect = step.get("expect", {})
                    accepts = expected(expect)
                    # A reply to the bot's question (an order number) needs its conversation.
                    if "customer" not in step or not accepts or "details" in expect:
                        continue
                    file.write_text(json.dumps(event(step["customer"], case.get("language", "en"))))
                    run = subprocess.run([worker, "decide", str(file)], capture_output=True,
                                         text=True, env={"PLAYBOOK": str(playbook_path),
                                                         "SALTEDCX_TOKEN": "corpus"})
                    if run.returncode != 0:
                        sys.exit(run.stderr)
                    actions = json.loads(run.stdout).get("actions", [])
                    said = [a["content"] for a in actions if a.get("type") == "MESSAGE"]
                    got = meaning(said, table)
                    right = all(g in accepts for g in got) and any(g in accepts for g in got)
                    wrong = [g for g in got if g not in accepts and not g.startswith("intent:")
                             and g != "not_known"]
                    counts["messages"] += 1
                    counts["right"] += right
                    counts["confident_wrong"] += bool(wrong)
                    if wrong and VERBOSE:
                        print(f"wrong: {step['customer']!r}: {got}, expected {accepts}")
    n = counts["messages"]
    print(f"{n} messages: {counts['right']} read right ({100 * counts['right'] / max(n, 1):.1f} %), "
          f"{counts['confident_wrong']} confident wrong answers "
          f"({100 * counts['confident_wrong'] / max(n, 1):.1f} %)")


if __name__ == "__main__":
    main()
