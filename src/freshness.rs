//! How fresh what people read is. Every record others act on — a shelter's
//! state, an aid request, an offer — says when it was last confirmed and by
//! whom, and past an age of its kind answers `"stale": true`, so a resident
//! does not walk to a shelter whose "open" is two days old without knowing.
//! Aid records compute theirs in `aid::AidAudience`; a shelter's state is
//! serialised here, with the age its kind may reach (`ANPI_SHELTER_STALE_HOURS`).

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};
use serde::ser::{Serialize, SerializeStruct, Serializer};

use crate::domain::shelter::{LiveState, ShelterStatus};

/// Seconds after which an open or full shelter's state is stale; one value
/// per process, set at start.
static SHELTER_STALE_AFTER_SECS: AtomicI64 = AtomicI64::new(12 * 3600);

pub fn set_shelter_stale_after(hours: u32) {
    SHELTER_STALE_AFTER_SECS.store(i64::from(hours) * 3600, Ordering::Relaxed);
}

/// Whether a shelter state confirmed at `confirmed_at` is too old to trust:
/// only an open or full shelter needs confirming (closed is the default).
pub fn shelter_is_stale(status: ShelterStatus, confirmed_at: Option<DateTime<Utc>>) -> bool {
    let after = SHELTER_STALE_AFTER_SECS.load(Ordering::Relaxed);
    matches!(status, ShelterStatus::Open | ShelterStatus::Full)
        && confirmed_at.is_none_or(|at| (Utc::now() - at).num_seconds() > after)
}

impl Serialize for LiveState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_struct("LiveState", 11)?;
        out.serialize_field("status", &self.status)?;
        out.serialize_field("occupancy", &self.occupancy)?;
        out.serialize_field("needs", &self.needs)?;
        out.serialize_field("needs_note", &self.needs_note)?;
        out.serialize_field("updated_at", &self.updated_at)?;
        out.serialize_field("updated_by", &self.updated_by)?;
        out.serialize_field("as_of", &self.as_of)?;
        out.serialize_field("self_reported", &self.self_reported)?;
        // The moment the office vouched for: the snapshot's 時点 when it
        // gave one, else when the change was made.
        let confirmed_at = self.as_of.or(self.updated_at);
        out.serialize_field("confirmed_at", &confirmed_at)?;
        out.serialize_field("confirmed_by", &self.updated_by)?;
        out.serialize_field("stale", &shelter_is_stale(self.status, confirmed_at))?;
        out.end()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    #[test]
    fn only_an_open_or_full_state_goes_stale() {
        let now = Utc::now();
        let old = Some(now - TimeDelta::hours(13));
        let fresh = Some(now - TimeDelta::hours(1));
        assert!(shelter_is_stale(ShelterStatus::Open, old));
        assert!(shelter_is_stale(ShelterStatus::Full, None));
        assert!(!shelter_is_stale(ShelterStatus::Open, fresh));
        assert!(!shelter_is_stale(ShelterStatus::Closed, old));
        let state = LiveState {
            status: ShelterStatus::Open,
            updated_at: old,
            updated_by: Some("七尾市".into()),
            ..LiveState::default()
        };
        let json = serde_json::to_value(&state).unwrap();
        assert_eq!(json["stale"], true);
        assert_eq!(json["confirmed_by"], "七尾市");
        assert_eq!(json["confirmed_at"], serde_json::to_value(old).unwrap());
    }
}
