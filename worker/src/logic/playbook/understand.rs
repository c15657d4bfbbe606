//! What a customer message asks, with a calibrated confidence: the playbook's classifier
//! ranks the knowledge entries, intents and the "not known" class for the whole message and
//! for each request in it, and the cues of the language packs say what else the message
//! carries (a request for a human, tone, a presence check).
//!
//! - **Confidence.** The classifier ([`Classifier`]) gives every class a probability. The best
//!   class answers when it is a knowledge entry or an intent with at least
//!   `matching.threshold`; otherwise, when two knowledge entries share the probability (the
//!   second with at least `matching.clarify`), the bot asks which one is meant; otherwise the
//!   message takes the not-known path. A message made mostly of words no example contains
//!   gets low probabilities everywhere.
//! - **Several requests.** A message is cut into requests at clause marks and request words
//!   ("and also", "y también", "a ještě"); when two or more of them are each confidently a
//!   different knowledge entry, each is answered (up to `matching.max_requests`).
//! - **Refusals.** The words a refusal covers ("I don't want a refund") are left out before
//!   classifying, so what the customer does not want is not answered.

use std::ops::Range;

use super::matching::classifier::{Classifier, Coverage};
use super::matching::{Negations, PhraseSet, Words};

/// Candidates kept for explanations.
pub const RANKED: usize = 5;
/// A request inside a message needs at least this many meaningful words to count alone.
const REQUEST_WORDS: usize = 2;
/// A request inside a message needs this much more confidence than a whole message: short
/// pieces get sharper probabilities than their evidence deserves.
const REQUEST_MARGIN: f32 = 0.2;
/// Each of several requests needs at least this confidence in the whole message.
const WHOLE_SUPPORT: f32 = 0.05;
/// A piece whose best class is a knowledge entry at least this sure keeps the small talk of
/// other pieces from deciding the message.
const LEANING: f32 = 0.25;
/// A piece made of a negation and filler words ("no thanks") declines a piece of at most this
/// many meaningful words right before it ("refund?").
const DECLINE_WORDS: usize = 3;
/// Filler words are left out of what the classifier reads when at least this many other
/// words remain.
pub const CONTENT_WORDS: usize = 2;

/// What the classifier can say a text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A knowledge entry (index into `Playbook::knowledge`).
    Knowledge(usize),
    /// An intent (index into `Playbook::intents`).
    Intent(usize),
    /// Something the playbook cannot answer.
    NotKnown,
}

/// The classifier and its thresholds.
#[derive(Debug, Clone)]
pub struct Understanding {
    pub classifier: Classifier,
    /// The class of each classifier output (same index).
    pub classes: Vec<Class>,
    pub threshold: f32,
    pub clarify: f32,
    pub max_requests: usize,
    /// How many examples it learned from.
    pub examples: usize,
}

/// A knowledge entry (index) and its confidence.
type Scored = (usize, f32);

/// The best classes for a text, best first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ranked {
    items: [(Class, f32); RANKED],
    len: usize,
    /// How much of the text the examples covered.
    pub coverage: Coverage,
}

impl Ranked {
    fn empty() -> Self {
        Self {
            items: [(Class::NotKnown, 0.0); RANKED],
            len: 0,
            coverage: Coverage {
                known: 0.0,
                any: false,
            },
        }
    }

    /// The candidates, best first.
    pub fn items(&self) -> &[(Class, f32)] {
        &self.items[..self.len]
    }

    /// The best candidate.
    pub fn top(&self) -> Option<(Class, f32)> {
        self.items().first().copied()
    }

    /// The confidence of `class` (0 when it is not among the best).
    pub fn confidence(&self, class: Class) -> f32 {
        self.items()
            .iter()
            .find(|(c, _)| *c == class)
            .map_or(0.0, |(_, p)| *p)
    }

