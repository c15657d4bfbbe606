//! The settings of every binary (`ingress`, `worker`, `saltedcx-sim`), their environment
//! variables and the README's settings tables agree: every setting is a flag with an environment
//! variable, every variable has a README row naming the binaries that read it, every row names
//! only variables those binaries read, and where a row gives one plain default per variable,
//! it is the binary's default. A new setting without a README row fails here.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context as _, Result};
use clap::CommandFactory;

/// The binaries and their command lines.
fn binaries() -> Vec<(&'static str, clap::Command)> {
    vec![
        ("ingress", ingress::config::Cli::command()),
        ("worker", worker::config::Cli::command()),
        ("saltedcx-sim", saltedcx_sim::config::Cli::command()),
    ]
}

/// Flags that are arguments of one invocation, not settings of a service: they need no
/// environment variable and no README row. (binary, subcommand path, flag)
const INVOCATION_FLAGS: &[(&str, &str, &str)] = &[
    ("ingress", "healthcheck", "url"),
    ("worker", "healthcheck", "url"),
    ("worker", "dead-letters list", "limit"),
    ("worker", "dead-letters list", "json"),
    ("worker", "dead-letters show", "json"),
    ("worker", "dead-letters show", "event"),
    ("worker", "dead-letters purge", "yes"),
    ("worker", "dead-letters purge", "json"),
    ("saltedcx-sim", "send", "json"),
    ("saltedcx-sim", "send", "text"),
    ("saltedcx-sim", "send", "language"),
];

/// One flag of a binary.
#[derive(Debug, Clone)]
struct Flag {
    /// Subcommand path, empty for the top level (e.g. `dead-letters list`).
    path: String,
    long: String,
    env: Option<String>,
    default: Option<String>,
}

/// Every flag with a long name, in every subcommand.
fn flags(command: &clap::Command, path: &str, out: &mut Vec<Flag>) {
    for arg in command.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if matches!(long, "help" | "version") {
            continue;
        }
        // A switch (`--check`) is off unless given; clap fills that default in only later.
        let switch = matches!(arg.get_action(), clap::ArgAction::SetTrue);
        let default = arg
            .get_default_values()
            .first()
            .map(|v| v.to_string_lossy().into_owned())
            .or_else(|| switch.then(|| "false".to_string()));
        out.push(Flag {
            path: path.to_string(),
            long: long.to_string(),
            env: arg.get_env().map(|e| e.to_string_lossy().into_owned()),
            default,
        });
    }
    for sub in command.get_subcommands() {
        let sub_path = format!("{path} {}", sub.get_name()).trim().to_string();
        flags(sub, &sub_path, out);
    }
}

/// One row of a README settings table.
#[derive(Debug, Clone)]
struct Row {
    vars: Vec<String>,
    binaries: BTreeSet<String>,
    defaults: Vec<String>,
    line: String,
}

/// The rows of every table headed `| variable | used by | meaning | default |`.
fn readme_rows(readme: &str) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut in_table = false;
    for line in readme.lines() {
        let trimmed = line.trim();
        if trimmed.replace(' ', "") == "|variable|usedby|meaning|default|" {
            in_table = true;
            continue;
        }
        if !in_table || trimmed.starts_with("|---") {
            continue;
        }
        if !trimmed.starts_with('|') {
            in_table = false;
            continue;
        }
        let cells: Vec<&str> = trimmed
            .trim_matches('|')
            .split('|')
            .map(str::trim)
            .collect();
        if cells.len() != 4 {
            rows.push(Row {
                vars: Vec::new(),
                binaries: BTreeSet::new(),
                defaults: Vec::new(),
                line: line.to_string(),
            });
            continue;
        }
        rows.push(Row {
            vars: code_spans(cells[0]),
            binaries: used_by(cells[1]),
            defaults: split_items(cells[3]),
            line: line.to_string(),
        });
    }
    rows
}

/// The `code` spans of a cell.
fn code_spans(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// `ingress, worker`, `all`, `saltedcx-sim (load)`: the binaries named.
fn used_by(cell: &str) -> BTreeSet<String> {
    let mut without_notes = String::new();
    let mut depth = 0;
    for c in cell.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            c if depth == 0 => without_notes.push(c),
            _ => {}
        }
    }
    without_notes
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .flat_map(|name| match name {
            "all" => vec!["ingress", "worker", "saltedcx-sim"],
            other => vec![other],
        })
        .map(str::to_string)
        .collect()
}

/// The comma-separated items of a default cell, commas inside `code` kept.
fn split_items(cell: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut item = String::new();
    let mut in_code = false;
    for c in cell.chars() {
        if c == '`' {
            in_code = !in_code;
        }
        if c == ',' && !in_code {
            items.push(std::mem::take(&mut item));
        } else {
            item.push(c);
        }
    }
    items.push(item);
    items.into_iter().map(|i| i.trim().to_string()).collect()
}

