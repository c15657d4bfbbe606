//! The classifier that recognises what a customer asks: multinomial logistic regression over
//! the hashed word and character n-gram features of [`super::features`], trained when the
//! playbook loads on its examples (knowledge entries, intents, and examples of what it cannot
//! answer).
//!
//! Training is deterministic (a fixed shuffling seed), takes milliseconds for a few thousand
//! examples and keeps only the features seen in the examples: a message's unknown features
//! contribute nothing, so a message made mostly of words the playbook never saw gets flat,
//! low probabilities. A decision costs one hash-table lookup per feature and one
//! multiply-add per feature and class; nothing is allocated but the probabilities.

use std::collections::HashMap;

use super::features::each_feature;

/// Passes over the examples.
const EPOCHS: usize = 40;
/// Adagrad's learning rate.
const LEARNING_RATE: f32 = 0.4;
/// L2 regularisation of the weights (keeps single rare features from deciding alone).
const L2: f32 = 1e-4;
const SHUFFLE_SEED: u64 = 0x5eed_1e55_c0ff_ee00;

/// One training example: the normalised words of a text, and its class.
#[derive(Debug, Clone)]
pub struct Example {
    pub words: Vec<String>,
    pub class: usize,
}

/// A trained classifier over `classes` classes.
#[derive(Debug, Clone)]
pub struct Classifier {
    classes: usize,
    table: FeatureTable,
    /// Row-major: one row of `classes` weights per known feature.
    weights: Vec<f32>,
    bias: Vec<f32>,
}

/// How much of a text the classifier knows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coverage {
    /// Share (0..=1) of the text's feature weight the examples contained.
    pub known: f32,
    /// Whether the text had any feature at all.
    pub any: bool,
}

impl Classifier {
    /// Trains on `examples` (each class should have at least one).
    pub fn train(classes: usize, examples: &[Example]) -> Self {
        let mut rows: HashMap<u64, u32> = HashMap::new();
        let data: Vec<(Vec<(u32, f32)>, usize)> = examples
            .iter()
            .filter(|e| e.class < classes)
            .map(|e| {
                let mut features: Vec<(u32, f32)> = Vec::new();
                each_feature(&e.words, |hash, weight| {
                    let next = u32::try_from(rows.len()).unwrap_or(u32::MAX);
                    let row = *rows.entry(hash).or_insert(next);
                    features.push((row, weight));
                });
                normalise(&mut features);
                (features, e.class)
            })
            .collect();
        let width = classes.max(1);
        let mut weights = vec![0.0f32; rows.len() * width];
        let mut bias = vec![0.0f32; width];
        let mut squares = vec![1e-6f32; rows.len() * width];
        let mut bias_squares = vec![1e-6f32; width];
        let class_weight = balance(classes, &data);
        let mut order: Vec<usize> = (0..data.len()).collect();
        let mut random = SHUFFLE_SEED;
        let mut logits = vec![0.0f32; width];
        for _ in 0..EPOCHS {
            shuffle(&mut order, &mut random);
            for &i in &order {
                let (features, class) = &data[i];
                scores(&weights, &bias, width, features, &mut logits);
                softmax(&mut logits);
                let scale = class_weight[*class];
                for (c, p) in logits.iter_mut().enumerate() {
                    let target = if c == *class { 1.0 } else { 0.0 };
                    *p = (*p - target) * scale;
                }
                for c in 0..width {
                    let g = logits[c];
                    bias_squares[c] += g * g;
                    bias[c] -= LEARNING_RATE * g / bias_squares[c].sqrt();
                }
                for &(row, x) in features {
                    let base = row as usize * width;
                    for c in 0..width {
                        let w = &mut weights[base + c];
                        let g = logits[c] * x + L2 * *w;
                        squares[base + c] += g * g;
                        *w -= LEARNING_RATE * g / squares[base + c].sqrt();
                    }
                }
            }
        }
        Self {
            classes,
            table: FeatureTable::new(&rows),
            weights,
            bias,
        }
    }

