#!/usr/bin/env python3
"""The evaluation corpus: validation, counts, and the one-time split (Python 3.11 standard library).

    python3 tests/corpus/split.py check            # validate every corpus file, print the counts
    python3 tests/corpus/split.py counts           # the counts as Markdown tables (README)
    python3 tests/corpus/split.py split            # once: move drafts/ into dev/ and heldout/

The cases were written first in tests/corpus/drafts/*.toml. `split` validates them, then assigns
each case to the development part (about 60 %) or the held-out part (about 40 %), stratified by
category x language, with a fixed seed, and moves the case texts (byte for byte, comments
included) into dev/<language>.toml and heldout/<language>.toml. It refuses to run when dev/ or
heldout/ already hold cases: the corpus is split once. `check` validates whatever is there
(drafts/, dev/, heldout/) and exits 1 on the first file with problems, listing all of them.

Validation: every file parses as TOML and holds only [[case]] tables; every case has a `name`
(unique in the corpus), a `category` from SEMANTICS.md section 1 and a `language` among the
five; every step has exactly one known kind; expectations use only known keys, with values of
the right type (knowledge ids, intent ids, detail ids, languages, ratings on the 1-5 scale);
exact reply texts (`message`) are not asserted, and `message_contains` holds only digits (an
order number echoed back, the same in every language).
"""

from __future__ import annotations

import argparse
import math
import random
import re
import sys
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent
DRAFTS = ROOT / "drafts"
PARTS = {"dev": ROOT / "dev", "heldout": ROOT / "heldout"}

# The split: fixed seed, share of each category x language stratum held out.
SEED = 20
HELDOUT_SHARE = 0.4

LANGUAGES = ["en", "es", "de", "fr", "cs"]
CATEGORIES = [
    "phrasings", "typos", "several-requests", "tone", "stuck", "cannot-know", "negation",
    "human-request", "entities", "agent-engaged", "agent-leaves", "closing-rating",
    "small-talk", "mixed-language",
]
# The default playbook (worker/playbooks/default.toml), as SEMANTICS.md section 2 names it.
KNOWLEDGE = {"damaged", "delivery", "returns", "opening-hours", "password"}
INTENTS = {
    "how-are-you", "nice-day", "goodbye", "thanks", "who-are-you", "films-and-books",
    "other-topics",
}
DETAILS = {"order"}
RATING_SCALE = range(1, 6)

CASE_KEYS = {"name", "category", "language", "customer", "platform", "url", "custom", "step"}
# Step kinds of the conversation tests (simulator/src/scenario.rs): the value's shape.
TEXT_STEPS = {
    "customer", "customer_silent", "agent_joins", "agent", "action", "navigation", "menu_step",
    "answer", "conversation_update",
}
TABLE_STEPS = {
    "agent_leaves": {"outcome", "reason"},
    "file": {"name", "mime"},
    "review": {"question", "answer", "reason"},
}
STEP_KINDS = TEXT_STEPS | set(TABLE_STEPS) | {"completed"}
CUSTOMER_STEPS = {"customer", "customer_silent"}

BOOL_EXPECTS = {
    "no_message", "nothing", "escalates", "needs_help", "no_note", "not_known", "clarifies",
    "resolved",
}
TEXTS_EXPECTS = {"message", "message_contains", "message_matches", "note_contains"}
EXPECT_KEYS = BOOL_EXPECTS | TEXTS_EXPECTS | {
    "custom", "topic", "topic_or_clarify", "intent", "asks", "details", "language", "rating",
}

CASE_LINE = re.compile(r"^\[\[case\]\]\s*(#.*)?$")


@dataclass
class Case:
    """One conversation: its source text (moved as is), where it comes from, and what it holds."""

    text: str
    origin: str
    name: str
    category: str
    language: str
    customer_messages: int
    expected_steps: int


class Problems(Exception):
    """Everything wrong with one file."""

    def __init__(self, origin: str, problems: list[str]):
        super().__init__(f"{origin}: {len(problems)} problem(s)")
        self.origin = origin
        self.problems = problems


# ---------------------------------------------------------------------------------------------
# Validation


