// The studio's page: talks to the studio's JSON API (see http.rs) and renders the conversation,
// each answer with why it was chosen next to it. No framework and no build step; every text
// from the conversation or the playbook is inserted as text, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
let playbookVersion = null;
let busy = false;

// ---- API -----------------------------------------------------------------------------------

async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error((data.error && data.error.message) || `${method} ${path}: ${response.status}`);
  }
  return data;
}

// Runs an action that changes the conversation, one at a time, and renders its result.
async function act(work) {
  if (busy) return;
  busy = true;
  document.body.classList.add("busy");
  for (const b of document.querySelectorAll("button")) b.disabled = true;
  $("status").textContent = "";
  try {
    const conversation = await work();
    if (conversation) render(conversation);
  } catch (err) {
    $("status").textContent = err.message;
  } finally {
    busy = false;
    document.body.classList.remove("busy");
    for (const b of document.querySelectorAll("button")) b.disabled = false;
  }
}

const play = (step) => act(() => api("POST", "/api/step", { step }));

// ---- small DOM helpers ----------------------------------------------------------------------

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function fold(summary, content) {
  const details = el("details");
  details.append(el("summary", null, summary), content);
  return details;
}

const json = (value) => el("pre", null, JSON.stringify(value, null, 2));
const ms = (value) => (value < 10 ? value.toFixed(2) : Math.round(value).toLocaleString("en")) + " ms";

// ---- the playbook ---------------------------------------------------------------------------

async function refreshPlaybook() {
  let status;
  try {
    status = await api("GET", "/api/playbook");
  } catch (err) {
    $("status").textContent = "the studio does not answer: " + err.message;
    return;
  }
  $("playbook-file").textContent = status.path || "built-in playbook";
  $("playbook-file").title = status.summary;
  $("playbook-version").textContent = "version " + status.version;
  $("playbook-error").hidden = !status.error;
  $("playbook-error-text").textContent = status.error || "";
  if (playbookVersion !== null && status.version !== playbookVersion) {
    notice(`Playbook version ${status.version} loaded. New answers use it; Replay plays the whole conversation again with it.`);
  }
  playbookVersion = status.version;
  const select = $("language");
  if (select.options.length === 0) {
    for (const code of status.languages) select.append(new Option(code, code));
  }
}

function notice(text) {
  $("notice").textContent = text;
  $("notice").hidden = !text;
}

// ---- rendering ------------------------------------------------------------------------------

function render(conversation) {
  const modes = $("mode");
  if (modes.options.length !== conversation.modes.length) {
    const label = {
      "in-process": "the playbook, in-process",
      "generative": `the playbook and the model at ${conversation.model_url}, in-process`,
      "pipeline": `the pipeline (${conversation.pipeline_url})`,
    };
    modes.replaceChildren(...conversation.modes.map((m) => new Option(label[m] || m, m)));
  }
  modes.value = conversation.mode;
  const language = $("language");
  if (![...language.options].some((o) => o.value === conversation.language)) {
    language.append(new Option(conversation.language, conversation.language));
  }
  language.value = conversation.language;
  const list = $("transcript");
  list.replaceChildren(...conversation.exchanges.map((x, i) => exchange(x, i)));
  $("empty").hidden = conversation.exchanges.length > 0;
  const last = list.lastElementChild;
  if (last) last.scrollIntoView({ block: "nearest" });
}

function stepView(step, agent) {
  const [kind, value] = typeof step === "string" ? [step, true] : Object.entries(step)[0];
  switch (kind) {
    case "customer": return el("div", "bubble customer", value);
    case "customer_silent": return el("div", "bubble customer", value + "  (silent)");
    case "agent": return el("div", "bubble agent", `${agent || "Agent"}: ${value}`);
    case "agent_joins": return el("div", "event", `${value} (agent) joins`);
    case "action": return el("div", "event", `${agent || "A supervisor"} presses “${value}”`);
    case "agent_leaves": return el("div", "event", `${agent || "The agent"} leaves: ${value.outcome} (${value.reason})`);
    case "file": return el("div", "event", `The customer sends ${value.name} (${value.mime})`);
    case "navigation": return el("div", "event", `The customer opens ${value}`);
    case "review": return el("div", "event", `Review “${value.question}”: ${value.answer}${value.reason ? " (" + value.reason + ")" : ""}`);
    case "menu_step": return el("div", "event", `Menu step ${value}`);
    case "answer": return el("div", "event", `Answer ${value}`);
    case "conversation_update": return el("div", "event", `Conversation update: ${value}`);
    case "completed": return el("div", "event", "The customer went quiet: the conversation is completed");
    default: return el("div", "event", JSON.stringify(step));
  }
}

function actionViews(actions) {
  return actions.map((a) => {
    const type = String(a.type || "").toUpperCase();
    if (type === "MESSAGE") return el("div", "bubble bot", a.content);
    if (type === "NOTE") return el("div", "bubble note", "Note for agents: " + a.content);
    if (type === "NEEDS_HELP") return el("div", "escalation", a.needsHelp === false ? "needs help: cleared" : "⚑ asks for a human agent (NEEDS_HELP)");
    return el("div", "event", JSON.stringify(a));
  });
}