/// What a README default item says the default is: `Some(Some(v))` a value, `Some(None)` no
/// default, `None` a description that cannot be compared.
fn readme_default(item: &str) -> Option<Option<String>> {
    match item {
        "none" | "required" => return Some(None),
        "off" => return Some(Some("false".into())),
        "1 GiB" => return Some(Some((1u64 << 30).to_string())),
        "1 MiB" => return Some(Some((1u64 << 20).to_string())),
        _ => {}
    }
    let spans = code_spans(item);
    (spans.len() == 1 && item == format!("`{}`", spans[0])).then(|| Some(spans[0].clone()))
}

fn readme() -> Result<String> {
    let path = testkit::workspace_root().join("README.md");
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

#[test]
fn every_flag_has_an_environment_variable_with_a_readme_row_for_its_binary() -> Result<()> {
    let rows = readme_rows(&readme()?);
    let mut problems = Vec::new();
    for (binary, command) in binaries() {
        let mut all = Vec::new();
        flags(&command, "", &mut all);
        for flag in all {
            let invocation = INVOCATION_FLAGS
                .iter()
                .any(|&(b, p, f)| b == binary && p == flag.path && f == flag.long);
            match (&flag.env, invocation) {
                (None, true) => {}
                (Some(env), true) => problems.push(format!(
                    "{binary} {} --{}: listed as an invocation flag but reads {env}",
                    flag.path, flag.long
                )),
                (None, false) => problems.push(format!(
                    "{binary} {} --{}: a setting without an environment variable",
                    flag.path, flag.long
                )),
                (Some(env), false) => {
                    let documented = rows
                        .iter()
                        .any(|row| row.vars.contains(env) && row.binaries.contains(binary));
                    if !documented {
                        problems.push(format!(
                            "{binary} --{} ({env}): no README settings row names {env} as used \
                             by {binary}",
                            flag.long
                        ));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

#[test]
fn every_readme_settings_row_names_only_variables_its_binaries_read_with_their_defaults()
-> Result<()> {
    let rows = readme_rows(&readme()?);
    assert!(
        rows.len() > 20,
        "README settings tables not found: {rows:?}"
    );
    let mut by_binary: BTreeMap<&str, Vec<Flag>> = BTreeMap::new();
    for (binary, command) in binaries() {
        let mut all = Vec::new();
        flags(&command, "", &mut all);
        by_binary.insert(binary, all);
    }
    let mut problems = Vec::new();
    let mut compared = 0;
    for row in &rows {
        if row.vars.is_empty() || row.binaries.is_empty() {
            problems.push(format!("unreadable settings row: {}", row.line));
            continue;
        }
        let comparable = row.defaults.len() == row.vars.len();
        for (i, var) in row.vars.iter().enumerate() {
            for binary in &row.binaries {
                let Some(flags) = by_binary.get(binary.as_str()) else {
                    problems.push(format!("unknown binary `{binary}` in: {}", row.line));
                    continue;
                };
                let matching: Vec<&Flag> = flags
                    .iter()
                    .filter(|f| f.env.as_deref() == Some(var.as_str()))
                    .collect();
                if matching.is_empty() {
                    problems.push(format!("{binary} reads no {var}, yet: {}", row.line));
                    continue;
                }
                let expected = comparable
                    .then(|| readme_default(&row.defaults[i]))
                    .flatten();
                if let Some(expected) = expected {
                    compared += 1;
                    for flag in matching {
                        if flag.default != expected {
                            problems.push(format!(
                                "{binary} {var}: default {:?}, README says {:?}",
                                flag.default, expected
                            ));
                        }
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(compared > 20, "only {compared} defaults compared");
    Ok(())
}

#[test]
fn the_ingress_help_lists_no_worker_only_setting() {
    let help = ingress::config::Cli::command()
        .render_long_help()
        .to_string();
    for worker_only in [
        "--answers-ttl",
        "--answers-max-bytes",
        "ANSWERS_TTL",
        "LOGIC_URL",
    ] {
        assert!(
            !help.contains(worker_only),
            "ingress --help lists {worker_only}"
        );
    }
    assert!(help.contains("--queue-stats-interval") && help.contains("--shutdown-timeout"));
}

#[test]
fn the_readme_table_reader_understands_the_table_format() {
    let rows = readme_rows(
        "| variable | used by | meaning | default |\n|---|---|---|---|\n\
         | `A`, `B` | ingress, saltedcx-sim (load) | x | `5s`, 1 GiB |\n| `C` | all | y | none |\n\ntext",
    );
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].vars, ["A", "B"]);
    assert_eq!(
        rows[0].binaries,
        BTreeSet::from(["ingress".to_string(), "saltedcx-sim".to_string()])
    );
    assert_eq!(rows[0].defaults, ["`5s`", "1 GiB"]);
    assert_eq!(readme_default("1 GiB"), Some(Some("1073741824".into())));
    assert_eq!(readme_default("`5s`"), Some(Some("5s".into())));
    assert_eq!(readme_default("none"), Some(None));
    assert_eq!(readme_default("built-in playbook"), None);
    assert_eq!(rows[1].binaries.len(), 3);
}
