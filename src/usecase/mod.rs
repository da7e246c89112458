//! The use cases: one function per thing a person or a job does — update a
//! shelter, import a registry, apply a snapshot, open or close an incident,
//! check in, post an announcement, import PFIF, purge. Each checks who may do
//! it, applies the domain's rules, and calls the store, which writes the data
//! and the typed live events it causes (`events`) into the outbox in one
//! transaction. The edges — `http/`, the CLI, background jobs — only parse,
//! call and render, so a change made from any of them reaches every open
//! page the same way.
//!
//! Reads that apply no rule (a shelter by id, the nearest shelters) go
//! straight to the store or the in-memory index.

pub mod aid;
pub mod alerts;
pub mod announcements;
pub mod checkins;
pub mod incidents;
pub mod pfif;
pub mod sessions;
pub mod shelters;
pub mod supply;

use std::sync::Arc;

use chrono::TimeDelta;

use crate::aid::AidAudience;
use crate::aidindex::AidIndex;
use crate::auth::Secret;
use crate::checkin::CheckinWriter;
use crate::config::AidConfig;
use crate::domain::municipality::MunicipalityCode;
use crate::error::DomainError;
use crate::geoindex::ShelterIndex;
use crate::live::Node;
use crate::seal::Sealer;
use crate::store::{Actor, Guarded, Official, Store};
use crate::supply::SupplyIndex;

/// What the use cases work with: cheap handles, cloned freely.
#[derive(Clone)]
pub struct Services {
    pub store: Store,
    /// Shelters in memory, in step with every committed write.
    pub index: ShelterIndex,
    /// Live updates: told after each commit (local index, relay wake-up).
    pub live: Node,
    /// The surge write path for check-ins.
    pub checkins: CheckinWriter,
    /// How long after an incident closes its personal data is kept.
    pub purge_after: TimeDelta,
    /// Active aid requests and open offers in memory, for matching.
    pub aid: AidIndex,
    /// Supply points in memory, nearest first.
    pub supply: SupplyIndex,
    /// Who hears of aid changes (inbox names) and when records go stale.
    pub audience: AidAudience,
    /// Seals requesters' contacts at rest.
    pub contacts: Sealer,
    /// The server secret: keyed hashes of tokens and edit keys.
    pub secret: Arc<Secret>,
    pub aid_rules: AidConfig,
}

/// 403 unless this office may act in `municipality`; the actor if it may.
pub fn acting_in(
    official: &Official,
    municipality: &MunicipalityCode,
) -> Result<Actor, DomainError> {
    if official.may_act_in(municipality) {
        Ok(Actor::Official(official.clone()))
    } else {
        Err(DomainError::Forbidden(format!(
            "this token may act only on municipalities {}, not {municipality}",
            official
                .municipalities
                .iter()
                .map(MunicipalityCode::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }
}

/// [`acting_in`] for an actor that may also be the operator (CLI, jobs),
/// who acts everywhere.
pub fn may_act(actor: &Actor, municipality: &MunicipalityCode) -> Result<(), DomainError> {
    match actor {
        Actor::Official(official) => acting_in(official, municipality).map(|_| ()),
        Actor::Member(account) => {
            if account.may_act_in(municipality) {
                Ok(())
            } else {
                Err(DomainError::Forbidden(format!(
                    "this token may not act on municipality {municipality}"
                )))
            }
        }
        Actor::Resident => Err(DomainError::Forbidden(
            "this needs the token of an office of the municipality".into(),
        )),
        Actor::Operator(_) => Ok(()),
    }
}

/// A guarded write's outcome in the domain's words (`missing` names what
/// was not found).
fn guarded(e: Guarded<DomainError>, missing: impl FnOnce() -> String) -> DomainError {
    match e {
        Guarded::NotFound => DomainError::NotFound(missing()),
        Guarded::Refused(e) => e,
        Guarded::Store(e) => e.into(),
    }
}
