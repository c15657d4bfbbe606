//! Figures the README and the docs state about the tree itself, checked against the tree, so that
//! they change together with it instead of going stale.

use anyhow::{Context as _, Result, ensure};

/// `path` (below the workspace root) with every run of whitespace made one space, so that a
/// sentence matches wherever its lines break.
fn text(path: &str) -> Result<String> {
    let path = testkit::workspace_root().join(path);
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    Ok(text.split_whitespace().collect::<Vec<_>>().join(" "))
}

#[test]
fn the_readme_and_the_logic_guide_give_the_number_of_shipped_conversation_tests() -> Result<()> {
    let dir = testkit::workspace_root().join("tests/conversations");
    let cases = saltedcx_sim::cases::load(&[dir])?.len();
    for (file, sentence) in [
        (
            "README.md",
            format!("the default playbook ships with {cases} of them"),
        ),
        (
            "docs/logic.md",
            format!("The default playbook ships with {cases} cases"),
        ),
    ] {
        ensure!(
            text(file)?.contains(&sentence),
            "{file} should say \"{sentence}\" (tests/conversations/ holds {cases} cases)"
        );
    }
    Ok(())
}