    /// The best two knowledge entries with their confidence.
    fn knowledge(&self) -> (Option<Scored>, Option<Scored>) {
        let mut found = self.items().iter().filter_map(|(c, p)| match c {
            Class::Knowledge(i) => Some((*i, *p)),
            _ => None,
        });
        (found.next(), found.next())
    }
}

impl Understanding {
    /// Ranks the classes for `words` (normalised words of the text); `scratch` holds the
    /// probabilities between calls.
    pub fn rank<S: AsRef<str>>(&self, words: &[S], scratch: &mut Vec<f32>) -> Ranked {
        let mut ranked = Ranked::empty();
        ranked.coverage = self.classifier.probabilities(words, scratch);
        if !ranked.coverage.any {
            return ranked;
        }
        for (index, &p) in scratch.iter().enumerate() {
            let Some(&class) = self.classes.get(index) else {
                continue;
            };
            // Insertion into the small sorted array.
            let mut at = ranked.len;
            while at > 0 && ranked.items[at - 1].1 < p {
                at -= 1;
            }
            if at >= RANKED {
                continue;
            }
            let end = ranked.len.min(RANKED - 1);
            ranked.items.copy_within(at..end, at + 1);
            ranked.items[at] = (class, p);
            ranked.len = (ranked.len + 1).min(RANKED);
        }
        ranked
    }

    /// What a whole text asks for, from its ranking.
    pub fn decide(&self, ranked: &Ranked) -> Verdict {
        let Some((top, p)) = ranked.top() else {
            return Verdict::Nothing;
        };
        match top {
            Class::Knowledge(i) if p >= self.threshold => return Verdict::Knowledge(i, p),
            Class::Intent(i) if p >= self.threshold => return Verdict::Intent(i, p),
            _ => {}
        }
        if let (Some((first, p1)), Some((second, p2))) = ranked.knowledge()
            && self.clarify > 0.0
            && p2 >= self.clarify
            && p1 + p2 >= self.threshold
            && matches!(top, Class::Knowledge(_))
        {
            return Verdict::Clarify(first, second, p1, p2);
        }
        Verdict::NotKnown(p)
    }
}

/// What a text asks for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// No words at all.
    Nothing,
    Knowledge(usize, f32),
    Intent(usize, f32),
    /// Two close knowledge entries: ask which one (first, second, their confidences).
    Clarify(usize, usize, f32, f32),
    /// Nothing the playbook knows (the best confidence).
    NotKnown(f32),
}

/// The cues read in every message, from the language packs.
#[derive(Debug, Clone, Default)]
pub struct Cues {
    /// Checking whether anybody is there.
    pub presence: PhraseSet,
    pub sarcasm: PhraseSet,
    pub frustration: PhraseSet,
    pub insults: PhraseSet,
    /// Words starting another request in the same message.
    pub clause_words: PhraseSet,
    /// Questions about what the bot is ("are you ...?").
    pub about_bot: PhraseSet,
}

/// The tone of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tone {
    pub sarcasm: bool,
    pub frustration: bool,
    pub insult: bool,
    /// Written in capitals, or with `!!!`.
    pub shouting: bool,
}

impl Tone {
    /// Whether the customer is unhappy in any way.
    pub fn upset(&self) -> bool {
        self.sarcasm || self.frustration || self.insult || self.shouting
    }

    /// The cues found, for explanations.
    pub fn labels(&self) -> Vec<&'static str> {
        [
            (self.sarcasm, "sarcasm"),
            (self.frustration, "frustration"),
            (self.insult, "insult"),
            (self.shouting, "shouting"),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, label)| label)
        .collect()
    }
}

/// How many words beyond its own a cue phrase may be spread over within a clause.
const CUE_SLACK: usize = 2;

