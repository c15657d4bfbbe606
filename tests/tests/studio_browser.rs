//! The studio (`saltedcx-sim studio`) in a real browser: headless Chromium from Debian's
//! packages, driven over WebDriver. A conversation typed into the page gets its answers, the
//! "why" next to an answer names the matched knowledge entry and the captured detail, an edit
//! of the playbook on disk changes the next answer (and a broken edit shows the validation
//! error), a replay marks the answers that changed, the buttons play an agent's takeover and
//! hand-back, and the exported case passes
//! `saltedcx-sim test`. A screenshot is saved under `target/ci-artifacts/`.
//!
//! Without Chromium (`scripts/install-browser.sh` installs it) the test is skipped with a
//! message, unless `STUDIO_BROWSER_REQUIRED=1` (set by `scripts/test.sh`, which installs it):
//! then a missing browser fails it.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use saltedcx_sim::studio::{StudioOptions, StudioServer};
use testkit::faults::binaries::binary;
use testkit::webdriver::{Browser, Installed};
use testkit::workspace_root;
use worker::logic::playbook::{DEFAULT_PLAYBOOK, Playbook, ReplyLanguage};

const WAIT: Duration = Duration::from_secs(20);
const EDITED_ANSWER: &str = "Parcels arrive within 2 working days.";

/// The built-in playbook's answer of knowledge entry `id`, in its default language.
fn answer_of(id: &str) -> Result<String> {
    let playbook = Playbook::builtin().map_err(anyhow::Error::msg)?;
    playbook
        .knowledge_texts()
        .find(|(entry, _, _)| *entry == id)
        .map(|(_, _, answer)| answer.default_text().to_string())
        .with_context(|| format!("the built-in playbook has no knowledge entry `{id}`"))
}

fn options(playbook: &Path) -> StudioOptions {
    StudioOptions {
        listen: "127.0.0.1:0".parse().expect("a socket address"),
        playbook: Some(playbook.to_path_buf()),
        ingress_url: None,
        token: "studio-test-token".into(),
        bot_agent_ids: Vec::new(),
        reply_language: ReplyLanguage::Customer,
        budget: Duration::from_secs(15),
        generative: None,
    }
}

/// Waits until `selector`'s text contains `wanted`, failing with what it showed.
async fn expect_text(browser: &Browser, selector: &str, wanted: &str) -> Result<String> {
    browser
        .wait_for_text(selector, wanted, WAIT)
        .await
        .map_err(|seen| anyhow::anyhow!("{selector} never showed {wanted:?}; it showed:\n{seen}"))
}

async fn say(browser: &Browser, text: &str) -> Result<()> {
    browser
        .type_into("#message", &format!("{text}\u{E007}"))
        .await?;
    Ok(())
}

