"""NATS configuration files as data, and the checks that a NATS set-up is locked down (used by
scripts/check-deploy.py for the production overlay and the compose stack; stdlib only).

parse() reads the subset of the NATS configuration format the deployment uses: blocks `{}`,
arrays `[]`, `key: value` / `key = value` / `key value`, quoted and bare strings, `#` and `//`
comments, `include` (resolved through a callback, as nats-server does relative to the file) and
`$NAME` references (a key defined earlier in an enclosing block, otherwise the environment,
kept as {"$env": NAME}).

locked_down() lists what is wrong with a parsed configuration: TLS for clients (and mutual TLS
for cluster routes), every client authenticated, passwords from the environment, the ingress
in an account of its own that reaches the pipeline's account only through the services it needs,
and the ingress and worker users' permissions (what each must be able to do, and a list of
things neither may do).
"""

from __future__ import annotations

from typing import Callable

PUNCTUATION = "{}[],:="


class ParseError(ValueError):
    pass


class Parser:
    def __init__(self, text: str, read_include: Callable[[str], str], scopes: list[dict]):
        self.text, self.pos = text, 0
        self.read_include = read_include
        self.scopes = scopes

    # ---- characters ----------------------------------------------------------------------------
    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip(self, newlines: bool = True) -> None:
        """Skips blanks and comments (and newlines and commas when `newlines`)."""
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == "#" or self.text.startswith("//", self.pos):
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end
            elif ch in " \t\r" or (newlines and ch in "\n,"):
                self.pos += 1
            else:
                return

    def error(self, message: str) -> ParseError:
        line = self.text.count("\n", 0, self.pos) + 1
        return ParseError(f"line {line}: {message}")

    # ---- grammar -------------------------------------------------------------------------------
    def block(self, closing: str) -> dict:
        result: dict = {}
        self.scopes.append(result)
        try:
            while True:
                self.skip()
                ch = self.peek()
                if ch == closing:
                    self.pos += len(closing)
                    return result
                if not ch:
                    raise self.error(f"missing `{closing}`")
                key = self.key()
                self.skip(newlines=False)
                if key == "include":
                    path = self.scalar()
                    result.update(parse(self.read_include(path), self.read_include, self.scopes))
                    continue
                if self.peek() in ":=":
                    self.pos += 1
                    self.skip(newlines=False)
                result[key] = self.value()
        finally:
            self.scopes.pop()

    def key(self) -> str:
        if self.peek() in "\"'":
            return self.quoted()
        start = self.pos
        while self.peek() and self.peek() not in " \t\r\n" + PUNCTUATION:
            self.pos += 1
        if start == self.pos:
            raise self.error(f"expected a key, found `{self.peek()}`")
        return self.text[start:self.pos]

    def value(self):
        ch = self.peek()
        if ch == "{":
            self.pos += 1
            return self.block("}")
        if ch == "[":
            self.pos += 1
            return self.array()
        if ch == "$":
            self.pos += 1
            return self.reference(self.key())
        return convert(self.scalar())

    def array(self) -> list:
        items = []
        while True:
            self.skip()
            if self.peek() == "]":
                self.pos += 1
                return items
            if not self.peek():
                raise self.error("missing `]`")
            items.append(self.value())

    def scalar(self) -> str:
        if self.peek() in "\"'":
            return self.quoted()
        start = self.pos
        while self.peek() and self.peek() not in "\n,]}" and not self.text.startswith("#", self.pos):
            self.pos += 1
        return self.text[start:self.pos].strip()

    def quoted(self) -> str:
        quote = self.peek()
        end = self.text.find(quote, self.pos + 1)
        if end < 0:
            raise self.error("unterminated string")
        value = self.text[self.pos + 1:end]
        self.pos = end + 1
        return value

    def reference(self, name: str):
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        return {"$env": name}


def convert(text: str):
    lowered = text.lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    return text


def parse(text: str, read_include: Callable[[str], str], scopes: list[dict] | None = None) -> dict:
    """The configuration in `text`; `read_include(path)` returns an included file's text."""
    return Parser(text, read_include, scopes if scopes is not None else []).block("")


