//! `saltedcx-sim test` as a command: a failing expectation makes it exit 1 with a readable
//! difference (the step, the expectation, the answer), and a test file with a mistake is refused
//! with its name.

use std::process::Command;

use anyhow::{Result, ensure};

#[test]
fn a_failing_expectation_exits_1_with_the_step_the_expectation_and_the_answer() -> Result<()> {
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("wrong.toml"),
        r#"
[[case]]
name = "expects the wrong answer"

[[case.step]]
customer = "Where is my parcel?"
expect.message_contains = "Your parcel is on the moon"
expect.escalates = true

[[case]]
name = "expects the right answer"

[[case.step]]
customer = "Where is my parcel?"
expect.message_contains = "Orders are delivered"
"#,
    )?;
    let output = Command::new(env!("CARGO_BIN_EXE_saltedcx-sim"))
        .arg("test")
        .arg(dir.path())
        .env_remove("PLAYBOOK")
        .env_remove("SIM_TEST_INGRESS_URL")
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    ensure!(
        output.status.code() == Some(1),
        "exit {:?}: {stdout}",
        output.status
    );
    for expected in [
        "FAIL  expects the wrong answer",
        "step 1: customer \"Where is my parcel?\"",
        "- expected a message containing \"Your parcel is on the moon\"",
        "- expected an escalation (NEEDS_HELP)",
        "MESSAGE    \"Orders are delivered within 3-5 working days.",
        "ok    expects the right answer (1 check, ",
        "2 conversation tests, 2 answers checked: 1 passed, 1 failed",
    ] {
        ensure!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    Ok(())
}

#[test]
fn a_test_file_with_a_mistake_is_refused_with_its_name() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("typo.toml");
    std::fs::write(
        &file,
        "[[case]]\nname = \"x\"\n[[case.step]]\ncustmer = \"hi\"\n",
    )?;
    let output = Command::new(env!("CARGO_BIN_EXE_saltedcx-sim"))
        .arg("test")
        .arg(&file)
        .output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(output.status.code() == Some(1), "exit {:?}", output.status);
    ensure!(
        stderr.contains("typo.toml: case `x`: step 1: unknown or malformed step"),
        "{stderr}"
    );
    Ok(())
}
