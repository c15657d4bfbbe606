//! Building the playbook and generative logics from the worker's settings, with one clear
//! error per missing or bad setting.

use crate::config::{GenerativeArgs, WorkerArgs};

use super::engagements::Identity;
use super::generative::client::{ChatClient, ClientError};
use super::generative::retrieval::{self, DocumentError, Passage};
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

/// The allowed link hosts, lower case: bare host names (`shop.example.com`), no scheme or path.
fn link_hosts(hosts: &[String]) -> Result<Vec<String>, SetupError> {
    hosts
        .iter()
        .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .map(|h| {
            let valid = h.contains('.')
                && h.split('.').all(|label| {
                    !label.is_empty()
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
            if valid {
                Ok(h)
            } else {
                Err(SetupError::Invalid(
                    "GENERATIVE_LINK_HOSTS",
                    format!("`{h}` (a host name such as shop.example.com)"),
                ))
            }
        })
        .collect()
}

/// `LOGIC=generative`.
pub fn generative_logic(worker: &WorkerArgs) -> Result<GenerativeLogic, SetupError> {
    let parts = generative_parts(&worker.generative)?;
    let (playbook, options) = playbook(worker)?;
    Ok(parts.logic(playbook, options))
}

/// What the generative step needs besides the playbook, checked (the studio builds the step
/// for each version of the playbook it tries from these).
#[derive(Debug, Clone)]
pub struct GenerativeParts {
    pub client: ChatClient,
    pub documents: Vec<Passage>,
    pub settings: Settings,
}

impl GenerativeParts {
    /// The generative step over `playbook`.
    pub fn logic(&self, playbook: Playbook, options: Options) -> GenerativeLogic {
        GenerativeLogic::new(
            playbook,
            options,
            self.client.clone(),
            self.documents.clone(),
            self.settings.clone(),
        )
    }
}

/// The client, documents and settings of `GENERATIVE_*`, with one clear error per missing or
/// bad setting.
pub fn generative_parts(g: &GenerativeArgs) -> Result<GenerativeParts, SetupError> {
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
        redact_pii: g.redact_pii,
        link_hosts: link_hosts(&g.link_hosts)?,
    };
    Ok(GenerativeParts {
        client,
        documents,
        settings,
    })
}
