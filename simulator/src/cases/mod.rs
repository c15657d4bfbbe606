//! Conversation tests (`saltedcx-sim test`): scripted conversations with expectations on every
//! answer, played the way Salted CX plays them (growing turns, custom data echoed back,
//! `needsHelp` raised and cleared by the answers), against a playbook in-process or a running
//! pipeline. A failing expectation prints the step, what was expected and the whole answer.
//!
//! A file holds one or more cases:
//!
//! ```toml
//! [[case]]
//! name = "a happy 'no problem' at the closing is a yes"   # required, shown in reports
//! language = "en"          # languageCustomer (default en)
//! customer = "Ada"         # display name (optional)
//! platform = "WEB"         # conversation.platform (optional)
//! url = "https://shop.example.com/help"   # the starting page (optional)
//! custom = { crm = 42 }    # conversation.custom before the first event (optional)
//!
//! [[case.step]]
//! customer = "I want to talk to a human"      # any scenario step (see `scenario`)
//! expect.escalates = true
//! expect.note_contains = "asked for a human agent"
//!
//! [[case.step]]
//! agent_joins = "Maria"                       # no event: no `expect`
//!
//! [[case.step]]
//! agent_leaves = { outcome = "ACCEPTED", reason = "Done" }
//! expect.message = "Has your issue been resolved? Please answer yes or no."
//!
//! [[case.step]]
//! customer = "no problem, all good now"
//! expect.message_contains = "How would you rate"
//! expect.needs_help = false
//! expect.custom = { yl = { p = "f" } }
//! ```
//!
//! Expectations (all optional; text lists may be one string or a list):
//! - `message`: each text is exactly one of the answer's messages;
//! - `message_contains`: each text is part of one of the messages (case-sensitive);
//! - `message_matches`: each regular expression matches one of the messages;
//! - `no_message = true`: no message to the customer (`false`: at least one);
//! - `nothing = true`: no action at all;
//! - `escalates`: whether the answer asks for a human (`NEEDS_HELP` true);
//! - `needs_help`: the conversation's needs-help flag after the answer;
//! - `note_contains`, `no_note`: the notes for agents;
//! - `custom`: a subset of `conversation.custom` after the answer (objects compared key by key;
//!   `"yl.p"`-style keys are not paths; a JSON `null` is not expressible in TOML, so absence is
//!   not checked).
//!
//! Semantic expectations, checked in-process from the playbook's decision explanation
//! (`Playbook::decide_explained`; a run through a pipeline skips them):
//! - `topic`: each listed knowledge entry is addressed (answered, or its required detail asked
//!   for), and no other;
//! - `topic_or_clarify`: one of the listed entries is addressed, or the bot asks which one;
//! - `intent`: that intent is answered; `not_known = true`: the not-known path (or a colleague
//!   offered or called) and no knowledge answer; `clarifies`: a clarifying question;
//! - `asks`: the bot asks for that detail; `details`: captured values after the answer;
//! - `language`: the reply's language; `rating`: the rating stored; `resolved`: the closing
//!   answer understood as resolved or not.
//!
//! A case may name its `category` (for `saltedcx-sim score`, which reports accuracy per
//! category and language and the rate of confident wrong answers).
//!
//! `completed = true` is the step that completes the conversation.

pub mod check;
pub mod run;
pub mod score;
pub mod semantic;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::{Map, Value};
use worker::logic::engagements::Identity;
use worker::logic::playbook::{Options, Playbook, PlaybookLogic, ReplyLanguage};

use super::client::IngressClient;
use super::config::{ScoreArgs, TestArgs};
use super::driver::{Env, Ingress};
use super::scenario::{Scenario, Step};
use super::stats::Stats;

/// One conversation test.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    /// What the case tests (`phrasings`, `tone`, ...), for score reports.
    pub category: Option<String>,
    /// The file it comes from.
    pub file: String,
    /// The conversation to play.
    pub scenario: Scenario,
    /// The expectations of each step (same index as `scenario.steps`).
    pub expects: Vec<Option<Expect>>,
}

