//! The generative mode: the playbook with the worker's generative step in-process, against an
//! OpenAI-compatible server that needs no key (a local model server). The studio takes no API
//! key, so a keyed provider is tried through a pipeline whose worker holds the key.
//!
//! The step is built for each playbook version (its retrieval index covers the version's
//! knowledge entries) the first time that version answers.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result};
use worker::logic::generative::client::{ChatClient, KeyHeader};
use worker::logic::generative::retrieval::{self, Passage};
use worker::logic::generative::{GenerativeLogic, Settings};
use worker::logic::playbook::{Options, Playbook};

/// Where the model is.
#[derive(Debug, Clone)]
pub struct GenerativeOptions {
    /// The server's base URL (up to before `/chat/completions`).
    pub url: String,
    pub model: String,
    /// Reference documents besides the knowledge entries.
    pub documents: Vec<PathBuf>,
}

/// The generative step of the current playbook version.
pub struct Generative {
    url: String,
    client: ChatClient,
    documents: Vec<Passage>,
    settings: Settings,
    built: Mutex<Option<(u64, Arc<GenerativeLogic>)>>,
}

impl Generative {
    /// Checks the settings and reads the documents.
    pub fn new(options: &GenerativeOptions) -> Result<Generative> {
        let client = ChatClient::new(&options.url, None, KeyHeader::Authorization)
            .context("the generative mode's --generative-url")?;
        let documents = retrieval::document_passages(&options.documents)?;
        Ok(Generative {
            url: options.url.clone(),
            client,
            documents,
            settings: Settings::with_defaults(options.model.clone()),
            built: Mutex::new(None),
        })
    }

    /// The model server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The step for `playbook` (version `version`).
    pub fn logic(
        &self,
        playbook: &Playbook,
        options: &Options,
        version: u64,
    ) -> Arc<GenerativeLogic> {
        let mut built = self.built.lock().unwrap_or_else(|p| p.into_inner());
        match &*built {
            Some((built_version, logic)) if *built_version == version => logic.clone(),
            _ => {
                let logic = Arc::new(GenerativeLogic::new(
                    playbook.clone(),
                    options.clone(),
                    self.client.clone(),
                    self.documents.clone(),
                    self.settings.clone(),
                ));
                *built = Some((version, logic.clone()));
                logic
            }
        }
    }
}
