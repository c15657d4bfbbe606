//! Retrieval for grounding: the passages most relevant to the customer's message, ranked with
//! BM25 over the playbook's knowledge entries and optional document files.
//!
//! Words are normalised like the playbook's matching (case, accents, punctuation), filler words
//! are dropped and every word is cut to its first six letters, a crude stemmer that works
//! the same in every language (`delivered` / `delivery`, `Lieferung` / `Lieferungen`).
//! Documents (`.md`, `.txt`) are split into passages at blank lines, merged up to about
//! [`PASSAGE_CHARS`] characters.
//!
//! Grounding: a passage is only returned when it shares a *distinctive* word with the message,
//! one that occurs in at most half of the passages (so "order" in a shop's knowledge base does
//! not make every entry relevant to every message). When nothing is relevant the model is not
//! asked at all. Knowledge answers that are templates (`I have noted order {order}`) are
//! rendered with the conversation's request details, or left out while a detail is unknown.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::logic::playbook::Playbook;
use crate::logic::playbook::matching::{Filler, tokens};

/// Letters kept of every word.
const STEM: usize = 6;
/// Target size of a document passage (characters).
pub const PASSAGE_CHARS: usize = 800;
/// BM25 parameters (the usual values).
const K1: f64 = 1.2;
const B: f64 = 0.75;
/// A query word counts as distinctive when its inverse document frequency is at least this:
/// BM25's idf of a word found in exactly half of the passages.
const DISTINCTIVE_IDF: f64 = std::f64::consts::LN_2;
/// Question and function words ignored besides the built-in English filler words: they occur in
/// example questions of unrelated entries ("When are you open?", "When will it arrive?").
const QUESTION_WORDS: &[&str] = &[
    "what", "where", "when", "why", "who", "which", "how", "much", "many", "not", "no", "yes",
    "too", "also", "very", "all", "know", "tell", "wo", "wann", "was", "wie", "warum", "welche",
    "donde", "cuando", "que", "como", "cuanto", "ou", "quand", "quoi", "comment", "pourquoi",
    "combien", "kde", "kdy", "co", "jak", "proc", "kolik",
];

/// A piece of reference text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passage {
    /// Where it comes from (`knowledge delivery`, `faq.md`), shown to the model.
    pub source: String,
    pub text: String,
    /// Words that find the passage but are not shown to the model (a knowledge entry's
    /// example questions and keywords: the model only needs the answer).
    pub cues: String,
    /// Whether `{name}` in the text are placeholders for request details (knowledge answers).
    pub template: bool,
}

impl Passage {
    /// A passage of plain reference text.
    pub fn plain(source: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            text: text.into(),
            cues: String::new(),
            template: false,
        }
    }

    /// The text as the model may see it: a template's `{placeholders}` filled from `details`
    /// (`(id, value)`); `None` while one of them is unknown.
    pub fn rendered(&self, details: &[(String, String)]) -> Option<String> {
        if !self.template {
            return Some(self.text.clone());
        }
        let mut out = String::with_capacity(self.text.len());
        let mut rest = self.text.as_str();
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let close = after.find('}')?;
            let name = &after[..close];
            let (_, value) = details.iter().find(|(id, _)| id == name)?;
            out.push_str(value);
            rest = &after[close + 1..];
        }
        out.push_str(rest);
        Some(out)
    }
}

/// A document could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    #[error("cannot read the generative documents at {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the generative documents at {0} hold no .md or .txt file")]
    Empty(String),
}

/// A BM25 index over passages.
#[derive(Debug, Clone)]
pub struct Index {
    passages: Vec<Passage>,
    /// Term frequencies of each passage.
    terms: Vec<HashMap<String, u32>>,
    lengths: Vec<usize>,
    average_length: f64,
    /// In how many passages each term occurs.
    document_frequency: HashMap<String, usize>,
    filler: Filler,
}

