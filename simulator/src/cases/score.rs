//! `saltedcx-sim score`: how well a playbook does on a set of conversation tests, as a report
//! rather than a pass/fail verdict — the share of answers (and of whole conversations) that
//! meet their expectations, per category and per language, and the rate of confident wrong
//! answers (a knowledge answer to a different topic, or where none was wanted). CI prints it
//! for the held-out corpus; it never fails on the figures.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::run::RunReport;

/// Counts for one group of cases.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub cases: usize,
    pub cases_passed: usize,
    pub answers: usize,
    pub answers_passed: usize,
    pub confident_wrong: usize,
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.cases += other.cases;
        self.cases_passed += other.cases_passed;
        self.answers += other.answers;
        self.answers_passed += other.answers_passed;
        self.confident_wrong += other.confident_wrong;
    }
}

/// The score of a run, by category and by language.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Score {
    pub by_category: BTreeMap<String, Tally>,
    pub by_language: BTreeMap<String, Tally>,
    pub total: Tally,
    /// For the messages whose expectation names what they are: the best candidate's
    /// confidence, and whether it was what the expectation accepts.
    pub readings: Vec<Reading>,
}

/// The best candidate for one message with a named expectation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub confidence: f64,
    /// Whether the candidate is a knowledge entry or an intent (not "not known").
    pub known: bool,
    /// Whether the expectation accepts it.
    pub right: bool,
    /// Whether the expectation is the not-known path.
    pub unknown_expected: bool,
}

/// Confidence bands of the calibration table.
const BANDS: [f64; 6] = [0.0, 0.3, 0.4, 0.5, 0.6, 0.8];
/// Thresholds of the threshold table.
const THRESHOLDS: [f64; 7] = [0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6];

impl Score {
    /// Scores every case of `report` (cases without a category count as `-`).
    pub fn of(report: &RunReport) -> Self {
        let mut score = Score::default();
        for case in &report.cases {
            let tally = Tally {
                cases: 1,
                cases_passed: usize::from(case.failure.is_none()),
                answers: case.steps.len(),
                answers_passed: case.steps.iter().filter(|s| s.passed).count(),
                confident_wrong: case.steps.iter().filter(|s| s.confident_wrong).count(),
            };
            let category = case.category.clone().unwrap_or_else(|| "-".into());
            score.by_category.entry(category).or_default().add(&tally);
            let language = case.language.clone();
            score.by_language.entry(language).or_default().add(&tally);
            score.total.add(&tally);
            for step in &case.steps {
                if let (Some((top, confidence)), false) = (&step.top, step.accepts.is_empty()) {
                    score.readings.push(Reading {
                        confidence: *confidence,
                        known: top != "not_known",
                        right: step.accepts.contains(top),
                        unknown_expected: step.accepts.iter().any(|a| a == "not_known"),
                    });
                }
            }
        }
        score
    }

    /// How often the best candidate is right by confidence band (calibration), and what each
    /// threshold would do: answers given right, and wrong answers given where "not known" or
    /// another class was expected.
    pub fn render_calibration(&self) -> String {
        let mut out = format!(
            "\ncalibration: the best candidate of {} messages whose expectation names what they are\n",
            self.readings.len()
        );
        out.push_str("confidence     messages  best candidate right\n");
        for (i, low) in BANDS.iter().enumerate() {
            let high = BANDS.get(i + 1).copied().unwrap_or(1.01);
            let band: Vec<&Reading> = self
                .readings
                .iter()
                .filter(|r| r.confidence >= *low && r.confidence < high)
                .collect();
            let right = band.iter().filter(|r| r.right).count();
            let _ = writeln!(
                out,
                "{low:.2}-{:<8.2} {:>8}  {:>5} ({})",
                high.min(1.0),
                band.len(),
                right,
                percent(right, band.len())
            );
        }
        out.push_str("\nanswer threshold: messages read right, answered wrongly, not known instead of an answer\nthreshold      right  wrong answer  not known instead\n");
        for t in THRESHOLDS {
            let (mut right, mut wrong, mut held) = (0, 0, 0);
            for reading in &self.readings {
                let answers = reading.known && reading.confidence >= t;
                match (answers, reading.right, reading.unknown_expected) {
                    (true, true, _) | (false, _, true) => right += 1,
                    (true, false, _) => wrong += 1,
                    (false, _, false) => held += 1,
                }
            }
            let _ = writeln!(out, "{t:<10.2} {right:>9} {wrong:>13} {held:>18}");
        }
        out
    }

    /// The report as printed.
    pub fn render(&self, title: &str) -> String {
        let mut out = format!("{title}\n");
        let header = format!(
            "{:<18} {:>13} {:>15} {:>15}\n",
            "", "conversations", "answers", "confident wrong"
        );
        for (heading, groups) in [
            ("category", &self.by_category),
            ("language", &self.by_language),
        ] {
            let _ = write!(out, "\n{heading}{}", &header[heading.len()..]);
            for (name, tally) in groups {
                out.push_str(&row(name, tally));
            }
        }
        let _ = write!(out, "\n{}", row("all", &self.total));
        let t = &self.total;
        let _ = writeln!(
            out,
            "\nconfident wrong answers: {} of {} answers ({})",
            t.confident_wrong,
            t.answers,
            percent(t.confident_wrong, t.answers)
        );
        out
    }
}

fn percent(part: usize, whole: usize) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.1} %", part as f64 * 100.0 / whole as f64)
    }
}

fn row(name: &str, t: &Tally) -> String {
    format!(
        "{name:<18} {:>5}/{:<3} {:>3.0}% {:>5}/{:<3} {:>4.0}% {:>7} {:>7}\n",
        t.cases_passed,
        t.cases,
        ratio(t.cases_passed, t.cases),
        t.answers_passed,
        t.answers,
        ratio(t.answers_passed, t.answers),
        t.confident_wrong,
        percent(t.confident_wrong, t.answers),
    )
}

fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cases::run::{CaseReport, StepOutcome};

    fn case(category: &str, language: &str, steps: &[(bool, bool)]) -> CaseReport {
        let steps: Vec<StepOutcome> = steps
            .iter()
            .map(|&(passed, confident_wrong)| StepOutcome {
                passed,
                confident_wrong,
                top: None,
                accepts: Vec::new(),
            })
            .collect();
        CaseReport {
            name: "c".into(),
            file: "f".into(),
            category: Some(category.into()),
            language: language.into(),
            checked: steps.len(),
            failure: steps.iter().any(|s| !s.passed).then(|| "failed".into()),
            steps,
            semantic_skipped: false,
        }
    }

    #[test]
    fn scores_count_answers_and_conversations_per_category_and_language() {
        let report = RunReport {
            cases: vec![
                case("tone", "en", &[(true, false), (false, true)]),
                case("tone", "cs", &[(true, false)]),
                case("entities", "cs", &[(true, false), (true, false)]),
            ],
        };
        let score = Score::of(&report);
        assert_eq!(
            score.by_category["tone"],
            Tally {
                cases: 2,
                cases_passed: 1,
                answers: 3,
                answers_passed: 2,
                confident_wrong: 1
            }
        );
        assert_eq!(score.by_language["cs"].answers, 3);
        assert_eq!(score.total.answers, 5);
        let text = score.render("held-out");
        assert!(
            text.contains("confident wrong answers: 1 of 5 answers (20.0 %)"),
            "{text}"
        );
        assert!(text.contains("entities"), "{text}");
    }
}