impl Cues {
    /// The tone of `raw` (as written) and its words, and where its cues occur (their words say
    /// how, not what, the customer asks).
    fn read(&self, raw: &str, text: &Words, negations: &Negations) -> (Tone, Vec<Range<usize>>) {
        let none = Negations::none();
        let mut marks = Vec::new();
        let mut found = |set: &PhraseSet, negations: &Negations| {
            let mut any = false;
            for phrase in set.candidates(text) {
                for o in phrase.occurrences(text, Some(phrase.len() + CUE_SLACK), negations) {
                    any |= !o.negated;
                    marks.push(o.start..o.end + 1);
                }
            }
            any
        };
        let tone = Tone {
            sarcasm: found(&self.sarcasm, &none),
            frustration: found(&self.frustration, negations),
            insult: found(&self.insults, &none),
            shouting: shouting(raw),
        };
        (tone, marks)
    }

    /// Where the first question about what the bot is starts in `text`, if any.
    pub fn about_bot_before(&self, text: &Words) -> Option<usize> {
        let none = Negations::none();
        self.about_bot
            .candidates(text)
            .flat_map(|p| p.occurrences(text, Some(p.len()), &none))
            .map(|o| o.start)
            .min()
    }

    /// Whether one of `phrases` occurs (not negated) in one clause of `text`.
    pub fn any(phrases: &PhraseSet, text: &Words, negations: &Negations) -> bool {
        phrases.candidates(text).any(|p| {
            p.occurrences(text, Some(p.len() + CUE_SLACK), negations)
                .iter()
                .any(|o| !o.negated)
        })
    }
}

/// Whether `raw` is shouted: most of at least eight letters in capitals, or `!!!`, `???`.
fn shouting(raw: &str) -> bool {
    if raw.contains("!!!") || raw.contains("???") || raw.contains("?!") {
        return true;
    }
    let (mut letters, mut upper) = (0usize, 0usize);
    for c in raw.chars().filter(|c| c.is_alphabetic()) {
        letters += 1;
        if c.is_uppercase() {
            upper += 1;
        }
    }
    letters >= 8 && upper * 10 >= letters * 8
}

/// One request of a message: its words (refused ones left out) and what it asks.
#[derive(Debug, Clone)]
pub struct Request {
    /// Its words in the message.
    pub range: std::ops::Range<usize>,
    pub ranked: Ranked,
    pub verdict: Verdict,
    /// How many of its words are not filler words.
    pub meaningful: usize,
}

/// What a message asks, read once per message.
#[derive(Debug, Clone)]
pub struct Reading {
    /// The whole message's ranking and verdict (the best of its texts).
    pub ranked: Ranked,
    /// Which of the message's texts that was (index into the texts it was read from).
    pub text: usize,
    pub verdict: Verdict,
    /// The message's requests, when it holds several (empty otherwise).
    pub requests: Vec<Request>,
    /// Knowledge entries asked for by different requests of the message, in order (two or
    /// more: answer each).
    pub several: Vec<(usize, f32)>,
    pub tone: Tone,
    /// A presence check ("hello? anybody there?").
    pub presence: bool,
}

