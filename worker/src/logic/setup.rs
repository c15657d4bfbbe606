//! Building the playbook and generative logics from the worker's settings, with one clear
//! error per missing or bad setting.

use crate::config::WorkerArgs;

use super::engagements::Identity;
use super::generative::client::{ChatClient, ClientError};
use super::generative::retrieval::{self, DocumentError};
use super::generative::{GenerativeLogic, Settings, prompt};
use super::playbook::{Options, Playbook, PlaybookError, PlaybookLogic};

/// A logic could not be built from the settings.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Playbook(#[from] PlaybookError),
    #[error("LOGIC=generative needs {0}")]
    Missing(&'static str),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Documents(#[from] DocumentError),
    #[error("cannot read GENERATIVE_SYSTEM_PROMPT_FILE {path}: {source}")]
    Prompt {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} must not be {1}")]
    Invalid(&'static str, String),
}

/// The playbook (`PLAYBOOK`, else the built-in one) and its options.
fn playbook(worker: &WorkerArgs) -> Result<(Playbook, Options), SetupError> {
    let playbook = match &worker.playbook {
        Some(path) => Playbook::load(path)?,
        None => Playbook::builtin()?,
    };
    let options = Options {
        identity: Identity::new(&worker.bot_agent_ids),
        reply_language: worker.reply_language,
    };
    Ok((playbook, options))
}

/// `LOGIC=playbook`.
pub fn playbook_logic(worker: &WorkerArgs) -> Result<PlaybookLogic, SetupError> {
    let (playbook, options) = playbook(worker)?;
    Ok(PlaybookLogic::with_options(playbook, options))
}

/// `LOGIC=generative`.
pub fn generative_logic(worker: &WorkerArgs) -> Result<GenerativeLogic, SetupError> {
    let g = &worker.generative;
    let url = g.url.as_deref().ok_or(SetupError::Missing(
        "GENERATIVE_URL (--generative-url), the base URL of an OpenAI-compatible API",
    ))?;
    let model = g
        .model
        .clone()
        .filter(|m| !m.trim().is_empty())
        .ok_or(SetupError::Missing(
            "GENERATIVE_MODEL (--generative-model), the model name",
        ))?;
    if g.max_reply_chars < 20 {
        return Err(SetupError::Invalid(
            "GENERATIVE_MAX_REPLY_CHARS",
            format!("{} (at least 20)", g.max_reply_chars),
        ));
    }
    if g.max_tokens == 0 {
        return Err(SetupError::Invalid("GENERATIVE_MAX_TOKENS", "0".into()));
    }
    let client = ChatClient::new(url, g.api_key.as_ref(), g.api_key_header)?;
    let system_prompt = match (&g.system_prompt, &g.system_prompt_file) {
        (Some(text), _) => text.clone(),
        (None, Some(path)) => {
            std::fs::read_to_string(path).map_err(|source| SetupError::Prompt {
                path: path.display().to_string(),
                source,
            })?
        }
        (None, None) => prompt::DEFAULT_SYSTEM_PROMPT.to_string(),
    };
    let documents = retrieval::document_passages(&g.documents)?;
    let (playbook, options) = playbook(worker)?;
    let settings = Settings {
        model,
        system_prompt,
        answers: g.answers,
        timeout: g.timeout,
        max_tokens: g.max_tokens,
        temperature: g.temperature,
        max_reply_chars: g.max_reply_chars,
        passages: g.passages,
        history: g.history,
        escalation_tool: g.escalation_tool,
    };
    Ok(GenerativeLogic::new(
        playbook, options, client, documents, settings,
    ))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn the_generative_defaults_in_code_are_the_flags_defaults() {
        let cli = crate::config::Cli::try_parse_from(["worker", "--saltedcx-token", "t"])
            .expect("a valid command line");
        let g = &cli.config.worker.generative;
        let s = Settings::with_defaults("m".into());
        assert_eq!(s.answers, g.answers);
        assert_eq!(s.timeout, g.timeout);
        assert_eq!(s.max_tokens, g.max_tokens);
        assert_eq!(s.temperature, g.temperature);
        assert_eq!(s.max_reply_chars, g.max_reply_chars);
        assert_eq!(s.passages, g.passages);
        assert_eq!(s.history, g.history);
        assert_eq!(s.escalation_tool, g.escalation_tool);
        assert_eq!(s.system_prompt, prompt::DEFAULT_SYSTEM_PROMPT);
    }
}