def check_texts(value, where: str, problems: list[str]) -> list[str]:
    """A text or a non-empty list of texts."""
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
        problems.append(f"{where}: expected a text or a list of texts")
        return []
    return texts


def check_expect(expect, where: str, problems: list[str]) -> None:
    if not isinstance(expect, dict):
        problems.append(f"{where}: `expect` must be a table")
        return
    for key in sorted(set(expect) - EXPECT_KEYS):
        problems.append(f"{where}: unknown expectation `{key}`")
    for key in sorted(BOOL_EXPECTS & set(expect)):
        if not isinstance(expect[key], bool):
            problems.append(f"{where}: `{key}` must be true or false")
    for key in sorted(TEXTS_EXPECTS & set(expect)):
        check_texts(expect[key], f"{where}: `{key}`", problems)
    if "message" in expect:
        problems.append(f"{where}: exact reply texts (`message`) are not asserted in the corpus")
    if "message_contains" in expect:
        for text in check_texts(expect["message_contains"], f"{where}: `message_contains`", []):
            if not text.isdigit():
                problems.append(
                    f"{where}: `message_contains` only for language-neutral facts (digits), "
                    f"found {text!r}"
                )
    if "custom" in expect and not isinstance(expect["custom"], dict):
        problems.append(f"{where}: `custom` must be a table")
    if "topic" in expect:
        topics = expect["topic"]
        topics = [topics] if isinstance(topics, str) else topics
        if not isinstance(topics, list) or not topics or not set(topics) <= KNOWLEDGE:
            problems.append(f"{where}: `topic` must be knowledge ids among {sorted(KNOWLEDGE)}")
    if "topic_or_clarify" in expect:
        topics = expect["topic_or_clarify"]
        if not isinstance(topics, list) or len(topics) < 2 or not set(topics) <= KNOWLEDGE:
            problems.append(f"{where}: `topic_or_clarify` must list at least two knowledge ids")
    if "intent" in expect and expect["intent"] not in INTENTS:
        problems.append(f"{where}: `intent` must be one of {sorted(INTENTS)}")
    if "asks" in expect and expect["asks"] not in DETAILS:
        problems.append(f"{where}: `asks` must be one of {sorted(DETAILS)}")
    if "details" in expect:
        details = expect["details"]
        if not isinstance(details, dict) or not details:
            problems.append(f"{where}: `details` must be a non-empty table")
        else:
            for key, value in details.items():
                if key not in DETAILS:
                    problems.append(f"{where}: unknown detail `{key}`")
                elif not isinstance(value, str) or not value.isdigit():
                    problems.append(f"{where}: detail `{key}` must be its normalised digits")
    if "language" in expect and expect["language"] not in LANGUAGES:
        problems.append(f"{where}: `language` must be one of {LANGUAGES}")
    if "rating" in expect:
        rating = expect["rating"]
        if isinstance(rating, bool) or not isinstance(rating, int) or rating not in RATING_SCALE:
            problems.append(f"{where}: `rating` must be a whole number from 1 to 5")
    # Contradictions: the not-known path gives no knowledge answer and no intent.
    if expect.get("not_known") is True and ({"topic", "topic_or_clarify", "intent"} & set(expect)):
        problems.append(f"{where}: `not_known` cannot be combined with a topic or an intent")


def check_step(step, where: str, problems: list[str]) -> tuple[str | None, bool]:
    """The step's kind (None when invalid) and whether it has expectations."""
    if not isinstance(step, dict):
        problems.append(f"{where}: a step must be a table")
        return None, False
    kinds = [key for key in step if key != "expect"]
    if len(kinds) != 1:
        problems.append(f"{where}: a step has exactly one kind besides `expect`, found {kinds}")
        return None, False
    kind = kinds[0]
    value = step[kind]
    if kind not in STEP_KINDS:
        problems.append(f"{where}: unknown step kind `{kind}`")
        return None, False
    if kind in TEXT_STEPS and (not isinstance(value, str) or not value.strip()):
        problems.append(f"{where}: `{kind}` must be a non-empty text")
    if kind in TABLE_STEPS:
        if not isinstance(value, dict) or set(value) != TABLE_STEPS[kind]:
            problems.append(f"{where}: `{kind}` must be a table with {sorted(TABLE_STEPS[kind])}")
        elif not all(isinstance(v, str) for v in value.values()):
            problems.append(f"{where}: the fields of `{kind}` must be texts")
    if kind == "completed" and value is not True:
        problems.append(f"{where}: `completed` must be true")
    has_expect = "expect" in step
    if has_expect:
        if kind == "agent_joins":
            problems.append(f"{where}: `agent_joins` sends no event, so it has no answer to expect")
        check_expect(step["expect"], where, problems)
    return kind, has_expect


