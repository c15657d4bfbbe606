//! Operator commands besides serving: `worker dead-letters list|show|purge` (reading and
//! purging the dead-letter stream) and `worker decide EVENT.json` (the answer the logic would
//! send). Each prints its result on standard output (text, or JSON with `--json`), its error on
//! standard error, and returns the exit code: 0 on success, 1 otherwise. Nothing a sender
//! controls reaches the terminal raw ([`terminal`]).

pub mod dead_letters;
pub mod decide;
pub mod render;
pub mod terminal;

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use serde_json::json;
use shared::config::NatsArgs;

use crate::config::{DeadLettersCommand, WorkerArgs};
use dead_letters::{DeadLetterError, DeadLetters};

/// Runs `worker dead-letters ...` against the NATS of `nats`.
pub async fn dead_letters(nats: &NatsArgs, command: DeadLettersCommand) -> ExitCode {
    let result = async {
        let letters = DeadLetters::open(nats).await?;
        run_dead_letters(&letters, command).await
    }
    .await;
    finish(result)
}

async fn run_dead_letters(
    letters: &DeadLetters,
    command: DeadLettersCommand,
) -> Result<String, CommandError> {
    match command {
        DeadLettersCommand::List { limit, json } => {
            let list = letters.list(limit).await?;
            Ok(if json {
                to_json(&render::list_json(&list))
            } else {
                render::list_text(&list)
            })
        }
        DeadLettersCommand::Show { id, json, event } => {
            let letter = letters.find(&id).await?;
            Ok(if event {
                // Valid UTF-8 (the ingress accepted it as JSON), so this is byte for byte when
                // saved to a file; on a terminal what it would act on is shown escaped.
                let text = String::from_utf8_lossy(&letter.payload);
                if std::io::stdout().is_terminal() {
                    terminal::block(&text).into_owned()
                } else {
                    text.into_owned()
                }
            } else if json {
                to_json(&render::show_json(&letter))
            } else {
                render::show_text(&letter)
            })
        }
        DeadLettersCommand::Purge { yes: false, .. } => {
            let count = letters.count().await?;
            Err(CommandError::NotConfirmed(count.letters))
        }
        DeadLettersCommand::Purge { yes: true, json } => {
            let purged = letters.purge().await?;
            Ok(if json {
                to_json(&json!({ "purged": purged }))
            } else {
                format!("purged {purged} dead letters\n")
            })
        }
    }
}

/// Runs `worker decide FILE` with the logic `settings` select; prints the answer as JSON.
pub async fn decide(settings: &WorkerArgs, file: &Path) -> ExitCode {
    let result = decide::decide(settings, file)
        .await
        .map(|answer| {
            serde_json::to_value(&answer)
                .map(|value| to_json(&value))
                .unwrap_or_default()
        })
        .map_err(CommandError::from);
    finish(result)
}

/// Why an operator command failed.
#[derive(Debug, thiserror::Error)]
enum CommandError {
    #[error(transparent)]
    DeadLetters(#[from] DeadLetterError),
    #[error(transparent)]
    Decide(#[from] decide::DecideError),
    #[error(
        "{0} dead letters would be deleted; run `worker dead-letters purge --yes` to delete them"
    )]
    NotConfirmed(u64),
}

/// Prints the output or the error and turns it into the exit code.
fn finish(result: Result<String, CommandError>) -> ExitCode {
    match result {
        Ok(output) => {
            print!("{output}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Pretty JSON, with what serde_json leaves raw in strings (DEL, C1 controls, bidirectional
/// overrides) escaped: the same JSON, safe on a terminal.
fn to_json(value: &serde_json::Value) -> String {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    let mut text = terminal::json(&text).into_owned();
    text.push('\n');
    text
}