impl Reading {
    /// Reads a message given as its texts (verbatim first) and their words.
    pub fn new(
        understanding: &Understanding,
        cues: &Cues,
        refusals: &Negations,
        negations: &Negations,
        texts: &[String],
        words: &[Words],
    ) -> Self {
        let mut scratch = Vec::with_capacity(understanding.classes.len());
        let mut best: Option<(Ranked, Verdict, usize)> = None;
        let scans: Vec<Scan> = texts
            .iter()
            .zip(words)
            .map(|(raw, w)| Scan::new(raw, w, cues, refusals, negations))
            .collect();
        for (index, (w, scan)) in words.iter().zip(&scans).enumerate() {
            let kept = selected(w, &scan.mask, 0..w.all().len());
            let ranked = understanding.rank(&kept, &mut scratch);
            let verdict = understanding.decide(&ranked);
            let better = best.as_ref().is_none_or(|(b, bv, _)| {
                strength(&verdict) > strength(bv)
                    || (strength(&verdict) == strength(bv)
                        && ranked.top().map_or(0.0, |t| t.1) > b.top().map_or(0.0, |t| t.1))
            });
            if better {
                best = Some((ranked, verdict, index));
            }
        }
        let (ranked, verdict, chosen) = best.unwrap_or((Ranked::empty(), Verdict::Nothing, 0));
        let (requests, several) = match (words.get(chosen), scans.get(chosen)) {
            (Some(w), Some(scan)) => requests(understanding, w, scan, &ranked, &mut scratch),
            _ => (Vec::new(), Vec::new()),
        };
        let mut tone = Tone::default();
        let mut presence = false;
        for (scan, w) in scans.iter().zip(words) {
            let t = scan.tone;
            tone.sarcasm |= t.sarcasm;
            tone.frustration |= t.frustration;
            tone.insult |= t.insult;
            tone.shouting |= t.shouting;
            presence |= Cues::any(&cues.presence, w, negations);
        }
        let mut reading = Self {
            ranked,
            text: chosen,
            verdict,
            requests,
            several,
            tone,
            presence,
        };
        reading.rescue(understanding);
        reading
    }

    /// Whether the message confidently asks for one or more knowledge entries.
    pub fn asks_knowledge(&self) -> bool {
        matches!(self.verdict, Verdict::Knowledge(..)) || !self.several.is_empty()
    }

    /// A message not confidently understood as a whole, with exactly one confidently
    /// understood request inside ("hi!!! sorry to bother you, my parcel never arrived, what
    /// now"), is that request; without one, its most confident piece of small talk.
    fn rescue(&mut self, understanding: &Understanding) {
        if matches!(self.verdict, Verdict::Knowledge(..) | Verdict::Intent(..))
            || !self.several.is_empty()
        {
            return;
        }
        let bar = understanding.threshold + REQUEST_MARGIN;
        let confident: Vec<(usize, f32)> = self
            .requests
            .iter()
            .filter_map(|r| match r.verdict {
                Verdict::Knowledge(i, p) if p >= bar && r.meaningful >= REQUEST_WORDS => {
                    Some((i, p))
                }
                _ => None,
            })
            .collect();
        if let [(index, p)] = confident[..] {
            self.verdict = Verdict::Knowledge(index, p);
            return;
        }
        // Small talk inside ("top, danke euch"): the most confident intent of a piece — unless
        // the whole is confidently outside the knowledge base, or another piece leans to a
        // knowledge entry ("na gut. und meine Bestellung, wo steckt die?").
        let outside =
            matches!(self.ranked.top(), Some((Class::NotKnown, p)) if p >= understanding.threshold);
        let leaning = self
            .requests
            .iter()
            .any(|r| matches!(r.ranked.top(), Some((Class::Knowledge(_), p)) if p >= LEANING));
        if confident.is_empty() && !outside && !leaning {
            let intent = self
                .requests
                .iter()
                .filter_map(|r| match r.verdict {
                    Verdict::Intent(i, p) if p >= bar => Some((i, p)),
                    _ => None,
                })
                .max_by(|a, b| a.1.total_cmp(&b.1));
            if let Some((index, p)) = intent {
                self.verdict = Verdict::Intent(index, p);
            }
        }
    }
}

/// How decided a verdict is, for choosing between a message's texts.
fn strength(verdict: &Verdict) -> u8 {
    match verdict {
        Verdict::Knowledge(..) => 4,
        Verdict::Intent(..) => 3,
        Verdict::Clarify(..) => 2,
        Verdict::NotKnown(_) => 1,
        Verdict::Nothing => 0,
    }
}

/// What is read of one text of a message before classifying it: its pieces (possible
/// requests), its tone, and which words the classifier reads — not those a refusal covers ("I
/// don't want a refund"), not a short request the customer declines right after ("refund? no
/// thanks"), and not the words of tone cues ("useless", "thanks for nothing": how, not what,
/// they ask).
struct Scan {
    pieces: Vec<Range<usize>>,
    mask: Vec<bool>,
    tone: Tone,
}