#[tokio::test]
async fn the_studio_page_answers_explains_follows_playbook_edits_and_exports_a_passing_case()
-> Result<()> {
    let Some(installed) = Installed::find() else {
        if std::env::var("STUDIO_BROWSER_REQUIRED").as_deref() == Ok("1") {
            bail!("Chromium is not installed; run scripts/install-browser.sh");
        }
        eprintln!(
            "SKIPPED: the studio's browser test needs Chromium and chromedriver (Debian's \
             chromium and chromium-driver packages); run scripts/install-browser.sh"
        );
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let playbook = dir.path().join("playbook.toml");
    std::fs::write(&playbook, DEFAULT_PLAYBOOK)?;
    let studio = StudioServer::start(&options(&playbook)).await?;
    let browser = Browser::start(&installed).await?;
    browser.goto(&studio.url()).await?;
    expect_text(&browser, "#playbook-version", "version 1").await?;

    // A conversation typed into the page gets its answers, each with why next to it.
    let delivery = answer_of("delivery")?;
    say(&browser, "Where is my order?").await?;
    expect_text(&browser, ".exchange:nth-child(1) .talk", &delivery).await?;
    expect_text(
        &browser,
        ".exchange:nth-child(1) .why",
        "knowledge · delivery",
    )
    .await?;
    say(&browser, "My parcel arrived damaged").await?;
    expect_text(
        &browser,
        ".exchange:nth-child(2) .why",
        "ask_detail · damaged",
    )
    .await?;
    say(&browser, "It is 12345678").await?;
    expect_text(&browser, ".exchange:nth-child(3) .bubble.bot", "12345678").await?;
    expect_text(
        &browser,
        ".exchange:nth-child(3) .why",
        "knowledge · damaged",
    )
    .await?;
    expect_text(&browser, ".exchange:nth-child(3) .why", "order = 12345678").await?;

    // An edit of the playbook on disk changes the next answer; a broken one is shown.
    std::fs::write(&playbook, "version = 1\n[matching]\nthreshold = 7\n")?;
    expect_text(&browser, "#playbook-error", "playbook.toml").await?;
    let edited = DEFAULT_PLAYBOOK.replace(&delivery, EDITED_ANSWER);
    ensure!(
        edited != DEFAULT_PLAYBOOK,
        "the delivery answer is not in the default playbook"
    );
    std::fs::write(&playbook, &edited)?;
    expect_text(&browser, "#playbook-version", "version 2").await?;
    say(&browser, "Where is my order?").await?;
    expect_text(&browser, ".exchange:nth-child(4) .talk", EDITED_ANSWER).await?;

    // A replay plays everything again with the new version and marks what changed.
    browser.click("#replay").await?;
    expect_text(&browser, ".exchange:nth-child(1) .talk", EDITED_ANSWER).await?;
    expect_text(&browser, ".exchange:nth-child(1)", "Before the replay").await?;
    let changed = browser
        .execute(
            "return document.querySelectorAll('.exchange.changed').length",
            serde_json::json!([]),
        )
        .await?;
    ensure!(changed == 1, "one answer changed, {changed} are marked");

    // The buttons play what else happens: a human takes over and hands back.
    say(&browser, "I want to talk to a human").await?;
    expect_text(&browser, ".exchange:nth-child(5) .why", "escalate").await?;
    browser.click("button[data-step=agent_joins]").await?;
    expect_text(&browser, ".exchange:nth-child(6)", "Maria (agent) joins").await?;
    browser
        .type_into(
            "#agent-text",
            "Hello, Maria here. I have sent a new parcel.",
        )
        .await?;
    browser.click("button[data-step=agent]").await?;
    expect_text(
        &browser,
        ".exchange:nth-child(7) .why",
        "a human agent has the conversation",
    )
    .await?;
    browser.click("#agent-leaves").await?;
    expect_text(
        &browser,
        ".exchange:nth-child(8) .talk",
        "Has your issue been resolved?",
    )
    .await?;

    let artifacts = workspace_root().join("target/ci-artifacts");
    std::fs::create_dir_all(&artifacts)?;
    // The picture shows the conversation from its start (docs/studio.png is one).
    browser
        .execute(
            "document.querySelector('main').scrollTop = 0",
            serde_json::json!([]),
        )
        .await?;
    let shot = artifacts.join("studio.png");
    std::fs::write(&shot, browser.screenshot().await?)
        .with_context(|| format!("writing {}", shot.display()))?;

    // The export is a case that `saltedcx-sim test` passes against the edited playbook.
    browser.click("#export").await?;
    expect_text(&browser, "#export-panel", "Conversation test").await?;
    let exported = browser
        .execute(
            "return document.getElementById('export-text').value",
            serde_json::json!([]),
        )
        .await?;
    let exported = exported.as_str().unwrap_or_default();
    ensure!(exported.contains("[[case]]"), "not a case: {exported}");
    let case = dir.path().join("case.toml");
    std::fs::write(&case, exported)?;
    let output = tokio::process::Command::new(binary("saltedcx-sim")?)
        .arg("test")
        .arg("--playbook")
        .arg(&playbook)
        .arg(&case)
        .output()
        .await?;
    let report = String::from_utf8_lossy(&output.stdout);
    ensure!(
        output.status.success() && report.contains("1 passed, 0 failed"),
        "the exported case does not pass:\n{report}\n{}\ncase:\n{exported}",
        String::from_utf8_lossy(&output.stderr)
    );
    browser.quit().await?;
    Ok(())
}
