//! Selecting the conversation logic from the configuration, and the `check-playbook` command.

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use clap::Parser;
use worker::config::{Cli, LogicKind};

fn config(args: &[&str]) -> worker::Config {
    let mut argv = vec!["worker", "--saltedcx-token", "secret"];
    argv.extend_from_slice(args);
    Cli::try_parse_from(argv).expect("valid arguments").config
}

fn start_error(config: &worker::Config) -> String {
    match worker::logic_from_config(config) {
        Ok(_) => panic!("expected a start-up error"),
        Err(err) => err.to_string(),
    }
}

/// A temporary playbook file, removed on drop.
struct TempPlaybook(std::path::PathBuf);

impl TempPlaybook {
    fn as_str(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
}

impl Drop for TempPlaybook {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn playbook_file(text: &str) -> TempPlaybook {
    let path = std::env::temp_dir().join(format!("playbook-{}.toml", uuid::Uuid::new_v4()));
    let mut file = std::fs::File::create(&path).expect("create temp file");
    file.write_all(text.as_bytes()).expect("write temp file");
    TempPlaybook(path)
}

#[test]
fn the_playbook_is_the_default_logic_and_the_built_in_one_loads() {
    let config = config(&[]);
    assert_eq!(config.worker.logic, LogicKind::Playbook);
    assert!(config.worker.playbook.is_none());
    assert!(worker::logic_from_config(&config).is_ok());
    let embedded = worker::Config::new(
        "nats://127.0.0.1:4222",
        "t",
        "http://x",
        "127.0.0.1:0".parse().expect("addr"),
    )
    .expect("config");
    assert_eq!(embedded.worker.logic, LogicKind::Playbook);
    assert_eq!(embedded.worker.logic_timeout, Duration::from_secs(2));
}

#[test]
fn an_invalid_playbook_file_stops_start_up_with_its_line_and_problem() {
    let file = playbook_file("version = 1\n[matching]\nthreshold = 3\n");
    let error = start_error(&config(&["--playbook", file.as_str()]));
    assert!(
        error.contains(&format!("{}:3:13", file.as_str())),
        "{error}"
    );
    assert!(
        error.contains("`matching.threshold` must be greater than 0"),
        "{error}"
    );
}

#[test]
fn a_missing_playbook_file_stops_start_up_naming_the_path() {
    let error = start_error(&config(&["--playbook", "/nonexistent/playbook.toml"]));
    assert!(
        error.contains("cannot read playbook /nonexistent/playbook.toml"),
        "{error}"
    );
}

#[test]
fn the_http_logic_needs_a_valid_logic_url() {
    let error = start_error(&config(&["--logic", "http"]));
    assert!(error.contains("LOGIC_URL"), "{error}");
    let error = start_error(&config(&["--logic", "http", "--logic-url", "ftp://x"]));
    assert!(error.contains("not a valid http(s) URL"), "{error}");
    let config = config(&[
        "--logic",
        "http",
        "--logic-url",
        "http://127.0.0.1:9/logic",
        "--logic-timeout",
        "750ms",
    ]);
    assert_eq!(config.worker.logic_timeout, Duration::from_millis(750));
    assert!(worker::logic_from_config(&config).is_ok());
}

fn check_playbook(path: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_worker"))
        .args(["check-playbook", path])
        .env_remove("SALTEDCX_TOKEN")
        .output()
        .expect("the worker binary runs")
}

#[test]
fn check_playbook_accepts_the_default_playbook_with_a_summary_and_exit_code_0() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/playbooks/default.toml");
    let output = check_playbook(path);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("valid playbook: default language en;"),
        "{stdout}"
    );
}

#[test]
fn check_playbook_rejects_an_invalid_file_with_exit_code_1_and_the_errors() {
    let file =
        playbook_file("version = 1\n[[knowledge]]\nid = \"a\"\nanswer = \"\"\nkeyword = [\"x\"]\n");
    let output = check_playbook(file.as_str());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:5:1: unknown field `keyword`", file.as_str())),
        "{stderr}"
    );
}

/// `text` without its leading comment block.
fn without_header(text: &str) -> &str {
    let start = text
        .lines()
        .take_while(|l| l.starts_with('#') || l.trim().is_empty())
        .map(|l| l.len() + 1)
        .sum::<usize>();
    &text[start.min(text.len())..]
}

#[test]
fn the_kubernetes_playbook_is_a_valid_copy_of_the_built_in_one() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/k8s/base/playbook.toml"
    );
    let k8s = std::fs::read_to_string(path).expect("deploy/k8s/base/playbook.toml");
    worker::logic::playbook::Playbook::from_toml(path, &k8s).expect("valid playbook");
    assert_eq!(
        without_header(&k8s),
        without_header(worker::logic::playbook::DEFAULT_PLAYBOOK),
        "deploy/k8s/base/playbook.toml differs from worker/playbooks/default.toml"
    );
}

#[test]
fn the_start_up_description_names_the_logic_and_the_playbook_without_credentials() {
    let builtin = worker::load_logic(&config(&[]).worker).expect("the built-in playbook");
    assert!(
        builtin.description.starts_with("the built-in playbook")
            && builtin.description.contains("knowledge entries"),
        "{}",
        builtin.description
    );
    let file = playbook_file(worker::logic::playbook::DEFAULT_PLAYBOOK);
    let yours = worker::load_logic(&config(&["--playbook", file.as_str()]).worker)
        .expect("a valid playbook");
    assert!(
        yours
            .description
            .starts_with(&format!("playbook {}: ", file.as_str())),
        "{}",
        yours.description
    );
    let delegate = worker::load_logic(
        &config(&[
            "--logic",
            "http",
            "--logic-url",
            "http://user:s3cret@logic.local/decide",
        ])
        .worker,
    )
    .expect("the delegate");
    assert!(
        delegate.description.contains("logic.local") && !delegate.description.contains("s3cret"),
        "{}",
        delegate.description
    );
}