impl Index {
    /// Indexes `passages`.
    pub fn new(passages: Vec<Passage>) -> Self {
        let filler = Filler::new(QUESTION_WORDS.iter().copied());
        let mut terms = Vec::with_capacity(passages.len());
        let mut lengths = Vec::with_capacity(passages.len());
        let mut document_frequency: HashMap<String, usize> = HashMap::new();
        for passage in &passages {
            let indexed = format!("{} {} {}", passage.source, passage.cues, passage.text);
            let words = stems(&indexed, &filler);
            lengths.push(words.len());
            let mut counts: HashMap<String, u32> = HashMap::new();
            for word in words {
                *counts.entry(word).or_default() += 1;
            }
            for term in counts.keys() {
                *document_frequency.entry(term.clone()).or_default() += 1;
            }
            terms.push(counts);
        }
        let average_length = if lengths.is_empty() {
            1.0
        } else {
            (lengths.iter().sum::<usize>() as f64 / lengths.len() as f64).max(1.0)
        };
        Self {
            passages,
            terms,
            lengths,
            average_length,
            document_frequency,
            filler,
        }
    }

    /// How many passages the index holds.
    pub fn len(&self) -> usize {
        self.passages.len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.passages.is_empty()
    }

    /// The (at most) `k` passages that score best for `query`, best first; passages sharing
    /// no distinctive word with the query are never returned.
    pub fn search(&self, query: &str, k: usize) -> Vec<&Passage> {
        let mut query_terms = stems(query, &self.filler);
        query_terms.sort();
        query_terms.dedup();
        let n = self.passages.len() as f64;
        let mut scored: Vec<(f64, usize)> = self
            .terms
            .iter()
            .enumerate()
            .filter_map(|(i, counts)| {
                let length_norm = 1.0 - B + B * self.lengths[i] as f64 / self.average_length;
                let mut distinctive = false;
                let score: f64 = query_terms
                    .iter()
                    .filter_map(|term| {
                        let tf = f64::from(*counts.get(term)?);
                        let df = *self.document_frequency.get(term).unwrap_or(&0) as f64;
                        let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
                        distinctive |= idf >= DISTINCTIVE_IDF;
                        Some(idf * tf * (K1 + 1.0) / (tf + K1 * length_norm))
                    })
                    .sum();
                (distinctive && score > 0.0).then_some((score, i))
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        scored
            .into_iter()
            .take(k)
            .map(|(_, i)| &self.passages[i])
            .collect()
    }
}

/// The stemmed meaningful words of `text`.
fn stems(text: &str, filler: &Filler) -> Vec<String> {
    tokens(text)
        .into_iter()
        .filter(|w| !filler.contains(w))
        .map(|w| w.chars().take(STEM).collect())
        .collect()
}

/// One passage per knowledge entry: its answer, found by its questions and keywords too.
pub fn knowledge_passages(playbook: &Playbook) -> Vec<Passage> {
    playbook
        .knowledge_texts()
        .map(|(id, source, answer)| Passage {
            source: format!("knowledge {id}"),
            text: answer.default_text().to_string(),
            cues: source,
            template: true,
        })
        .collect()
}

/// The passages of the `.md` and `.txt` files at `paths` (files, or directories searched
/// recursively), in path order.
pub fn document_passages(paths: &[PathBuf]) -> Result<Vec<Passage>, DocumentError> {
    let mut passages = Vec::new();
    for path in paths {
        let mut files = Vec::new();
        collect_files(path, &mut files)?;
        if files.is_empty() {
            return Err(DocumentError::Empty(path.display().to_string()));
        }
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file).map_err(|source| DocumentError::Read {
                path: file.display().to_string(),
                source,
            })?;
            let name = file.file_name().map_or_else(
                || file.display().to_string(),
                |n| n.to_string_lossy().to_string(),
            );
            passages.extend(
                split(&text)
                    .into_iter()
                    .map(|text| Passage::plain(name.clone(), text)),
            );
        }
    }
    Ok(passages)
}

fn collect_files(path: &Path, files: &mut Vec<PathBuf>) -> Result<(), DocumentError> {
    let read_error = |source| DocumentError::Read {
        path: path.display().to_string(),
        source,
    };
    let metadata = std::fs::metadata(path).map_err(read_error)?;
    if metadata.is_file() {
        files.push(path.to_path_buf());
        return Ok(());
    }
    for entry in std::fs::read_dir(path).map_err(read_error)? {
        let entry = entry.map_err(read_error)?.path();
        let is_text = entry
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("md") || e.eq_ignore_ascii_case("txt"));
        if entry.is_dir() {
            collect_files(&entry, files)?;
        } else if is_text {
            files.push(entry);
        }
    }
    Ok(())
}