def check_case(raw, where: str, problems: list[str]) -> tuple[int, int]:
    """Validates one case; returns (customer messages, steps with expectations)."""
    if not isinstance(raw, dict):
        problems.append(f"{where}: a case must be a table")
        return 0, 0
    for key in sorted(set(raw) - CASE_KEYS):
        problems.append(f"{where}: unknown case key `{key}`")
    if not isinstance(raw.get("name"), str) or not raw["name"].strip():
        problems.append(f"{where}: `name` is required")
    if raw.get("category") not in CATEGORIES:
        problems.append(f"{where}: `category` must be one of {CATEGORIES}")
    if raw.get("language") not in LANGUAGES:
        problems.append(f"{where}: `language` must be one of {LANGUAGES}")
    for key in ("customer", "platform", "url"):
        if key in raw and not isinstance(raw[key], str):
            problems.append(f"{where}: `{key}` must be a text")
    if "custom" in raw and not isinstance(raw["custom"], dict):
        problems.append(f"{where}: `custom` must be a table")
    steps = raw.get("step")
    if not isinstance(steps, list) or not steps:
        problems.append(f"{where}: a case needs at least one [[case.step]]")
        return 0, 0
    messages = expected = 0
    events = 0
    for number, step in enumerate(steps, start=1):
        kind, has_expect = check_step(step, f"{where}, step {number}", problems)
        messages += kind in CUSTOMER_STEPS
        expected += has_expect
        events += kind is not None and kind != "agent_joins"
    if events == 0:
        problems.append(f"{where}: it sends no event")
    if expected == 0:
        problems.append(f"{where}: no step has expectations")
    return messages, expected


def split_blocks(text: str) -> list[str]:
    """The file's [[case]] blocks, as written (what comes before the first one is the header)."""
    blocks: list[list[str]] = []
    for line in text.splitlines(keepends=True):
        if CASE_LINE.match(line):
            blocks.append([])
        if blocks:
            blocks[-1].append(line)
    return ["".join(block).rstrip() + "\n" for block in blocks]


def read_cases(path: Path) -> list[Case]:
    """Parses and validates one file; raises Problems listing everything wrong with it."""
    origin = str(path.relative_to(ROOT.parent.parent)) if path.is_relative_to(ROOT.parent.parent) else str(path)
    text = path.read_text(encoding="utf-8")
    problems: list[str] = []
    try:
        whole = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise Problems(origin, [f"not valid TOML: {err}"]) from None
    for key in sorted(set(whole) - {"case"}):
        problems.append(f"unknown top-level key `{key}` (only [[case]] tables)")
    raw_cases = whole.get("case")
    if not isinstance(raw_cases, list) or not raw_cases:
        raise Problems(origin, problems + ["no [[case]]"])
    blocks = split_blocks(text)
    if len(blocks) != len(raw_cases):
        problems.append(
            f"{len(raw_cases)} cases but {len(blocks)} `[[case]]` lines: write each case header "
            "as a line of its own"
        )
        raise Problems(origin, problems)
    cases = []
    for number, (raw, block) in enumerate(zip(raw_cases, blocks), start=1):
        where = f"case {number} ({raw.get('name', '?') if isinstance(raw, dict) else '?'})"
        try:
            alone = tomllib.loads(block)["case"][0]
        except (tomllib.TOMLDecodeError, KeyError, IndexError) as err:
            problems.append(f"{where}: its text does not stand on its own: {err}")
            continue
        if alone != raw:
            problems.append(f"{where}: its text parses differently on its own")
            continue
        messages, expected = check_case(raw, where, problems)
        cases.append(
            Case(
                text=block,
                origin=origin,
                name=str(raw.get("name")),
                category=str(raw.get("category")),
                language=str(raw.get("language")),
                customer_messages=messages,
                expected_steps=expected,
            )
        )
    if problems:
        raise Problems(origin, problems)
    return cases


