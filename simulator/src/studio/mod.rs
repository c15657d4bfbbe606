//! `saltedcx-sim studio`: a page to try a playbook as its customers meet it.
//!
//! The designer chats as the customer (in any language of the playbook) and plays whatever else
//! happens in a conversation (agents joining, writing, leaving; files, menu steps, reviews; the
//! customer going quiet), with every event built by the simulator's own conversation context,
//! exactly as `demo`, `load` and `test` build them. Next to each answer the page shows why the
//! playbook answered so ([`explain`]). The playbook file is read again whenever it changes
//! ([`source`]); the whole conversation can be replayed against the new version, with the
//! answers that changed marked ([`session`]), and exported as a conversation test ([`export`]).
//! Answers come from the playbook in-process, from the playbook with the generative step and a
//! model server that needs no key ([`generative`]), or from a running pipeline ([`pipeline`]):
//! ingress, NATS, a worker, and the callback to the studio's own address.
//!
//! One conversation at a time, kept in memory: it is a development tool for one designer. It
//! listens on loopback unless told otherwise ([`command`] says which) and holds no secret
//! beyond the local pipeline's shared token (no model API key).

pub mod explain;
pub mod export;
pub mod generative;
pub mod http;
pub mod pipeline;
pub mod session;
pub mod source;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use serde_json::{Value, json};
use shared::server::Limits;
use tokio::net::TcpListener;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use worker::logic::engagements::Identity;
use worker::logic::playbook::{Options, ReplyLanguage};

use super::client::IngressClient;
use super::config::StudioArgs;
use super::conversation::ACCOUNT_ID;
use super::scenario::Step;
use super::server::CallbackApi;
use generative::{Generative, GenerativeOptions};
use pipeline::Pipeline;
use session::{Backend, Mode, Session};
use source::Source;

/// How the studio is set up (the command line's settings).
#[derive(Debug, Clone)]
pub struct StudioOptions {
    /// The page's address (port 0: any free port).
    pub listen: SocketAddr,
    /// The playbook file (the built-in playbook when `None`).
    pub playbook: Option<PathBuf>,
    /// A running pipeline's event endpoint, for the pipeline mode.
    pub ingress_url: Option<String>,
    /// The token shared with that pipeline.
    pub token: String,
    /// As the worker's `BOT_AGENT_IDS` and `REPLY_LANGUAGE`.
    pub bot_agent_ids: Vec<String>,
    pub reply_language: ReplyLanguage,
    /// `expires - time` of every event.
    pub budget: Duration,
    /// A model server for the generative mode.
    pub generative: Option<GenerativeOptions>,
}

impl StudioOptions {
    /// The options of `saltedcx-sim studio`.
    pub fn from_args(args: &StudioArgs) -> StudioOptions {
        StudioOptions {
            listen: args.listen,
            playbook: args.playbook.clone(),
            ingress_url: args.ingress_url.clone(),
            token: args
                .token
                .split(',')
                .next()
                .unwrap_or_default()
                .trim()
                .to_string(),
            bot_agent_ids: args.bot_agent_ids.clone(),
            reply_language: args.reply_language,
            budget: args.budget,
            generative: args
                .generative_url
                .clone()
                .zip(args.generative_model.clone())
                .map(|(url, model)| GenerativeOptions {
                    url,
                    model,
                    documents: args.generative_documents.clone(),
                }),
        }
    }
}

/// The studio's state: the playbook, the pipeline (if any) and the conversation.
pub struct Studio {
    source: Source,
    options: Options,
    pipeline: Option<Pipeline>,
    generative: Option<Generative>,
    budget: Duration,
    current: Mutex<Current>,
}

struct Current {
    session: Session,
    mode: Mode,
}