    /// The number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// The probability of every class for `words` (written into `out`, resized to the number
    /// of classes), and how much of the text the examples covered.
    pub fn probabilities<S: AsRef<str>>(&self, words: &[S], out: &mut Vec<f32>) -> Coverage {
        let width = self.classes.max(1);
        out.clear();
        out.extend_from_slice(&self.bias);
        let (mut total, mut known) = (0.0f32, 0.0f32);
        // Accumulate unnormalised, then scale once: the norm is known only at the end.
        let mut sums = Sums::new(width);
        each_feature(words, |hash, weight| {
            total += weight * weight;
            if let Some(row) = self.table.get(hash) {
                known += weight * weight;
                let base = row as usize * width;
                sums.add(&self.weights[base..base + width], weight);
            }
        });
        let any = total > 0.0;
        if any {
            let norm = total.sqrt();
            for (o, s) in out.iter_mut().zip(sums.values()) {
                *o += s / norm;
            }
        }
        softmax(out);
        Coverage {
            known: if any { known / total } else { 0.0 },
            any,
        }
    }
}

/// Per-class sums of weighted feature rows; classes beyond a small inline array spill to the
/// heap (playbooks rarely have more than a few dozen classes).
struct Sums {
    inline: [f32; 64],
    heap: Vec<f32>,
    width: usize,
}

impl Sums {
    fn new(width: usize) -> Self {
        Self {
            inline: [0.0; 64],
            heap: if width > 64 {
                vec![0.0; width]
            } else {
                Vec::new()
            },
            width,
        }
    }

    fn add(&mut self, row: &[f32], weight: f32) {
        let target = if self.width > 64 {
            &mut self.heap[..]
        } else {
            &mut self.inline[..self.width]
        };
        for (t, w) in target.iter_mut().zip(row) {
            *t += w * weight;
        }
    }

    fn values(&self) -> &[f32] {
        if self.width > 64 {
            &self.heap
        } else {
            &self.inline[..self.width]
        }
    }
}

/// `logits = bias + features · weights` for a normalised sparse vector.
fn scores(
    weights: &[f32],
    bias: &[f32],
    width: usize,
    features: &[(u32, f32)],
    logits: &mut [f32],
) {
    logits.copy_from_slice(bias);
    for &(row, x) in features {
        let base = row as usize * width;
        for (l, w) in logits.iter_mut().zip(&weights[base..base + width]) {
            *l += w * x;
        }
    }
}

/// Scales a sparse vector to unit length.
fn normalise(features: &mut [(u32, f32)]) {
    let norm = features.iter().map(|(_, x)| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for (_, x) in features.iter_mut() {
            *x /= norm;
        }
    }
}

/// In-place softmax.
fn softmax(values: &mut [f32]) {
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in values.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    if sum > 0.0 {
        for v in values.iter_mut() {
            *v /= sum;
        }
    }
}

/// Weights that keep classes with many examples from drowning the others: each class weighs
/// as much in total (the inverse of its share).
fn balance(classes: usize, data: &[(Vec<(u32, f32)>, usize)]) -> Vec<f32> {
    let mut counts = vec![0usize; classes.max(1)];
    for (_, class) in data {
        counts[*class] += 1;
    }
    let mean = data.len() as f32 / classes.max(1) as f32;
    counts
        .iter()
        .map(|&n| if n == 0 { 1.0 } else { mean / n as f32 })
        .collect()
}

