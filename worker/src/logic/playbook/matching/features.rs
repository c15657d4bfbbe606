//! The features the classifier sees in a text: hashed word unigrams, word bigrams and the
//! character n-grams (3 to 5 letters) of every word with its boundaries marked.
//!
//! Words come normalised (lower case, accents folded, see [`super::normalise`]), so `balík`,
//! `balik` and `BALÍK` are the same word. Character n-grams make the classifier tolerant to
//! typos and word endings in every language without a stemmer (`zásilka` / `zásilku`,
//! `delivered` / `delivery`); bigrams keep short phrases together (`sign in`, `money back`).
//! Words containing a digit are left out: order numbers, dates and phone numbers say nothing
//! about the topic.
//!
//! Features are 64-bit hashes (FNV-1a), computed without allocating.

/// Weight of a whole word.
const WORD: f32 = 1.0;
/// Weight of two adjacent words.
const BIGRAM: f32 = 0.8;
/// Weight of one character n-gram of a word (a word has many).
const GRAM: f32 = 0.5;
/// Character n-gram sizes.
const GRAM_MIN: usize = 3;
const GRAM_MAX: usize = 5;

const WORD_SEED: u64 = 0xcbf2_9ce4_8422_2325;
const GRAM_SEED: u64 = 0x8422_2325_cbf2_9ce4;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a of `bytes`, starting from `seed`.
fn fnv(seed: u64, bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes
        .into_iter()
        .fold(seed, |h, b| (h ^ u64::from(b)).wrapping_mul(FNV_PRIME))
}

/// Combines two word hashes into the hash of the bigram.
fn pair(a: u64, b: u64) -> u64 {
    (a.rotate_left(21) ^ b).wrapping_mul(FNV_PRIME) ^ 0x9e37_79b9_7f4a_7c15
}

/// Calls `emit(feature, weight)` for every feature of `words` (normalised words, in order).
pub fn each_feature<S: AsRef<str>>(words: &[S], mut emit: impl FnMut(u64, f32)) {
    let mut previous: Option<u64> = None;
    for word in words {
        let word = word.as_ref();
        if word.bytes().any(|b| b.is_ascii_digit()) {
            continue;
        }
        let hash = fnv(WORD_SEED, word.bytes());
        emit(hash, WORD);
        if let Some(previous) = previous {
            emit(pair(previous, hash), BIGRAM);
        }
        previous = Some(hash);
        char_grams(word.as_bytes(), &mut emit);
    }
}

/// The character n-grams of `<word>` (bytes: a non-ASCII letter is several bytes, which
/// hashes consistently all the same).
fn char_grams(word: &[u8], emit: &mut impl FnMut(u64, f32)) {
    let len = word.len() + 2;
    let at = |i: usize| match i {
        0 => b'<',
        i if i == len - 1 => b'>',
        i => word[i - 1],
    };
    for n in GRAM_MIN..=GRAM_MAX {
        if n > len {
            break;
        }
        for start in 0..=len - n {
            emit(fnv(GRAM_SEED, (start..start + n).map(at)), GRAM);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features(words: &[&str]) -> Vec<(u64, f32)> {
        let mut out = Vec::new();
        each_feature(words, |h, w| out.push((h, w)));
        out
    }

    #[test]
    fn a_word_gives_itself_and_its_character_n_grams() {
        // "<parcel>": 6 trigrams, 5 four-grams, 4 five-grams, and the word.
        assert_eq!(features(&["parcel"]).len(), 1 + 6 + 5 + 4);
        // "<ok>": one trigram and one four-gram.
        assert_eq!(features(&["ok"]).len(), 1 + 2 + 1);
    }

    #[test]
    fn bigrams_join_neighbours_and_numbers_are_left_out() {
        let two = features(&["sign", "in"]);
        let apart = features(&["in", "sign"]);
        let set = |f: &[(u64, f32)]| f.iter().map(|(h, _)| *h).collect::<Vec<_>>();
        assert_ne!(set(&two), set(&apart), "word order shows in the bigram");
        assert!(features(&["12345", "777123456"]).is_empty());
        assert_eq!(features(&["order", "12345"]), features(&["order"]));
    }

    #[test]
    fn similar_words_share_most_features() {
        let a: std::collections::HashSet<u64> =
            features(&["delivered"]).into_iter().map(|f| f.0).collect();
        let b: std::collections::HashSet<u64> =
            features(&["delivery"]).into_iter().map(|f| f.0).collect();
        assert!(a.intersection(&b).count() >= 8);
    }
}
