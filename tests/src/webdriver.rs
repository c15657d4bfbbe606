//! A small WebDriver client for browser tests: headless Chromium from Debian's packages
//! (`chromium` and `chromium-driver`, installed by `scripts/install-browser.sh`), driven by
//! `chromedriver` over the W3C WebDriver protocol with the workspace's HTTP client. Nothing is
//! downloaded at run time.
//!
//! Chromium starts headless with a fresh profile (removed on drop) and without background
//! networking, component updates, sync or QUIC, so it talks to nothing but the pages the test
//! opens. `chromedriver` and the browser run in a process group of their own, killed on drop
//! even when the test fails half-way.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::poll::{free_port, wait_for};

/// The key WebDriver names elements by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// Chromium's own switches: headless, and nothing that reaches outside the machine.
const CHROMIUM_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
];

/// What went wrong talking to the browser.
#[derive(Debug, thiserror::Error)]
pub enum WebDriverError {
    #[error("cannot start {what}: {source}")]
    Start {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("chromedriver did not become ready within {0:?}")]
    NotReady(Duration),
    #[error("WebDriver request {what} failed: {source}")]
    Http {
        what: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("WebDriver {what}: {error}: {message}")]
    Command {
        what: String,
        error: String,
        message: String,
    },
    #[error("WebDriver {what}: unexpected answer {answer}")]
    Unexpected { what: String, answer: String },
}

type Result<T> = std::result::Result<T, WebDriverError>;

/// Where Chromium and chromedriver are installed.
#[derive(Debug, Clone)]
pub struct Installed {
    pub chromium: PathBuf,
    pub chromedriver: PathBuf,
}

impl Installed {
    /// Debian's `chromium` and `chromedriver` (or `CHROMIUM_BIN` and `CHROMEDRIVER_BIN`), if
    /// both are there.
    pub fn find() -> Option<Installed> {
        let pick = |variable: &str, candidates: &[&str]| {
            std::env::var_os(variable)
                .map(PathBuf::from)
                .into_iter()
                .chain(candidates.iter().map(PathBuf::from))
                .find(|p| p.is_file())
        };
        // The real binary rather than Debian's wrapper script, which reads /etc/chromium.d.
        let chromium = pick(
            "CHROMIUM_BIN",
            &["/usr/lib/chromium/chromium", "/usr/bin/chromium"],
        )?;
        let chromedriver = pick(
            "CHROMEDRIVER_BIN",
            &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"],
        )?;
        Some(Installed {
            chromium,
            chromedriver,
        })
    }
}