def load(directory: Path) -> list[Case]:
    cases: list[Case] = []
    for path in sorted(directory.glob("*.toml")):
        cases.extend(read_cases(path))
    return cases


def check_unique(cases: list[Case]) -> list[str]:
    seen = Counter(case.name for case in cases)
    return [f"the case name {name!r} is used {n} times" for name, n in seen.items() if n > 1]


# ---------------------------------------------------------------------------------------------
# The split


def heldout_quota(strata: dict[tuple[str, str], list[Case]], rng: random.Random) -> dict:
    """How many cases of each stratum go to the held-out part: the shares of each stratum,
    rounded by largest remainder so that the total is HELDOUT_SHARE of the corpus, and a stratum
    with at least two cases keeps at least one in each part."""
    total = sum(len(cases) for cases in strata.values())
    target = round(total * HELDOUT_SHARE)
    quota, low, high, remainder = {}, {}, {}, {}
    for key, cases in strata.items():
        n = len(cases)
        exact = n * HELDOUT_SHARE
        low[key] = 1 if n >= 2 else 0
        high[key] = n - 1 if n >= 2 else n
        quota[key] = min(max(math.floor(exact), low[key]), high[key])
        remainder[key] = (exact - math.floor(exact), rng.random())
    keys = sorted(strata)
    while sum(quota.values()) < target:
        open_keys = [k for k in keys if quota[k] < high[k]]
        if not open_keys:
            break
        best = max(open_keys, key=lambda k: remainder[k])
        quota[best] += 1
        remainder[best] = (-1.0, remainder[best][1])
    while sum(quota.values()) > target:
        open_keys = [k for k in keys if quota[k] > low[k]]
        if not open_keys:
            break
        worst = min(open_keys, key=lambda k: remainder[k])
        quota[worst] -= 1
        remainder[worst] = (2.0, remainder[worst][1])
    return quota


def assign(cases: list[Case]) -> dict[str, list[Case]]:
    """The seeded, stratified assignment of cases to the two parts (input order kept)."""
    rng = random.Random(SEED)
    strata: dict[tuple[str, str], list[Case]] = {}
    for case in cases:
        strata.setdefault((case.category, case.language), []).append(case)
    quota = heldout_quota(strata, rng)
    heldout_names: set[str] = set()
    for key in sorted(strata):
        members = sorted(strata[key], key=lambda c: c.name)
        random.Random(f"{SEED}/{key[0]}/{key[1]}").shuffle(members)
        heldout_names.update(c.name for c in members[: quota[key]])
    return {
        "dev": [c for c in cases if c.name not in heldout_names],
        "heldout": [c for c in cases if c.name in heldout_names],
    }


LANGUAGE_NAMES = {"en": "English", "es": "Spanish", "de": "German", "fr": "French", "cs": "Czech"}
HEADERS = {
    "dev": "# Evaluation corpus, development part ({language}): tune on these.\n",
    "heldout": "# Evaluation corpus, held-out part ({language}): only scored, never tuned on.\n",
}


def write_parts(parts: dict[str, list[Case]]) -> None:
    for part, cases in parts.items():
        directory = PARTS[part]
        directory.mkdir(exist_ok=True)
        for language in LANGUAGES:
            chosen = [c for c in cases if c.language == language]
            if not chosen:
                continue
            header = HEADERS[part].format(language=LANGUAGE_NAMES[language])
            header += (
                f"# Written before the split; moved here by tests/corpus/split.py (seed {SEED}, "
                f"{HELDOUT_SHARE:.0%} held out per category x language).\n"
            )
            body = "\n".join(c.text for c in chosen)
            (directory / f"{language}.toml").write_text(header + "\n" + body, encoding="utf-8")