/// What an answer must look like.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    pub message: Vec<String>,
    pub message_contains: Vec<String>,
    pub message_matches: Vec<regex::Regex>,
    pub no_message: Option<bool>,
    pub nothing: Option<bool>,
    pub escalates: Option<bool>,
    pub needs_help: Option<bool>,
    pub note_contains: Vec<String>,
    pub no_note: Option<bool>,
    pub custom: Option<Map<String, Value>>,
    /// The semantic expectations (see the module documentation).
    pub semantic: semantic::Semantic,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    #[serde(default, rename = "case")]
    cases: Vec<RawCase>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    name: String,
    #[serde(default)]
    category: Option<String>,
    #[serde(default = "default_language")]
    language: String,
    #[serde(default)]
    customer: Option<String>,
    #[serde(default)]
    platform: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    custom: Map<String, Value>,
    #[serde(default, rename = "step")]
    steps: Vec<toml::Table>,
}

fn default_language() -> String {
    "en".into()
}

/// One text or several.
#[derive(Deserialize, Default)]
#[serde(untagged)]
enum Texts {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl Texts {
    fn into_vec(self) -> Vec<String> {
        match self {
            Texts::None => Vec::new(),
            Texts::One(text) => vec![text],
            Texts::Many(texts) => texts,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    #[serde(default)]
    message: Texts,
    #[serde(default)]
    message_contains: Texts,
    #[serde(default)]
    message_matches: Texts,
    no_message: Option<bool>,
    nothing: Option<bool>,
    escalates: Option<bool>,
    needs_help: Option<bool>,
    #[serde(default)]
    note_contains: Texts,
    no_note: Option<bool>,
    custom: Option<Map<String, Value>>,
    #[serde(default)]
    topic: Texts,
    #[serde(default)]
    topic_or_clarify: Texts,
    intent: Option<String>,
    not_known: Option<bool>,
    clarifies: Option<bool>,
    asks: Option<String>,
    details: Option<Map<String, Value>>,
    language: Option<String>,
    rating: Option<u8>,
    resolved: Option<bool>,
}

impl RawExpect {
    fn compile(self) -> Result<Expect> {
        let message_matches = self
            .message_matches
            .into_vec()
            .iter()
            .map(|pattern| {
                regex::Regex::new(pattern).with_context(|| {
                    format!("`message_matches` `{pattern}` is not a valid regular expression")
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Expect {
            message: self.message.into_vec(),
            message_contains: self.message_contains.into_vec(),
            message_matches,
            no_message: self.no_message,
            nothing: self.nothing,
            escalates: self.escalates,
            needs_help: self.needs_help,
            note_contains: self.note_contains.into_vec(),
            no_note: self.no_note,
            custom: self.custom,
            semantic: semantic::Semantic {
                topic: self.topic.into_vec(),
                topic_or_clarify: self.topic_or_clarify.into_vec(),
                intent: self.intent,
                not_known: self.not_known,
                clarifies: self.clarifies,
                asks: self.asks,
                details: self
                    .details
                    .map(|d| {
                        d.into_iter()
                            .map(|(k, v)| {
                                (k, v.as_str().map_or_else(|| v.to_string(), str::to_string))
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                language: self.language,
                rating: self.rating,
                resolved: self.resolved,
            },
        })
    }
}

/// Parses the cases of one file; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Vec<Case>> {
    let parsed: CaseFile = toml::from_str(text)
        .with_context(|| format!("{file} is not a valid conversation test file"))?;
    if parsed.cases.is_empty() {
        bail!("{file} has no [[case]]");
    }
    parsed
        .cases
        .into_iter()
        .map(|raw| {
            let name = raw.name.clone();
            case(file, raw).with_context(|| format!("{file}: case `{name}`"))
        })
        .collect()
}

fn case(file: &str, raw: RawCase) -> Result<Case> {
    let mut steps = Vec::new();
    let mut expects = Vec::new();
    for (i, mut table) in raw.steps.into_iter().enumerate() {
        let number = i + 1;
        let expect = table
            .remove("expect")
            .map(|value| value.try_into::<RawExpect>())
            .transpose()
            .with_context(|| format!("step {number}: invalid `expect`"))?
            .map(RawExpect::compile)
            .transpose()
            .with_context(|| format!("step {number}"))?;
        let step = step(table).with_context(|| format!("step {number}"))?;
        if expect.is_some() && !step.sends_event() {
            bail!("step {number}: `agent_joins` sends no event, so it has no answer to expect");
        }
        steps.push(step);
        expects.push(expect);
    }
    let scenario = Scenario {
        name: raw.name.clone(),
        title: raw.name.clone(),
        customer: raw.customer.unwrap_or_else(|| "Test Customer".into()),
        phone: None,
        language: raw.language,
        platform: raw.platform.unwrap_or_else(|| "WEB".into()),
        url: raw.url,
        custom: raw.custom,
        steps,
    };
    if scenario.events() == 0 {
        bail!("it sends no event: add at least one step");
    }
    Ok(Case {
        name: raw.name,
        category: raw.category,
        file: file.to_string(),
        scenario,
        expects,
    })
}

/// A step table without its `expect` (`completed = true` for the completion).
fn step(table: toml::Table) -> Result<Step> {
    if table.len() != 1 {
        let keys: Vec<&String> = table.keys().collect();
        bail!(
            "a step has exactly one kind (customer, agent, agent_joins, ...) besides `expect`, found {keys:?}"
        );
    }
    if table.get("completed") == Some(&toml::Value::Boolean(true)) {
        return Ok(Step::Completed);
    }
    toml::Value::Table(table)
        .try_into::<Step>()
        .context("unknown or malformed step")
}

/// The cases at `paths` whose name contains `filter`.
fn selected(paths: &[PathBuf], filter: Option<&str>) -> Result<Vec<Case>> {
    let mut cases = load(paths)?;
    if let Some(filter) = filter {
        cases.retain(|c| c.name.contains(filter));
        if cases.is_empty() {
            bail!("no conversation test name contains {filter:?}");
        }
    }
    Ok(cases)
}

/// The playbook at `path` (the built-in one when unset) with the deployment options.
fn playbook_logic(
    path: Option<&Path>,
    bot_agent_ids: &[String],
    reply_language: ReplyLanguage,
) -> Result<Arc<PlaybookLogic>> {
    let playbook = match path {
        Some(path) => Playbook::load(path),
        None => Playbook::builtin(),
    }
    .map_err(|err| anyhow::anyhow!("{err}"))?;
    let options = Options {
        identity: Identity::new(bot_agent_ids),
        reply_language,
    };
    Ok(Arc::new(PlaybookLogic::with_options(playbook, options)))
}

/// `saltedcx-sim score`: plays the cases in-process and prints the score report.
pub async fn score_command(args: &ScoreArgs) -> Result<ExitCode> {
    let cases = selected(&args.paths, args.filter.as_deref())?;
    let logic = playbook_logic(
        args.playbook.as_deref(),
        &args.bot_agent_ids,
        args.reply_language,
    )?;
    let report = run::run(
        &run::Backend::InProcess(logic),
        &cases,
        std::time::Duration::from_secs(15),
    )
    .await;
    let paths: Vec<String> = args.paths.iter().map(|p| p.display().to_string()).collect();
    let title = format!(
        "score of {} ({} conversations)",
        paths.join(", "),
        cases.len()
    );
    if args.failures {
        for case in report.cases.iter().filter(|c| c.failure.is_some()) {
            println!("FAIL  {} ({})", case.name, case.file);
            print!("{}", case.failure.as_deref().unwrap_or_default());
        }
        println!();
    }
    let score = score::Score::of(&report);
    print!("{}", score.render(&title));
    if args.calibration {
        print!("{}", score.render_calibration());
    }
    Ok(ExitCode::SUCCESS)
}

/// `saltedcx-sim test`: loads the cases, plays them and prints the report; exit 1 when one
/// fails.
pub async fn command(args: &TestArgs) -> Result<ExitCode> {
    let cases = selected(&args.paths, args.filter.as_deref())?;
    let backend = match &args.ingress_url {
        None => run::Backend::InProcess(playbook_logic(
            args.playbook.as_deref(),
            &args.bot_agent_ids,
            args.reply_language,
        )?),
        Some(url) => {
            let (token, server) = crate::start_callbacks(&args.endpoint).await?;
            let client = IngressClient::new(url, &token)?;
            client.check_reachable().await?;
            run::Backend::Pipeline(Env {
                ingresses: vec![Ingress::new(client, false).await?],
                server,
                stats: Arc::new(Stats::default()),
                budget: args.budget,
                event_size: 0,
                warmup_until: tokio::time::Instant::now(),
            })
        }
    };
    let report = run::run_with(&backend, &cases, args.budget, args.explain).await;
    print!("{}", report.render());
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The cases of the `*.toml` files at `paths` (files, or directories read non-recursively), in
/// path order.
pub fn load(paths: &[PathBuf]) -> Result<Vec<Case>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("reading {}", path.display()))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .collect();
            if found.is_empty() {
                bail!("no *.toml conversation test in {}", path.display());
            }
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    let mut cases = Vec::new();
    for file in files {
        cases.extend(parse_file(&file)?);
    }
    Ok(cases)
}

fn parse_file(path: &Path) -> Result<Vec<Case>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&path.display().to_string(), &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_case_file_parses_with_steps_and_expectations() {
        let text = r#"
[[case]]
name = "demo"
language = "es"
custom = { crm = 7 }

[[case.step]]
customer = "Hola"
expect.message_contains = ["¡Hola!", "ayudarte"]
expect.escalates = false

[[case.step]]
agent_joins = "Maria"

[[case.step]]
completed = true
expect.nothing = true
"#;
        let cases = parse("demo.toml", text).expect("valid");
        assert_eq!(cases.len(), 1);
        let case = &cases[0];
        assert_eq!(case.scenario.language, "es");
        assert_eq!(case.scenario.steps.len(), 3);
        assert_eq!(case.scenario.steps[2], Step::Completed);
        assert_eq!(case.scenario.custom.get("crm"), Some(&serde_json::json!(7)));
        let expect = case.expects[0].as_ref().expect("expectations");
        assert_eq!(expect.message_contains, ["¡Hola!", "ayudarte"]);
        assert_eq!(expect.escalates, Some(false));
        assert!(case.expects[1].is_none());
    }

    #[test]
    fn mistakes_are_reported_with_the_file_case_and_step() {
        let unknown =
            "[[case]]\nname = \"x\"\n[[case.step]]\ncustomer = \"hi\"\nexpect.mesage = \"typo\"\n";
        let err = format!("{:#}", parse("t.toml", unknown).expect_err("typo"));
        assert!(
            err.contains("t.toml: case `x`: step 1: invalid `expect`"),
            "{err}"
        );
        let two = "[[case]]\nname = \"x\"\n[[case.step]]\ncustomer = \"hi\"\nagent = \"hello\"\n";
        let err = format!("{:#}", parse("t.toml", two).expect_err("two kinds"));
        assert!(err.contains("exactly one kind"), "{err}");
        let regex = "[[case]]\nname = \"x\"\n[[case.step]]\ncustomer = \"hi\"\nexpect.message_matches = \"(\"\n";
        let err = format!("{:#}", parse("t.toml", regex).expect_err("bad regex"));
        assert!(err.contains("not a valid regular expression"), "{err}");
        let silent =
            "[[case]]\nname = \"x\"\n[[case.step]]\nagent_joins = \"M\"\nexpect.nothing = true\n";
        assert!(parse("t.toml", silent).is_err());
    }
}
