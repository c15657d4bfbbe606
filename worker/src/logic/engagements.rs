//! Whose engagement is whose: Your Logic's own engagement or a human agent's.
//!
//! Salted CX gives every participant of a live conversation its own engagement, Your Logic
//! included, and Your Logic's engagement may have the type `AGENT` (in Salted CX's own example
//! request the bot's turns, `participantType: BOT`, sit in an `AGENT` engagement that is
//! `IN_PROGRESS`). Taking every `AGENT` engagement for a human would make the bot go mute in its
//! own conversation, so each engagement is classified by these rules, first match wins:
//!
//! 1. type `BOT`: Your Logic's own. Types other than `AGENT` and `EXTERNAL_AGENT` (`QUEUE`,
//!    unknown or missing types) are nobody's: they never count as an agent at work.
//! 2. its `agent` is one of the configured identities (`BOT_AGENT_IDS`): own;
//! 3. a turn from an agent or external agent lies in it: a human's;
//! 4. a turn from a bot lies in it: own;
//! 5. its `agent` has a bot turn in another engagement: own (Your Logic's next engagement);
//! 6. identities are configured (and this one is not among them): a human's;
//! 7. the trigger comes from an agent with this engagement's `agent`: a human's;
//! 8. nobody has spoken in it yet: a human's when help was asked for (the bot escalated or the
//!    conversation needs help), otherwise own (Salted CX opens Your Logic's engagement before
//!    the bot's first message; an agent who joins unasked is recognised by rule 3 as soon as
//!    they write, or at once with `BOT_AGENT_IDS`).

use std::collections::HashSet;

use shared::event::{Engagement, EngagementType, Event, ParticipantType, Status, TriggerType};

/// The agent ids under which Salted CX lists Your Logic's own engagements (may be empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    agents: HashSet<String>,
}

impl Identity {
    /// An identity made of the given agent ids (blank ones are ignored).
    pub fn new<S: AsRef<str>>(agent_ids: impl IntoIterator<Item = S>) -> Self {
        let agents = agent_ids
            .into_iter()
            .map(|id| id.as_ref().trim().to_ascii_lowercase())
            .filter(|id| !id.is_empty())
            .collect();
        Self { agents }
    }

    /// Whether any agent id is configured.
    pub fn is_configured(&self) -> bool {
        !self.agents.is_empty()
    }

    /// Whether `agent` is one of Your Logic's ids.
    pub fn is_own(&self, agent: &str) -> bool {
        self.agents.contains(&agent.trim().to_ascii_lowercase())
    }
}

/// Who an engagement belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// Your Logic itself.
    Bot,
    /// A human agent or external agent.
    Human,
    /// Not a participant (a queue, an unknown kind).
    Nobody,
}

/// The engagements of one event, classified.
#[derive(Debug)]
pub struct Engagements<'a> {
    event: &'a Event,
    identity: &'a Identity,
    help_requested: bool,
    /// Agent ids with a bot turn in one of their engagements.
    bot_agents: HashSet<&'a str>,
}

impl<'a> Engagements<'a> {
    /// Classifies the engagements of `event`; `help_requested` says whether the bot escalated
    /// or the conversation needs help (an agent joining is then expected).
    pub fn new(event: &'a Event, identity: &'a Identity, help_requested: bool) -> Self {
        let bot_agents = event
            .engagements
            .iter()
            .filter(|e| {
                e.pid
                    .as_deref()
                    .is_some_and(|pid| has_turn(event, pid, is_bot))
            })
            .filter_map(|e| e.agent.as_deref())
            .collect();
        Self {
            event,
            identity,
            help_requested,
            bot_agents,
        }
    }

    /// Who `engagement` belongs to (the rules in the module documentation).
    pub fn owner(&self, engagement: &Engagement) -> Owner {
        match engagement.kind {
            Some(EngagementType::Bot) => return Owner::Bot,
            Some(EngagementType::Agent | EngagementType::ExternalAgent) => {}
            _ => return Owner::Nobody,
        }
        let agent = engagement.agent.as_deref().map(str::trim);
        if agent.is_some_and(|a| self.identity.is_own(a)) {
            return Owner::Bot;
        }
        if let Some(pid) = engagement.pid.as_deref() {
            if has_turn(self.event, pid, is_human) {
                return Owner::Human;
            }
            if has_turn(self.event, pid, is_bot) {
                return Owner::Bot;
            }
        }
        if agent.is_some_and(|a| self.bot_agents.contains(a)) {
            return Owner::Bot;
        }
        if self.identity.is_configured() {
            return Owner::Human;
        }
        let trigger = &self.event.trigger;
        let trigger_agent = trigger.agent.as_deref().map(str::trim);
        if trigger.participant_type.as_ref().is_some_and(is_human)
            && agent.is_some()
            && trigger_agent == agent
        {
            return Owner::Human;
        }
        if self.help_requested {
            Owner::Human
        } else {
            Owner::Bot
        }
    }

    /// Whether a human agent's engagement is in progress. The engagement that an
    /// `ENGAGEMENT_COMPLETED` trigger reports no longer counts, whatever its listed status.
    pub fn human_engaged(&self) -> bool {
        let completed = match self.event.trigger.kind {
            TriggerType::EngagementCompleted => self
                .event
                .trigger
                .engagement
                .as_ref()
                .and_then(|e| e.pid.as_deref()),
            _ => None,
        };
        self.event.engagements.iter().any(|e| {
            e.status == Some(Status::InProgress)
                && (completed.is_none() || e.pid.as_deref() != completed)
                && self.owner(e) == Owner::Human
        })
    }

    /// Who the engagement completed by an `ENGAGEMENT_COMPLETED` trigger belonged to (an
    /// engagement without a type is taken for an agent's, as it was before types existed).
    pub fn completed_owner(&self) -> Owner {
        let Some(completed) = self.event.trigger.engagement.as_ref() else {
            return Owner::Human;
        };
        // The list in `engagements[]` may know more (type, agent) than the trigger's copy.
        let listed = completed
            .pid
            .as_deref()
            .and_then(|pid| {
                self.event
                    .engagements
                    .iter()
                    .find(|e| e.pid.as_deref() == Some(pid))
            })
            .filter(|e| e.kind.is_some() && completed.kind.is_none());
        let engagement = listed.unwrap_or(completed);
        match (engagement.kind.as_ref(), self.owner(engagement)) {
            (None, _) => Owner::Human,
            (_, owner) => owner,
        }
    }
}

fn is_human(participant: &ParticipantType) -> bool {
    matches!(
        participant,
        ParticipantType::Agent | ParticipantType::ExternalAgent
    )
}

fn is_bot(participant: &ParticipantType) -> bool {
    *participant == ParticipantType::Bot
}

/// Whether a turn of engagement `pid` comes from a participant `who` accepts.
fn has_turn(event: &Event, pid: &str, who: fn(&ParticipantType) -> bool) -> bool {
    event.turns.iter().any(|t| {
        t.engagement_pid.as_deref() == Some(pid) && t.participant_type.as_ref().is_some_and(who)
    })
}

#[cfg(test)]
#[path = "engagements_tests.rs"]
mod tests;