def command_split() -> int:
    existing = [p for d in PARTS.values() if d.exists() for p in d.glob("*.toml")]
    if existing:
        print(
            "refusing to split again: dev/ and heldout/ already hold cases "
            f"({len(existing)} files). The corpus is split once.",
            file=sys.stderr,
        )
        return 1
    drafts = sorted(DRAFTS.glob("*.toml")) if DRAFTS.exists() else []
    if not drafts:
        print(f"nothing to split: no drafts in {DRAFTS}", file=sys.stderr)
        return 1
    cases = load(DRAFTS)
    duplicates = check_unique(cases)
    if duplicates:
        print("\n".join(duplicates), file=sys.stderr)
        return 1
    parts = assign(cases)
    write_parts(parts)
    # Check what was written parses to the same cases before the drafts go.
    written = {part: load(directory) for part, directory in PARTS.items()}
    assert sorted(c.name for p in written.values() for c in p) == sorted(c.name for c in cases)
    for path in drafts:
        path.unlink()
    if not any(DRAFTS.iterdir()):
        DRAFTS.rmdir()
    print_counts(written)
    return 0


# ---------------------------------------------------------------------------------------------
# Counts


def totals(cases: list[Case]) -> tuple[int, int, int]:
    return len(cases), sum(c.customer_messages for c in cases), sum(c.expected_steps for c in cases)


def print_counts(parts: dict[str, list[Case]]) -> None:
    everything = [c for cases in parts.values() for c in cases]
    n, messages, expected = totals(everything)
    print(f"corpus: {n} conversations, {messages} customer messages, {expected} expected answers")
    for part, cases in parts.items():
        n, messages, expected = totals(cases)
        print(f"  {part}: {n} conversations, {messages} customer messages, {expected} expected answers")
    print("by language (conversations / customer messages):")
    for language in LANGUAGES:
        row = [c for c in everything if c.language == language]
        print(f"  {language}: {len(row)} / {sum(c.customer_messages for c in row)}")
    print("by category (conversations / customer messages):")
    for category in CATEGORIES:
        row = [c for c in everything if c.category == category]
        print(f"  {category}: {len(row)} / {sum(c.customer_messages for c in row)}")


def markdown_table(cases: list[Case], title: str) -> str:
    """Conversations (customer messages) per category x language."""
    lines = [f"**{title}** — conversations (customer messages)", ""]
    lines.append("| category | " + " | ".join(LANGUAGES) + " | total |")
    lines.append("|---|" + "---:|" * (len(LANGUAGES) + 1))

    def cell(chosen: list[Case]) -> str:
        return f"{len(chosen)} ({sum(c.customer_messages for c in chosen)})"

    for category in CATEGORIES:
        row = [c for c in cases if c.category == category]
        cells = [cell([c for c in row if c.language == lang]) for lang in LANGUAGES]
        lines.append(f"| {category} | " + " | ".join(cells) + f" | {cell(row)} |")
    cells = [cell([c for c in cases if c.language == lang]) for lang in LANGUAGES]
    lines.append("| **total** | " + " | ".join(cells) + f" | {cell(cases)} |")
    return "\n".join(lines) + "\n"


def current_parts() -> dict[str, list[Case]]:
    parts = {}
    if DRAFTS.exists() and any(DRAFTS.glob("*.toml")):
        parts["drafts"] = load(DRAFTS)
    for part, directory in PARTS.items():
        if directory.exists() and any(directory.glob("*.toml")):
            parts[part] = load(directory)
    return parts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["check", "counts", "split"])
    args = parser.parse_args()
    try:
        if args.command == "split":
            return command_split()
        parts = current_parts()
        if not parts:
            print("no corpus files found", file=sys.stderr)
            return 1
        duplicates = check_unique([c for cases in parts.values() for c in cases])
        if duplicates:
            print("\n".join(duplicates), file=sys.stderr)
            return 1
        if args.command == "check":
            print_counts(parts)
        else:
            for part, cases in parts.items():
                print(markdown_table(cases, part))
            print(markdown_table([c for cases in parts.values() for c in cases], "both parts"))
        return 0
    except Problems as err:
        print(f"{err.origin}: {len(err.problems)} problem(s)", file=sys.stderr)
        for problem in err.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