/// Paragraphs (split at blank lines) merged into passages of about [`PASSAGE_CHARS`]
/// characters; a longer paragraph is its own passage, cut at [`PASSAGE_CHARS`] * 2.
fn split(text: &str) -> Vec<String> {
    let mut passages = Vec::new();
    let mut current = String::new();
    for paragraph in text.split("\n\n").map(str::trim).filter(|p| !p.is_empty()) {
        if !current.is_empty()
            && current.chars().count() + paragraph.chars().count() > PASSAGE_CHARS
        {
            passages.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push_str("\n\n");
        }
        current.extend(paragraph.chars().take(PASSAGE_CHARS * 2));
    }
    if !current.is_empty() {
        passages.push(current);
    }
    passages
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passage(source: &str, text: &str) -> Passage {
        Passage::plain(source, text)
    }

    #[test]
    fn the_passage_sharing_the_rarest_words_ranks_first() {
        let index = Index::new(vec![
            passage("a", "Orders are delivered within 3-5 working days."),
            passage("b", "Returns are free within 30 days of receipt."),
            passage("c", "Our support is open Monday to Friday."),
        ]);
        let found = index.search("when will my order be delivered?", 2);
        assert_eq!(found[0].source, "a");
        assert!(index.search("parrot", 3).is_empty());
        assert_eq!(index.search("free returns", 1)[0].source, "b");
    }

    #[test]
    fn a_word_most_passages_share_does_not_make_a_passage_relevant() {
        let index = Index::new(vec![
            passage("a", "Your order is delivered within 3-5 working days."),
            passage("b", "Return an order within 30 days."),
            passage("c", "A damaged order is replaced."),
            passage("d", "Our support is open Monday to Friday."),
        ]);
        assert!(
            index
                .search("I want to change the address of my order", 3)
                .is_empty()
        );
        assert!(index.search("When is it open?", 3)[0].source == "d");
        assert!(
            index.search("when?", 3).is_empty(),
            "question words do not count"
        );
    }

    #[test]
    fn templates_are_rendered_with_known_details_or_left_out() {
        let template = Passage {
            source: "knowledge damaged".into(),
            text: "I have noted order {order}.".into(),
            cues: "broken".into(),
            template: true,
        };
        assert_eq!(template.rendered(&[]), None);
        let details = [("order".to_string(), "12345678".to_string())];
        assert_eq!(
            template.rendered(&details).as_deref(),
            Some("I have noted order 12345678.")
        );
        let plain = passage("faq.md", "Use {braces} freely.");
        assert_eq!(plain.rendered(&[]).as_deref(), Some("Use {braces} freely."));
    }

    #[test]
    fn documents_are_split_into_passages_at_blank_lines() {
        let long = "x".repeat(PASSAGE_CHARS);
        let text = format!("# Title\n\nShort one.\n\nShort two.\n\n{long}\n\nLast.");
        let passages = split(&text);
        assert_eq!(passages.len(), 3, "{passages:?}");
        assert_eq!(passages[0], "# Title\n\nShort one.\n\nShort two.");
        assert_eq!(passages[2], "Last.");
    }

    #[test]
    fn document_files_are_read_from_directories_and_a_missing_path_is_named() {
        let dir = tempfile_dir();
        std::fs::write(dir.join("faq.md"), "Shipping to Norway takes a week.").expect("write");
        std::fs::write(dir.join("notes.bin"), "ignored").expect("write");
        let passages = document_passages(std::slice::from_ref(&dir)).expect("readable");
        assert_eq!(
            passages,
            [passage("faq.md", "Shipping to Norway takes a week.")]
        );
        let missing = dir.join("nope");
        let err = document_passages(&[missing]).expect_err("missing");
        assert!(err.to_string().contains("nope"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("yl-docs-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }
}
