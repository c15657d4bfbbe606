//! A minimal logic: answers every customer message with an echo and does nothing otherwise.
//! Useful for smoke tests and as the smallest example of a [`Logic`].

use async_trait::async_trait;
use shared::answer::{Action, Reply};
use shared::event::{Event, ParticipantType, TriggerType};

use super::{Context, Logic, LogicError};

/// Echoes customer messages back (`You said: ...`).
#[derive(Debug, Default, Clone, Copy)]
pub struct EchoLogic;

#[async_trait]
impl Logic for EchoLogic {
    /// The reply is a pure function of the event (state travels in `conversation.custom`).
    fn deterministic(&self) -> bool {
        true
    }

    async fn decide(&self, event: &Event, _context: &Context) -> Result<Reply, LogicError> {
        let from_customer = event.trigger.participant_type == Some(ParticipantType::Customer);
        if event.trigger.kind == TriggerType::Message && from_customer {
            let text = event.trigger_texts().next().unwrap_or_default();
            return Ok(Reply::with_actions(vec![Action::message(format!(
                "You said: {text}"
            ))]));
        }
        Ok(Reply::nothing())
    }
}
