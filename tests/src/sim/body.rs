//! Assembling an event body from its head (everything but the turns) and the serialised turns,
//! at a requested size: smaller events are padded with a top-level field unknown to the event
//! model ([`PADDING_FIELD`]), larger ones keep only their newest turns that fit (at least one).
//! Size 0 means the natural size: every turn, no padding.

use serde::Serialize;

use super::conversation::PADDING_FIELD;

/// `{head..., "turns":[...]}` (+ padding) at about `size` bytes (0: natural size).
pub fn assemble<H: Serialize>(head: &H, turns: &[Vec<u8>], size: usize) -> Vec<u8> {
    // A struct of strings and JSON values always serialises; the fallback keeps it valid JSON.
    let mut out = serde_json::to_vec(head).unwrap_or_else(|_| b"{}".to_vec());
    if out.last() == Some(&b'}') {
        out.pop();
    }
    let separator: &[u8] = if out.len() > 1 { b"," } else { b"" };
    // `"turns":[` + `]` + `}`.
    let fixed = out.len() + separator.len() + 10;
    let keep = if size == 0 {
        turns.len()
    } else {
        newest_that_fit(turns, size.saturating_sub(fixed))
    };
    let kept = &turns[turns.len() - keep..];
    let turns_len: usize = kept.iter().map(|t| t.len() + 1).sum();
    out.reserve(fixed + turns_len + size.saturating_sub(fixed + turns_len) + 32);
    out.extend_from_slice(separator);
    out.extend_from_slice(b"\"turns\":[");
    for (i, turn) in kept.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(turn);
    }
    out.push(b']');
    // `,"simPadding":""` costs 16 bytes before any filler.
    let overhead = PADDING_FIELD.len() + 6;
    if size > 0 && out.len() + 1 + overhead < size {
        let filler = size - out.len() - 1 - overhead;
        out.extend_from_slice(b",\"");
        out.extend_from_slice(PADDING_FIELD.as_bytes());
        out.extend_from_slice(b"\":\"");
        out.extend(std::iter::repeat_n(b'x', filler));
        out.push(b'"');
    }
    out.push(b'}');
    out
}

/// How many of the newest turns fit in `room` bytes (always at least one, if there is one).
fn newest_that_fit(turns: &[Vec<u8>], room: usize) -> usize {
    let mut used = 0;
    let mut keep = 0;
    for turn in turns.iter().rev() {
        let cost = turn.len() + usize::from(keep > 0);
        if keep > 0 && used + cost > room {
            break;
        }
        used += cost;
        keep += 1;
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn turns(n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| {
                serde_json::to_vec(&json!({"n": i, "content": "x".repeat(300)})).unwrap_or_default()
            })
            .collect()
    }

    #[test]
    fn small_events_are_padded_to_the_requested_size_and_stay_valid_json() {
        let body = assemble(&json!({"requestId": "r"}), &turns(2), 3072);
        assert!((3070..=3072).contains(&body.len()), "{}", body.len());
        let value: Value = serde_json::from_slice(&body).expect("valid JSON");
        assert_eq!(value["turns"].as_array().map(Vec::len), Some(2));
        assert!(value[PADDING_FIELD].is_string());
    }

    #[test]
    fn large_events_keep_only_their_newest_turns() {
        let body = assemble(&json!({"requestId": "r"}), &turns(30), 3072);
        assert!(body.len() <= 3072, "{}", body.len());
        let value: Value = serde_json::from_slice(&body).expect("valid JSON");
        let kept = value["turns"].as_array().cloned().unwrap_or_default();
        assert!(kept.len() >= 8 && kept.len() < 30);
        assert_eq!(kept.last().map(|t| t["n"].clone()), Some(json!(29)));
    }

    #[test]
    fn size_zero_keeps_the_natural_event() {
        let body = assemble(&json!({"requestId": "r"}), &turns(30), 0);
        let value: Value = serde_json::from_slice(&body).expect("valid JSON");
        assert_eq!(value["turns"].as_array().map(Vec::len), Some(30));
        assert!(value.get(PADDING_FIELD).is_none());
    }
}