impl Studio {
    /// Plays `work` with the current playbook version and the conversation.
    async fn with_backend(&self, work: impl AsyncFnOnce(&mut Session, &Backend<'_>)) {
        let (playbook, version) = self.source.current();
        let generative = self
            .generative
            .as_ref()
            .map(|g| g.logic(&playbook, &self.options, version));
        let mut current = self.current.lock().await;
        let backend = Backend {
            mode: current.mode,
            playbook: &playbook,
            version,
            options: &self.options,
            generative: generative.as_deref(),
            pipeline: self.pipeline.as_ref(),
            budget: self.budget,
        };
        let pid = current.session.pid().to_string();
        work(&mut current.session, &backend).await;
        if current.session.pid() != pid {
            self.forget(&pid);
        }
    }

    /// The callbacks of a conversation the studio no longer plays are not waited for.
    fn forget(&self, pid: &str) {
        if let Some(pipeline) = &self.pipeline {
            pipeline.forget(pid);
        }
    }

    /// Plays `step` in the current conversation.
    pub async fn play(&self, step: Step) {
        self.with_backend(async |session, backend| session.play(step, backend).await)
            .await;
    }

    /// Plays the conversation again with the current playbook.
    pub async fn replay(&self) {
        self.with_backend(async |session, backend| session.replay(backend).await)
            .await;
    }

    /// Starts a new conversation of a customer writing in `language`.
    pub async fn new_conversation(&self, language: &str) {
        let mut current = self.current.lock().await;
        self.forget(current.session.pid());
        current.session = Session::new(language);
    }

    /// Answers from now on come from `mode`.
    pub async fn set_mode(&self, mode: Mode) {
        self.current.lock().await.mode = mode;
    }

    /// The conversation as a conversation-test case named `name`.
    pub async fn export(&self, name: &str) -> String {
        export::case(&self.current.lock().await.session, name)
    }

    /// The conversation and its answers, for the page.
    pub async fn conversation_json(&self) -> Value {
        let current = self.current.lock().await;
        let mut modes = vec![Mode::InProcess];
        if self.generative.is_some() {
            modes.push(Mode::Generative);
        }
        if self.pipeline.is_some() {
            modes.push(Mode::Pipeline);
        }
        json!({
            "pid": current.session.pid(),
            "language": current.session.scenario.language,
            "mode": current.mode,
            "modes": modes,
            "pipeline_url": self.pipeline.as_ref().map(Pipeline::url),
            "model_url": self.generative.as_ref().map(Generative::url),
            "budget_ms": self.budget.as_secs_f64() * 1000.0,
            "exchanges": current.session.exchanges,
        })
    }
}

/// A running studio; stops on drop.
pub struct StudioServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for StudioServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl StudioServer {
    /// Loads the playbook, checks the pipeline (when one is given) and serves the page and the
    /// callback API on `options.listen`.
    pub async fn start(options: &StudioOptions) -> Result<StudioServer> {
        let source = Source::open(options.playbook.as_deref())?;
        let callbacks = CallbackApi::new(&options.token, Some(ACCOUNT_ID), false);
        let pipeline = match &options.ingress_url {
            Some(url) => {
                let client = IngressClient::new(url, &options.token)?;
                client.check_reachable().await?;
                Some(Pipeline::new(client, callbacks.clone(), options.budget))
            }
            None => None,
        };
        let generative = options
            .generative
            .as_ref()
            .map(Generative::new)
            .transpose()?;
        let listener = TcpListener::bind(options.listen)
            .await
            .with_context(|| format!("cannot listen on {}", options.listen))?;
        let addr = listener
            .local_addr()
            .context("reading the studio's address")?;
        let language = source
            .status()
            .languages
            .first()
            .cloned()
            .unwrap_or_else(|| "en".into());
        let studio = Arc::new(Studio {
            source,
            options: Options {
                identity: Identity::new(&options.bot_agent_ids),
                reply_language: options.reply_language,
            },
            pipeline,
            generative,
            budget: options.budget,
            current: Mutex::new(Current {
                session: Session::new(&language),
                mode: Mode::InProcess,
            }),
        });
        let app = http::router(studio).merge(callbacks.router());
        // The project's hardened HTTP server (head timeouts, connection caps), as every listener.
        let limits = Limits {
            listener: "studio",
            ..Limits::admin()
        };
        let task = tokio::spawn(shared::server::serve(
            listener,
            app,
            limits,
            std::future::pending(),
        ));
        Ok(StudioServer { addr, task })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The page's URL.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

/// `saltedcx-sim studio`: serves until Ctrl-C or SIGTERM.
pub async fn command(args: &StudioArgs) -> Result<()> {
    let options = StudioOptions::from_args(args);
    let server = StudioServer::start(&options).await?;
    println!("saltedcx-sim studio: open {}", server.url());
    if server.addr().ip().is_loopback() {
        println!(
            "  listening on {} (loopback only: other machines cannot reach it)",
            server.addr()
        );
    } else {
        println!(
            "  listening on {}: reachable from other machines, with no authentication; use a \
             loopback address unless you mean to share it",
            server.addr()
        );
    }
    match &options.playbook {
        Some(path) => println!(
            "  playbook {} (read again whenever it changes)",
            path.display()
        ),
        None => println!("  the built-in playbook (give --playbook FILE to try your own)"),
    }
    if let Some(generative) = &options.generative {
        println!(
            "  generative mode: model {} at {} (no key is sent)",
            generative.model, generative.url
        );
    }
    if let Some(url) = &options.ingress_url {
        println!(
            "  pipeline mode: events go to {url}; the workers answer to \
             SALTEDCX_API_URL=http://{}",
            server.addr()
        );
    }
    println!("  Ctrl-C stops.");
    shared::shutdown::signal().await;
    Ok(())
}