function exchange(x, index) {
  const item = el("li", "exchange");
  item.dataset.index = index;
  const talk = el("div", "talk");
  talk.append(stepView(x.step, x.agent));
  const answer = x.answer;
  if (answer) {
    talk.append(...actionViews(answer.actions));
    if (answer.actions.length === 0 && answer.outcome === "answered") talk.append(el("div", "event", "(no actions)"));
    if (answer.problem) talk.append(el("div", "problem", answer.problem));
  }
  if (x.changed_from) {
    item.classList.add("changed");
    const previous = el("div", "previous");
    previous.append(el("strong", null, "Before the replay:"));
    const before = actionViews(x.changed_from);
    previous.append(...(before.length ? before : [el("div", null, "(no actions)")]));
    talk.append(previous);
  }
  item.append(talk, answer ? why(answer, x.changed_from) : el("div"));
  return item;
}

// ---- why it answered ------------------------------------------------------------------------

const SHOWN = new Set(["chosen", "language", "phase_before", "phase_after", "candidates", "clauses",
  "details", "tone", "notes", "generative", "state_before", "state_after", "explained_in_process",
  "same_as_pipeline", "signals", "answer_step", "playbook_choice"]);

function chosenText(c) {
  let text = c.kind || "?";
  if (c.id) text += " · " + c.id;
  if (c.detail) text += " → asks for " + c.detail;
  if (typeof c.resolved === "boolean") text += c.resolved ? " (resolved)" : " (not resolved)";
  if (typeof c.rating === "number") text += ` (rating ${c.rating})`;
  const confidence = c.confidence ?? c.score;
  if (typeof confidence === "number") text += ` (${Math.round(confidence * 100)}%)`;
  return text;
}

function why(answer, changed) {
  const box = el("div", "why");
  const w = answer.why && typeof answer.why === "object" ? answer.why : {};
  const title = el("h3", null, "Why it answered");
  if (changed) title.append(el("span", "tag", "changed"));
  box.append(title);

  const chosen = w.chosen === undefined ? [] : Array.isArray(w.chosen) ? w.chosen : [w.chosen];
  for (const c of chosen) {
    const line = el("div", "chosen", chosenText(c));
    if (c.reason) line.append(el("span", "hint", " — " + c.reason));
    box.append(line);
  }

  const facts = el("dl");
  const fact = (name, value) => {
    if (value === undefined || value === null || value === "") return;
    facts.append(el("dt", null, name), el("dd", null, value));
  };
  fact({ pipeline: "pipeline", generative: "with the model" }[answer.mode] || "in-process",
    `${ms(answer.latency_ms)} of the ${ms(answer.deadline_ms)} budget · playbook version ${answer.playbook_version}`);
  if (w.language) fact("language", typeof w.language === "object"
    ? `${w.language.code} (${w.language.reason ?? w.language.why}${w.language.note ? ": " + w.language.note : ""})` : w.language);
  if (w.phase_before || w.phase_after) fact("phase", `${w.phase_before} → ${w.phase_after}`);
  if (w.details && Object.keys(w.details).length) {
    fact("details", Object.entries(w.details).map(([k, v]) => `${k} = ${typeof v === "string" ? v : JSON.stringify(v)}`).join(", "));
  }
  if (w.tone && (!Array.isArray(w.tone) || w.tone.length)) {
    fact("tone", Array.isArray(w.tone) ? w.tone.join(", ") : typeof w.tone === "string" ? w.tone : JSON.stringify(w.tone));
  }
  if (w.explained_in_process) fact("explained by", "the studio's playbook, in-process" + (w.same_as_pipeline ? " (same actions as the pipeline)" : " — the pipeline answered differently"));
  box.append(facts);

  const meter = el("div", "meter" + (answer.latency_ms > answer.deadline_ms ? " late" : ""));
  const bar = el("span");
  bar.style.width = Math.min(100, (answer.latency_ms / answer.deadline_ms) * 100).toFixed(2) + "%";
  meter.append(bar);
  meter.title = "share of the event's budget used";
  box.append(meter);

  if (Array.isArray(w.candidates) && w.candidates.length) {
    const table = el("table");
    table.append(row("th", ["candidate", "kind", "confidence"]));
    const picked = new Set(chosen.map((c) => c.id));
    for (const c of w.candidates) {
      const score = c.confidence ?? c.score;
      const tr = row("td", [c.id ?? "", c.kind ?? "", typeof score === "number" ? score.toFixed(2) : ""]);
      if (picked.has(c.id)) tr.className = "picked";
      table.append(tr);
    }
    box.append(fold("runners-up", table));
  }
  if (Array.isArray(w.clauses) && w.clauses.length) {
    const list = el("ol");
    for (const c of w.clauses) {
      if (typeof c !== "object" || c === null) { list.append(el("li", null, String(c))); continue; }
      const matched = c.matched ? chosenText(c.matched) : "nothing";
      list.append(el("li", null, `“${c.text ?? ""}” → ${matched}`));
    }
    box.append(fold(`${w.clauses.length} request(s) in the message`, list));
  }
  if (w.generative) box.append(generative(w.generative, w.playbook_choice));
  if (Array.isArray(w.notes) && w.notes.length) {
    const list = el("ul");
    for (const n of w.notes) list.append(el("li", null, typeof n === "string" ? n : JSON.stringify(n)));
    box.append(fold("notes", list));
  }
  const rest = Object.fromEntries(Object.entries(w).filter(([k]) => !SHOWN.has(k)));
  rest.signals = w.signals;
  rest.answer_step = w.answer_step;
  const raw = el("div");
  raw.append(el("h3", null, "actions"), json(answer.actions),
    el("h3", null, "state before → after"), json({ before: w.state_before ?? null, after: w.state_after ?? null }),
    el("h3", null, "everything else"), json(rest),
    el("h3", null, "the event as sent"), json(answer.event));
  box.append(fold("actions, state before → after, everything else, the event", raw));
  return box;
}

