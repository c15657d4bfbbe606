//! The generative mode: the playbook with the worker's generative step in-process, against an
//! OpenAI-compatible server that needs no key (a local model server). The studio takes no API
//! key, so a keyed provider is tried through a pipeline whose worker holds the key. Every other
//! setting of the step is the worker's default.
//!
//! The step is built for each playbook version (its retrieval index covers the version's
//! knowledge entries) the first time that version answers.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result};
use worker::config::GenerativeArgs;
use worker::logic::generative::GenerativeLogic;
use worker::logic::playbook::{Options, Playbook};
use worker::logic::setup::{GenerativeParts, generative_parts};

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
    parts: GenerativeParts,
    built: Mutex<Option<(u64, Arc<GenerativeLogic>)>>,
}

impl Generative {
    /// Checks the settings (as the worker checks its own) and reads the documents.
    pub fn new(options: &GenerativeOptions) -> Result<Generative> {
        let args = GenerativeArgs {
            url: Some(options.url.clone()),
            model: Some(options.model.clone()),
            api_key: None,
            documents: options.documents.clone(),
            ..shared::config::flag_defaults()?
        };
        let parts = generative_parts(&args).context("the studio's generative mode")?;
        Ok(Generative {
            url: options.url.clone(),
            parts,
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
                let logic = Arc::new(self.parts.logic(playbook.clone(), options.clone()));
                *built = Some((version, logic.clone()));
                logic
            }
        }
    }
}