# ------------------------------------------------------------------------------------------------
# Subjects and permissions
# ------------------------------------------------------------------------------------------------


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS wildcard matching: `*` is one token, `>` one or more trailing tokens."""
    want, have = pattern.split("."), subject.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return len(have) > i
        if i >= len(have) or (token != "*" and token != have[i]):
            return False
    return len(want) == len(have)


def allowed(permissions: dict, direction: str, subject: str) -> bool:
    """Whether a user with `permissions` may publish/subscribe `subject` (allow minus deny)."""
    rules = permissions.get(direction)
    if rules is None:
        return True
    if isinstance(rules, list):
        rules = {"allow": rules}
    allow, deny = rules.get("allow"), rules.get("deny") or []
    permitted = True if allow is None else any(subject_matches(p, subject) for p in as_list(allow))
    return permitted and not any(subject_matches(p, subject) for p in as_list(deny))


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def users(conf: dict) -> dict[str, tuple[str, dict]]:
    """User name -> (account name, user entry)."""
    found = {}
    for account, body in (conf.get("accounts") or {}).items():
        for user in (body or {}).get("users") or []:
            found[user.get("user") or user.get("nkey", "?")] = (account, user)
    for user in (conf.get("authorization") or {}).get("users") or []:
        found[user.get("user", "?")] = ("$G", user)
    return found


# What the services do (tests/tests/nats_permissions.rs proves the full set against a real
# server); sample subjects per stream name.
def ingress_needs(stream: str) -> list[str]:
    return ["yourlogic.events.0", f"$JS.API.STREAM.INFO.{stream}", f"$JS.API.CONSUMER.INFO.{stream}.yourlogic-p0000"]


def worker_needs(stream: str) -> list[str]:
    return [f"$JS.API.STREAM.INFO.{stream}", f"$JS.API.STREAM.CREATE.{stream}", f"$JS.API.STREAM.UPDATE.{stream}",
            f"$JS.API.CONSUMER.CREATE.{stream}.yourlogic-p0000.yourlogic.events.0",
            f"$JS.API.CONSUMER.MSG.NEXT.{stream}.yourlogic-p0000", f"$JS.API.STREAM.MSG.GET.{stream}",
            f"$JS.ACK.{stream}.yourlogic-p0000.1.1.1.1.0", "$KV.yourlogic_answers.key",
            "yourlogic.dead.0", "yourlogic.workers"]


# What the ingress may never do: read events, touch consumers, delete, purge or reconfigure
# streams (a shorter max age drops queued events), write answers or dead letters, pose as a
# worker.
def ingress_forbidden(stream: str) -> tuple[list[str], list[str]]:
    publish = [f"$JS.API.STREAM.DELETE.{stream}", f"$JS.API.STREAM.PURGE.{stream}",
               f"$JS.API.STREAM.UPDATE.{stream}", f"$JS.API.STREAM.CREATE.{stream}",
               f"$JS.API.STREAM.MSG.GET.{stream}", f"$JS.API.DIRECT.GET.{stream}",
               f"$JS.API.STREAM.MSG.DELETE.{stream}",
               f"$JS.API.CONSUMER.CREATE.{stream}.spy.yourlogic.events.0",
               f"$JS.API.CONSUMER.DELETE.{stream}.yourlogic-p0000",
               f"$JS.API.CONSUMER.MSG.NEXT.{stream}.yourlogic-p0000",
               f"$JS.ACK.{stream}.yourlogic-p0000.1.1.1.1.0",
               "$JS.API.STREAM.DELETE.KV_yourlogic_answers", "$JS.API.STREAM.CREATE.KV_yourlogic_answers",
               "$KV.yourlogic_answers.key", "$JS.API.STREAM.DELETE.YOURLOGIC_DEAD_LETTERS",
               "yourlogic.dead.0", "yourlogic.workers"]
    subscribe = ["yourlogic.events.0", "$KV.yourlogic_answers.key", "yourlogic.dead.0", "yourlogic.workers"]
    return publish, subscribe


def worker_forbidden(stream: str) -> list[str]:
    return [f"$JS.API.STREAM.DELETE.{stream}", f"$JS.API.STREAM.PURGE.{stream}",
            "$JS.API.STREAM.DELETE.KV_yourlogic_answers", "$JS.API.STREAM.DELETE.YOURLOGIC_DEAD_LETTERS"]


def env_references(value) -> set[str]:
    """Every `$NAME` left for the environment anywhere in `value`."""
    if isinstance(value, dict):
        if set(value) == {"$env"}:
            return {value["$env"]}
        return set().union(*(env_references(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(env_references(v) for v in value)) if value else set()
    return set()


def locked_down(conf: dict, streams: list[str], cluster_routes: bool, require_tls: bool) -> list[str]:
    """What keeps `conf` from being locked down; empty when it is. `streams`: the event streams
    the services use; `cluster_routes`: whether it is one server of a cluster; `require_tls`:
    whether clients must use TLS."""
    problems = []
    tls = conf.get("tls") or {}
    if require_tls and not (tls.get("cert_file") and tls.get("key_file")):
        problems.append("no `tls` block with cert_file and key_file: client connections are not encrypted")
    if require_tls and conf.get("allow_non_tls"):
        problems.append("allow_non_tls lets clients connect without TLS")
    if cluster_routes:
        route_tls = (conf.get("cluster") or {}).get("tls") or {}
        if not (route_tls.get("cert_file") and route_tls.get("key_file") and route_tls.get("ca_file")):
            problems.append("cluster routes without TLS (cluster.tls with cert_file, key_file, ca_file)")
        if route_tls.get("verify") is not True:
            problems.append("cluster.tls.verify must be true: any server could join the cluster")
    if "no_auth_user" in conf or (conf.get("authorization") or {}).get("token"):
        problems.append("no_auth_user or a shared token: clients get in without their own credentials")
    known = users(conf)
    if not known:
        problems.append("no users: NATS accepts anyone (no `accounts` or `authorization` with users)")
    for name, (_, user) in known.items():
        if "password" in user and "$env" not in (user["password"] if isinstance(user["password"], dict) else {}):
            problems.append(f"user {name}: the password is written in the configuration, not read from a Secret")
    for service in ("ingress", "worker"):
        if service not in known:
            problems.append(f"no NATS user `{service}`")
        elif "permissions" not in known[service][1]:
            problems.append(f"user {service} has no permissions: it may do anything in its account")
    if problems:
        return problems

    ingress_account, ingress = known["ingress"]
    worker_account, worker = known["worker"]
    accounts = conf.get("accounts") or {}
    if ingress_account == worker_account:
        problems.append("the ingress shares an account with the workers: its `_INBOX.>` would receive "
                        "the events JetStream delivers to the workers' inboxes")
    if (accounts.get(ingress_account) or {}).get("jetstream"):
        problems.append(f"account {ingress_account} (ingress) has JetStream of its own")
    exported_streams = [e for e in (accounts.get(worker_account) or {}).get("exports") or [] if "stream" in e]
    if exported_streams:
        problems.append(f"account {worker_account} exports streams {exported_streams}: stored messages "
                        "could flow to other accounts")
    imports = [i.get("service", {}).get("subject") for i in (accounts.get(ingress_account) or {}).get("imports") or []
               if (i.get("service") or {}).get("account") == worker_account]
    ingress_perms, worker_perms = ingress["permissions"], worker["permissions"]
    publish_denied, subscribe_denied = [], []
    for stream in streams:
        for subject in ingress_needs(stream):
            if not allowed(ingress_perms, "publish", subject):
                problems.append(f"user ingress may not publish {subject}, which it needs")
            if not any(subject_matches(p, subject) for p in imports if p):
                problems.append(f"account {ingress_account} does not import {subject} from {worker_account}")
        for subject in worker_needs(stream):
            if not allowed(worker_perms, "publish", subject):
                problems.append(f"user worker may not publish {subject}, which it needs")
        publish, subscribe = ingress_forbidden(stream)
        publish_denied += [s for s in publish if allowed(ingress_perms, "publish", s)]
        subscribe_denied += [s for s in subscribe if allowed(ingress_perms, "subscribe", s)]
        problems += [f"user worker may publish {s}" for s in worker_forbidden(stream) if allowed(worker_perms, "publish", s)]
    problems += [f"user ingress may publish {s}" for s in sorted(set(publish_denied))]
    problems += [f"user ingress may subscribe to {s}" for s in sorted(set(subscribe_denied))]
    if not allowed(worker_perms, "subscribe", "yourlogic.workers"):
        problems.append("user worker may not subscribe to yourlogic.workers (membership)")
    return problems