// The generative step: its outcome (and why the playbook's answer stayed), then the passages.
function generative(g, playbookChoice) {
  const box = el("div", "generative");
  const outcome = {
    answered: "the model answered",
    escalated: "the model asked for a human",
    fallback: "the playbook's answer stayed",
  }[g.outcome] || g.outcome || "?";
  let line = "generative step: " + outcome;
  if (g.fallback) line += ` (fallback: ${g.fallback})`;
  if (typeof g.model_ms === "number") line += ` · ${ms(g.model_ms)}`;
  box.append(el("div", "chosen", line));
  if (Array.isArray(playbookChoice) && playbookChoice.length) {
    box.append(el("div", "hint", "the playbook had chosen: " + playbookChoice.map(chosenText).join(", ")));
  }
  const passages = Array.isArray(g.passages) ? g.passages : [];
  const list = el("ol");
  for (const p of passages) {
    const item = el("li");
    if (typeof p === "string") item.textContent = p;
    else {
      item.append(el("strong", null, p.source ?? p.id ?? ""), " ");
      if (typeof p.score === "number") item.append(`(${p.score.toFixed(2)}) `);
      item.append(p.text ?? "");
    }
    list.append(item);
  }
  box.append(passages.length ? fold(`${passages.length} passages given to the model`, list)
    : el("div", "hint", "no passages (the model was not asked)"));
  return box;
}

function row(cell, values) {
  const tr = el("tr");
  for (const v of values) tr.append(el(cell, null, v));
  return tr;
}

// ---- wiring ---------------------------------------------------------------------------------

function value(id) {
  return $(id).value.trim();
}

$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = value("message");
  if (!text) return;
  $("message").value = "";
  play({ customer: text });
});

for (const button of document.querySelectorAll("button[data-step]")) {
  button.addEventListener("click", () => {
    const text = value(button.dataset.from);
    if (!text) {
      $("status").textContent = "write something first";
      return;
    }
    if (button.dataset.from === "agent-text" || button.dataset.from === "silent-text") $(button.dataset.from).value = "";
    play({ [button.dataset.step]: text });
  });
}

$("agent-leaves").addEventListener("click", () =>
  play({ agent_leaves: { outcome: value("leave-outcome"), reason: value("leave-reason") } }));
$("file").addEventListener("click", () =>
  play({ file: { name: value("file-name"), mime: value("file-mime") } }));
$("review").addEventListener("click", () =>
  play({ review: { question: value("review-question"), answer: value("review-answer"), reason: value("review-reason") } }));
$("quiet").addEventListener("click", () => play({ completed: true }));

$("new").addEventListener("click", () => act(() => api("POST", "/api/new", { language: $("language").value })));
$("language").addEventListener("change", () => act(() => api("POST", "/api/new", { language: $("language").value })));
$("mode").addEventListener("change", () => act(() => api("POST", "/api/mode", { mode: $("mode").value })));
$("replay").addEventListener("click", () => act(async () => {
  const conversation = await api("POST", "/api/replay");
  const changed = conversation.exchanges.filter((x) => x.changed_from).length;
  notice(changed ? `Replayed: ${changed} answer(s) changed (marked).` : "Replayed: no answer changed.");
  return conversation;
}));

async function showExport() {
  const name = value("export-name");
  const exported = await api("GET", "/api/export?name=" + encodeURIComponent(name));
  $("export-text").value = exported.toml;
  $("export-panel").hidden = false;
}
$("export").addEventListener("click", () => act(async () => { await showExport(); return null; }));
$("export-name").addEventListener("change", () => showExport().catch((err) => { $("status").textContent = err.message; }));
$("export-close").addEventListener("click", () => { $("export-panel").hidden = true; });

// The playbook is checked once a second: an edit of the file shows at once, errors included.
refreshPlaybook().then(() => api("GET", "/api/conversation")).then(render)
  .catch((err) => { $("status").textContent = err.message; });
setInterval(refreshPlaybook, 1000);