/// A headless Chromium session.
pub struct Browser {
    driver: Child,
    http: reqwest::Client,
    /// `http://127.0.0.1:<port>/session/<id>`.
    session: String,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The group holds chromedriver and the browser it started.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    /// Starts chromedriver on a free loopback port and opens a headless Chromium session.
    pub async fn start(installed: &Installed) -> Result<Browser> {
        let port = free_port().map_err(|e| WebDriverError::Start {
            what: "chromedriver".into(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let driver = spawn_driver(&installed.chromedriver, port)?;
        let profile = tempfile::tempdir().map_err(|source| WebDriverError::Start {
            what: "a browser profile".into(),
            source,
        })?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|source| WebDriverError::Http {
                what: "client".into(),
                source,
            })?;
        let base = format!("http://127.0.0.1:{port}");
        let mut browser = Browser {
            driver,
            http,
            session: String::new(),
            _profile: profile,
        };
        let ready = Duration::from_secs(30);
        let status = wait_for(ready, Duration::from_millis(100), || {
            let request = browser.http.get(format!("{base}/status")).send();
            async move { request.await.ok().filter(|r| r.status().is_success()) }
        })
        .await;
        if status.is_none() {
            return Err(WebDriverError::NotReady(ready));
        }
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| a.to_string()).collect();
        args.push(format!(
            "--user-data-dir={}",
            browser._profile.path().display()
        ));
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": installed.chromium, "args": args},
        }}});
        let created = browser
            .call(
                reqwest::Method::POST,
                &format!("{base}/session"),
                Some(capabilities),
                "new session",
            )
            .await?;
        let id = created["sessionId"]
            .as_str()
            .ok_or_else(|| WebDriverError::Unexpected {
                what: "new session".into(),
                answer: created.to_string(),
            })?;
        browser.session = format!("{base}/session/{id}");
        Ok(browser)
    }

    async fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<Value>,
        what: &str,
    ) -> Result<Value> {
        let http = |source| WebDriverError::Http {
            what: what.to_string(),
            source,
        };
        let response = self
            .http
            .request(method, url)
            .json(&body.unwrap_or_else(|| json!({})))
            .send()
            .await
            .map_err(http)?;
        let status = response.status();
        let answer: Value = response.json().await.map_err(http)?;
        let value = answer.get("value").cloned().unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(WebDriverError::Command {
                what: what.to_string(),
                error: value["error"].as_str().unwrap_or("error").to_string(),
                message: value["message"].as_str().unwrap_or_default().to_string(),
            });
        }
        Ok(value)
    }

    async fn session_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let url = format!("{}{path}", self.session);
        self.call(method, &url, body, path).await
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) -> Result<()> {
        self.session_call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await
            .map(drop)
    }

    /// The first element matching the CSS `selector`.
    pub async fn find(&self, selector: &str) -> Result<String> {
        let found = self
            .session_call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": selector})),
            )
            .await?;
        found[ELEMENT]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| WebDriverError::Unexpected {
                what: format!("find {selector}"),
                answer: found.to_string(),
            })
    }

    /// Types `text` into the element matching `selector` (`\u{E007}` is Enter).
    pub async fn type_into(&self, selector: &str, text: &str) -> Result<()> {
        let element = self.find(selector).await?;
        self.session_call(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            Some(json!({"text": text})),
        )
        .await
        .map(drop)
    }

    /// Clicks the element matching `selector`.
    pub async fn click(&self, selector: &str) -> Result<()> {
        let element = self.find(selector).await?;
        self.session_call(
            reqwest::Method::POST,
            &format!("/element/{element}/click"),
            None,
        )
        .await
        .map(drop)
    }

    /// The visible text of the element matching `selector`.
    pub async fn text(&self, selector: &str) -> Result<String> {
        let element = self.find(selector).await?;
        let text = self
            .session_call(
                reqwest::Method::GET,
                &format!("/element/{element}/text"),
                None,
            )
            .await?;
        Ok(text.as_str().unwrap_or_default().to_string())
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page; its result.
    pub async fn execute(&self, script: &str, args: Value) -> Result<Value> {
        self.session_call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// Waits until the visible text of `selector` contains `wanted`; the text, or (as the
    /// error) what it was at the deadline.
    pub async fn wait_for_text(
        &self,
        selector: &str,
        wanted: &str,
        timeout: Duration,
    ) -> std::result::Result<String, String> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut seen = None;
        loop {
            if let Ok(text) = self.text(selector).await {
                if text.contains(wanted) {
                    return Ok(text);
                }
                seen = Some(text);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(seen.unwrap_or_else(|| format!("(no element matches {selector})")));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A PNG screenshot of the page.
    pub async fn screenshot(&self) -> Result<Vec<u8>> {
        let encoded = self
            .session_call(reqwest::Method::GET, "/screenshot", None)
            .await?;
        let text = encoded.as_str().unwrap_or_default();
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| WebDriverError::Unexpected {
                what: "screenshot".into(),
                answer: e.to_string(),
            })
    }

    /// Ends the session (the browser exits; chromedriver is stopped on drop).
    pub async fn quit(self) -> Result<()> {
        self.session_call(reqwest::Method::DELETE, "", None)
            .await
            .map(drop)
    }
}

/// chromedriver on `port`, loopback only, in a process group of its own.
fn spawn_driver(chromedriver: &Path, port: u16) -> Result<Child> {
    use std::os::unix::process::CommandExt as _;
    Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|source| WebDriverError::Start {
            what: chromedriver.display().to_string(),
            source,
        })
}