/// Fisher-Yates with a xorshift generator (deterministic training).
fn shuffle(order: &mut [usize], state: &mut u64) {
    for i in (1..order.len()).rev() {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        let j = (*state % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
}

/// Feature hash to weight row: open addressing with linear probing, half full at most.
#[derive(Debug, Clone)]
struct FeatureTable {
    keys: Vec<u64>,
    rows: Vec<u32>,
    mask: usize,
}

/// The key marking an empty slot (a real hash equal to it is stored as [`EMPTY_ALIAS`]).
const EMPTY: u64 = 0;
const EMPTY_ALIAS: u64 = 1;

impl FeatureTable {
    fn new(rows: &HashMap<u64, u32>) -> Self {
        let size = (rows.len() * 2).next_power_of_two().max(16);
        let mut table = Self {
            keys: vec![EMPTY; size],
            rows: vec![0; size],
            mask: size - 1,
        };
        for (&hash, &row) in rows {
            let key = Self::key(hash);
            let mut slot = key as usize & table.mask;
            while table.keys[slot] != EMPTY && table.keys[slot] != key {
                slot = (slot + 1) & table.mask;
            }
            table.keys[slot] = key;
            table.rows[slot] = row;
        }
        table
    }

    fn key(hash: u64) -> u64 {
        if hash == EMPTY { EMPTY_ALIAS } else { hash }
    }

    fn get(&self, hash: u64) -> Option<u32> {
        let key = Self::key(hash);
        let mut slot = key as usize & self.mask;
        loop {
            match self.keys[slot] {
                EMPTY => return None,
                k if k == key => return Some(self.rows[slot]),
                _ => slot = (slot + 1) & self.mask,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logic::playbook::matching::tokens;

    fn example(text: &str, class: usize) -> Example {
        Example {
            words: tokens(text),
            class,
        }
    }

    fn trained() -> Classifier {
        let examples = [
            ("where is my parcel", 0),
            ("my order has not arrived", 0),
            ("when will my package be delivered", 0),
            ("tracking number", 0),
            ("I forgot my password", 1),
            ("I cannot log in", 1),
            ("reset my password", 1),
            ("do you sell gift cards", 2),
            ("can I pay with paypal", 2),
            ("what is the exchange rate", 2),
        ];
        let examples: Vec<Example> = examples.iter().map(|(t, c)| example(t, *c)).collect();
        Classifier::train(3, &examples)
    }

    fn top(classifier: &Classifier, text: &str) -> (usize, f32, Coverage) {
        let mut p = Vec::new();
        let coverage = classifier.probabilities(&tokens(text), &mut p);
        let (class, prob) = p
            .iter()
            .copied()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, 0.0));
        (class, prob, coverage)
    }

    #[test]
    fn probabilities_sum_to_one_and_the_examples_are_recognised() {
        let classifier = trained();
        let mut p = Vec::new();
        classifier.probabilities(&tokens("where is my parcel"), &mut p);
        assert_eq!(p.len(), 3);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-4);
        assert_eq!(top(&classifier, "where is my parcel").0, 0);
        assert_eq!(top(&classifier, "I forgot my password").0, 1);
    }

    #[test]
    fn typos_and_unseen_word_forms_still_find_the_class() {
        let classifier = trained();
        assert_eq!(top(&classifier, "forgotten pasword").0, 1);
        assert_eq!(top(&classifier, "parcels not delivred").0, 0);
    }

    #[test]
    fn a_text_of_unknown_words_is_not_confidently_anything() {
        let classifier = trained();
        let (_, prob, coverage) = top(&classifier, "zxqv wubble frobnicate");
        assert!(coverage.known < 0.2, "{coverage:?}");
        assert!(prob < 0.6, "{prob}");
        let (_, _, empty) = top(&classifier, "");
        assert!(!empty.any);
    }

    #[test]
    fn training_is_deterministic() {
        let a = trained();
        let b = trained();
        assert_eq!(a.weights, b.weights);
        assert_eq!(a.bias, b.bias);
    }

    #[test]
    fn the_feature_table_finds_every_key_and_nothing_else() {
        let rows: HashMap<u64, u32> = (0..1000u64).map(|k| (k * 7919, k as u32)).collect();
        let table = FeatureTable::new(&rows);
        for (k, r) in &rows {
            assert_eq!(table.get(*k), Some(*r));
        }
        assert_eq!(table.get(3), None);
    }
}
