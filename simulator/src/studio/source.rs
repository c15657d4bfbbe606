//! The playbook the studio tries: the file given with `--playbook`, read again whenever it
//! changes (or the built-in playbook when none is given).
//!
//! Every look at the playbook first compares the file's text with the text last read (the page
//! asks about once a second, and a playbook is a few dozen kB), so an edit saved in any editor
//! counts at once, whatever the file system's timestamp resolution. A text that does not
//! validate leaves the last good version answering and is reported with the validator's
//! file/line/column message, so the page can show it until the file is fixed.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use worker::logic::playbook::{Playbook, PlaybookError};

/// The playbook file and its last good version.
pub struct Source {
    path: Option<PathBuf>,
    loaded: Mutex<Loaded>,
}

struct Loaded {
    /// The file's text when last read (`None`: the built-in playbook, or the file was unreadable).
    text: Option<String>,
    playbook: Arc<Playbook>,
    /// 1 for the first version; +1 for every good new version.
    version: u64,
    /// Why the file as it is now is not in use (invalid, unreadable).
    error: Option<String>,
}

/// What the page shows about the playbook.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The file, or `None` for the built-in playbook.
    pub path: Option<String>,
    /// The version answering now.
    pub version: u64,
    /// Why the file on disk is not the version answering (validation errors), if so.
    pub error: Option<String>,
    /// The languages it speaks, the default first.
    pub languages: Vec<String>,
    /// A one-paragraph description.
    pub summary: String,
}

fn lock(mutex: &Mutex<Loaded>) -> MutexGuard<'_, Loaded> {
    // No code panics while holding the lock; recover rather than cascade if one did.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Source {
    /// Loads the playbook at `path` (the built-in one when `None`); an invalid file at start is
    /// an error, so the studio never starts with nothing to answer.
    pub fn open(path: Option<&Path>) -> Result<Source, PlaybookError> {
        let (text, playbook) = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| PlaybookError::Read {
                    path: path.display().to_string(),
                    source,
                })?;
                let playbook = Playbook::from_toml(&path.display().to_string(), &text)?;
                (Some(text), playbook)
            }
            None => (None, Playbook::builtin()?),
        };
        Ok(Source {
            path: path.map(Path::to_path_buf),
            loaded: Mutex::new(Loaded {
                text,
                playbook: Arc::new(playbook),
                version: 1,
                error: None,
            }),
        })
    }

    /// The version answering now, after taking in any change of the file; with its number.
    pub fn current(&self) -> (Arc<Playbook>, u64) {
        let loaded = self.refresh();
        (loaded.playbook.clone(), loaded.version)
    }

    /// What the page shows, after taking in any change of the file.
    pub fn status(&self) -> Status {
        let loaded = self.refresh();
        Status {
            path: self.path.as_ref().map(|p| p.display().to_string()),
            version: loaded.version,
            error: loaded.error.clone(),
            languages: loaded.playbook.languages(),
            summary: loaded.playbook.summary(),
        }
    }

    /// Reads the file again when it is given; a changed text is validated and, when good,
    /// becomes the next version.
    fn refresh(&self) -> MutexGuard<'_, Loaded> {
        let mut loaded = lock(&self.loaded);
        let Some(path) = &self.path else {
            return loaded;
        };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) => {
                loaded.error = Some(format!("cannot read {}: {err}", path.display()));
                loaded.text = None;
                return loaded;
            }
        };
        if loaded.text.as_deref() == Some(text.as_str()) {
            return loaded;
        }
        match Playbook::from_toml(&path.display().to_string(), &text) {
            Ok(playbook) => {
                loaded.playbook = Arc::new(playbook);
                loaded.version += 1;
                loaded.error = None;
                tracing::info!(version = loaded.version, path = %path.display(), "playbook reloaded");
            }
            Err(err) => loaded.error = Some(err.to_string()),
        }
        loaded.text = Some(text);
        loaded
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use worker::logic::playbook::DEFAULT_PLAYBOOK;

    #[test]
    fn an_edited_file_becomes_the_next_version_and_a_broken_one_is_reported_not_used() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("playbook.toml");
        std::fs::write(&path, DEFAULT_PLAYBOOK).expect("write");
        let source = Source::open(Some(&path)).expect("valid playbook");
        assert_eq!(source.current().1, 1);
        assert_eq!(
            source.current().1,
            1,
            "an unchanged file is not a new version"
        );

        // The edit: another matching threshold, whatever the shipped one is.
        let edited: String = DEFAULT_PLAYBOOK
            .lines()
            .map(|line| {
                if line.starts_with("threshold = ") {
                    "threshold = 0.8"
                } else {
                    line
                }
            })
            .flat_map(|line| [line, "\n"])
            .collect();
        assert_ne!(edited, DEFAULT_PLAYBOOK, "the edit changes the file");
        std::fs::write(&path, edited).expect("write");
        assert_eq!(source.current().1, 2);

        std::fs::write(&path, "version = 1\n[matching]\nthreshold = 7\n").expect("write");
        let status = source.status();
        assert_eq!(status.version, 2, "the last good version keeps answering");
        let error = status.error.expect("the validation error is reported");
        assert!(error.contains("playbook.toml"), "{error}");

        std::fs::write(&path, DEFAULT_PLAYBOOK).expect("write");
        let status = source.status();
        assert_eq!((status.version, status.error), (3, None));
    }

    #[test]
    fn an_invalid_file_at_start_is_an_error_with_its_name() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "version = 2\n").expect("write");
        let err = Source::open(Some(&path)).err().expect("invalid");
        assert!(err.to_string().contains("bad.toml"), "{err}");
    }
}
