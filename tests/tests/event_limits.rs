//! The limits of what an event may hold agree between the ingress and the worker: what the
//! ingress accepts the worker reads, so a customer cannot poison their own conversation (a lone
//! surrogate escape in a message is read as U+FFFD in that event and every later one), and what
//! the worker could not read (a number beyond a double, a list beyond its bound, such as
//! `customer.contacts`) is refused at the door with a clear error.

use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};
use testkit::faults;
use testkit::stack::{self, Poster, Service, TOKEN};
use testkit::{EventBuilder, FakeSaltedCx, NatsServer};

const READY: Duration = Duration::from_secs(15);
const WAIT: Duration = Duration::from_secs(20);

struct Pipeline {
    nats: NatsServer,
    fake: FakeSaltedCx,
    _ingress: Service,
    _worker: Service,
    poster: Poster,
}

/// NATS, the fake Salted CX, the ingress and a worker echoing customer messages.
async fn pipeline() -> Result<Pipeline> {
    let nats = NatsServer::start().await?;
    let fake = FakeSaltedCx::start(TOKEN).await?;
    let ingress = stack::start_ingress(&nats.url(), |_| {}).await?;
    let logic = std::sync::Arc::new(worker::logic::echo::EchoLogic);
    let worker = stack::start_worker(&nats.url(), &fake.base_url(), logic, |_| {}).await?;
    stack::wait_ready(&ingress, READY).await?;
    stack::wait_ready(&worker, READY).await?;
    Ok(Pipeline {
        poster: Poster::new(&ingress.url()),
        nats,
        fake,
        _ingress: ingress,
        _worker: worker,
    })
}

/// Posts `body` (raw JSON text) with the token; returns the status and the JSON reply.
async fn post_text(poster: &Poster, body: String) -> Result<(u16, Value)> {
    let (status, reply) = poster
        .post_raw(
            body.into_bytes(),
            Some(&format!("Bearer {TOKEN}")),
            "application/json",
        )
        .await?;
    Ok((status.as_u16(), reply))
}

/// `event` as JSON text with the placeholder `__RAW__` (a string value) replaced by `raw`.
fn with_raw(event: &Value, raw: &str) -> String {
    event.to_string().replace("\"__RAW__\"", raw)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_surrogate_in_a_message_is_read_as_a_replacement_character_in_every_later_event()
-> Result<()> {
    let p = pipeline().await?;
    // A truncated emoji: the high half of a surrogate pair, as JavaScript's JSON.stringify
    // writes a string cut in the middle of one.
    let broken = "\"broken \\ud83d emoji\"";
    let first = EventBuilder::message("conv-surrogate", "__RAW__").build();
    let mut answers = Vec::new();
    let (status, reply) = post_text(&p.poster, with_raw(&first, broken)).await?;
    assert_eq!(status, 202, "{reply}");
    answers.push(first["requestId"].as_str().unwrap_or_default().to_string());
    // The message stays in the conversation's history: every later event carries it.
    for text in ["second", "third"] {
        let later = EventBuilder::message("conv-surrogate", text)
            .turn(json!({
                "type": "MESSAGE",
                "participantType": "CUSTOMER",
                "content": "__RAW__",
                "contentCustomer": "__RAW__",
            }))
            .build();
        let (status, reply) = post_text(&p.poster, with_raw(&later, broken)).await?;
        assert_eq!(status, 202, "{reply}");
        answers.push(later["requestId"].as_str().unwrap_or_default().to_string());
    }
    let mut replies = Vec::new();
    for id in &answers {
        let answered = p.fake.wait_for_request(id, WAIT).await?;
        replies.push(answered.actions());
    }
    assert_eq!(
        replies,
        vec![
            vec![json!({"type": "MESSAGE", "content": "You said: broken \u{fffd} emoji"})],
            vec![json!({"type": "MESSAGE", "content": "You said: second"})],
            vec![json!({"type": "MESSAGE", "content": "You said: third"})],
        ]
    );
    let letters = faults::dead_letters(&p.nats.jetstream().await?).await?;
    assert!(letters.is_empty(), "dead letters: {letters:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_beyond_a_double_and_lists_beyond_their_bound_are_refused_at_the_ingress()
-> Result<()> {
    let p = pipeline().await?;
    let event = EventBuilder::message("conv-limits", "hello")
        .turn(json!({"type": "MESSAGE", "content": "__RAW__"}))
        .build();
    for number in ["1e400", "-1E+309", &format!("1{}", "0".repeat(400))] {
        let (status, reply) = post_text(&p.poster, with_raw(&event, number)).await?;
        assert_eq!(status, 400, "{number}: {reply}");
        assert_eq!(reply["error"]["code"], "malformed_json", "{reply}");
        let message = reply["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("number"), "{message}");
        assert!(message.contains("line 1 column"), "{message}");
    }
    // Large numbers a double holds are fine.
    let (status, reply) = post_text(&p.poster, with_raw(&event, "1.5e300")).await?;
    assert_eq!(status, 202, "{reply}");

    // About 346,000 contacts in one MiB, as in the review.
    let contacts = format!("[{}]", vec!["{}"; 346_000].join(","));
    let flood = EventBuilder::message("conv-limits", "hello")
        .set("/customer/contacts", json!("__RAW__"))
        .build();
    let (status, reply) = post_text(&p.poster, with_raw(&flood, &contacts)).await?;
    assert_eq!(status, 422, "{reply}");
    let message = reply["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("customer.contacts"), "{message}");
    assert!(message.contains("more than 1000"), "{message}");

    // Any other list is bounded too, wherever it is.
    let list = format!("[{}]", vec!["0"; 10_001].join(","));
    let anywhere = EventBuilder::message("conv-limits", "hello")
        .set("/conversation/custom", json!({"scores": "__RAW__"}))
        .build();
    let (status, reply) = post_text(&p.poster, with_raw(&anywhere, &list)).await?;
    assert_eq!(status, 422, "{reply}");
    let message = reply["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("more than 10000"), "{message}");
    Ok(())
}
