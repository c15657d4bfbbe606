//! Assembling an event body from its head (everything but the turns) and the serialised turns,
//! at a requested size: smaller events grow by earlier turns of the conversation (an earlier
//! exchange, [`history`]), as a real conversation's events do, and the last few bytes by a
//! top-level field unknown to the event model ([`PADDING_FIELD`]); larger ones keep only their
//! newest turns that fit (at least one). Size 0 means the natural size: every turn, no padding.

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
    // Earlier turns to grow a small event to about `size` (room kept for the padding field).
    let overhead = PADDING_FIELD.len() + 6;
    let mut room = if size == 0 {
        0
    } else {
        size.saturating_sub(fixed + turns_len + 1 + overhead)
    };
    let earlier: Vec<&[u8]> = history()
        .iter()
        .map(Vec::as_slice)
        .take_while(|turn| {
            let fits = turn.len() < room;
            if fits {
                room -= turn.len() + 1;
            }
            fits
        })
        .collect();
    out.reserve(size.max(fixed + turns_len) + 32);
    out.extend_from_slice(separator);
    out.extend_from_slice(b"\"turns\":[");
    for (i, turn) in earlier
        .iter()
        .copied()
        .chain(kept.iter().map(Vec::as_slice))
        .enumerate()
    {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(turn);
    }
    out.push(b']');
    // `,"simPadding":""` costs 16 bytes before any filler.
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

/// Turns of an earlier exchange of the conversation (customer and bot taking turns, about
/// 300 bytes each), serialised once.
fn history() -> &'static [Vec<u8>] {
    static HISTORY: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    HISTORY.get_or_init(|| {
        const LINES: [&str; 6] = [
            "Hi, I ordered a pair of running shoes last week and the tracking has not moved since Monday.",
            "Thanks for your patience. Could you tell me the order number so I can look it up?",
            "Sure, it is 4471-2290. I also changed my delivery address after ordering, is that a problem?",
            "The new address was applied to the parcel. It left our warehouse yesterday evening.",
            "Great, and can I still return them if they do not fit? They are a gift for my brother.",
            "Yes: unworn items can be returned within 30 days, free of charge, with the label in the box.",
        ];
        (0..200)
            .map(|i| {
                let customer = i % 2 == 0;
                let turn = serde_json::json!({
                    "time": format!("2026-01-01T10:{:02}:{:02}.000000Z", (i / 60) % 60, i % 60),
                    "type": "MESSAGE",
                    "participantType": if customer { "CUSTOMER" } else { "BOT" },
                    "content": LINES[i % LINES.len()],
                    "status": if customer { "RECEIVED" } else { "DELIVERED" },
                    "id": format!("history-{i:04}"),
                });
                serde_json::to_vec(&turn).unwrap_or_default()
            })
            .collect()
    })
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
    fn small_events_grow_by_earlier_turns_to_the_requested_size_and_stay_valid_json() {
        let body = assemble(&json!({"requestId": "r"}), &turns(2), 5120);
        assert!((5110..=5120).contains(&body.len()), "{}", body.len());
        let value: Value = serde_json::from_slice(&body).expect("valid JSON");
        let all = value["turns"].as_array().cloned().unwrap_or_default();
        assert!(all.len() > 10, "grown by earlier turns: {}", all.len());
        // The conversation's own turns stay the newest.
        assert_eq!(all[all.len() - 2]["n"], json!(0));
        assert_eq!(all[all.len() - 1]["n"], json!(1));
        assert!(value[PADDING_FIELD].as_str().is_some_and(|p| p.len() < 400));
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