impl Scan {
    fn new(
        raw: &str,
        text: &Words,
        cues: &Cues,
        refusals: &Negations,
        negations: &Negations,
    ) -> Self {
        let mut mask: Vec<bool> = refusals.covered(text).iter().map(|r| !r).collect();
        let (tone, marks) = cues.read(raw, text, negations);
        for range in marks {
            for k in &mut mask[range] {
                *k = false;
            }
        }
        let pieces = text.pieces(&cues.clause_words);
        for pair in pieces.windows(2) {
            let (before, after) = (&pair[0], &pair[1]);
            // "no thanks", "nein danke": a negation and nothing but filler words.
            let words = &text.all()[after.clone()];
            let declines = words.len() >= 2
                && negations.starts(words)
                && text.meaningful_in(after.start + 1..after.end) == 0;
            if declines && text.meaningful_in(before.clone()) <= DECLINE_WORDS {
                for k in &mut mask[before.start..after.end] {
                    *k = false;
                }
            }
        }
        Self { pieces, mask, tone }
    }
}

/// The words of `range` that `mask` keeps, without filler words when enough others remain
/// (the same rule as for the examples the classifier learned from).
fn selected<'a>(text: &'a Words, mask: &[bool], range: std::ops::Range<usize>) -> Vec<&'a str> {
    let words: Vec<(&'a str, bool)> = text.all()[range.clone()]
        .iter()
        .zip(&mask[range.clone()])
        .zip(text.filler_flags(range))
        .filter(|((_, keep), _)| **keep)
        .map(|((w, _), filler)| (w.as_str(), *filler))
        .collect();
    content_words(&words)
}

/// Words without the filler ones, unless fewer than [`CONTENT_WORDS`] others remain ("how are
/// you" keeps every word).
pub fn content_words<'a>(words: &[(&'a str, bool)]) -> Vec<&'a str> {
    let content = words.iter().filter(|(_, filler)| !filler).count();
    if content >= CONTENT_WORDS {
        words.iter().filter(|(_, f)| !f).map(|(w, _)| *w).collect()
    } else {
        words.iter().map(|(w, _)| *w).collect()
    }
}

/// The requests of a message (when it has more than one piece) and the knowledge entries
/// several of them confidently ask for.
fn requests(
    understanding: &Understanding,
    text: &Words,
    scan: &Scan,
    whole: &Ranked,
    scratch: &mut Vec<f32>,
) -> (Vec<Request>, Vec<(usize, f32)>) {
    if scan.pieces.len() < 2 {
        return (Vec::new(), Vec::new());
    }
    let mut requests = Vec::with_capacity(scan.pieces.len());
    let mut several: Vec<(usize, f32)> = Vec::new();
    for range in scan.pieces.iter().cloned() {
        let words = selected(text, &scan.mask, range.clone());
        let ranked = understanding.rank(&words, scratch);
        let verdict = understanding.decide(&ranked);
        let meaningful = text.meaningful_in(range.clone());
        if let Verdict::Knowledge(index, p) = verdict
            && meaningful >= REQUEST_WORDS
            && p >= understanding.threshold + REQUEST_MARGIN
            && !several.iter().any(|(i, _)| *i == index)
        {
            several.push((index, p));
        }
        requests.push(Request {
            range,
            ranked,
            verdict,
            meaningful,
        });
    }
    // Each request must have some support in the message as a whole too: a piece that only
    // names an object an entry's examples mention ("I ordered a head torch ten days ago") is
    // no request of its own.
    several.retain(|(index, _)| whole.confidence(Class::Knowledge(*index)) >= WHOLE_SUPPORT);
    if several.len() < 2 {
        several.clear();
    }
    (requests, several)
}
