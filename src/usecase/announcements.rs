//! What an office tells everyone in its municipality.

use super::{Services, acting_in};
use crate::domain::municipality::MunicipalityCode;
use crate::error::{DomainError, FieldError};
use crate::store::{Announcement, NewAnnouncement, Official, Severity};

/// Announcements are short: residents read them on a phone.
pub const MAX_TEXT_CHARS: usize = 1000;

/// Posts an announcement to `municipality` (the office's own), live on its
/// `area:` channel once stored.
pub async fn post(
    s: &Services,
    official: &Official,
    municipality: &MunicipalityCode,
    severity: Severity,
    text: &str,
    text_en: Option<&str>,
) -> Result<Announcement, DomainError> {
    let actor = acting_in(official, municipality)?;
    let text = text.trim();
    let text_en = text_en.map(str::trim).filter(|t| !t.is_empty());
    let mut errors = Vec::new();
    if text.is_empty() || text.chars().count() > MAX_TEXT_CHARS {
        errors.push(FieldError::new(
            "text",
            format!("1 to {MAX_TEXT_CHARS} characters"),
        ));
    }
    if text_en.is_some_and(|t| t.chars().count() > MAX_TEXT_CHARS) {
        errors.push(FieldError::new(
            "text_en",
            format!("at most {MAX_TEXT_CHARS} characters"),
        ));
    }
    if !errors.is_empty() {
        return Err(DomainError::Invalid(errors));
    }
    let new = NewAnnouncement {
        severity: Some(severity),
        text: text.to_owned(),
        text_en: text_en.map(str::to_owned),
        ..NewAnnouncement::default()
    };
    let (mut posted, _) = s
        .store
        .post_announcements(&actor, std::slice::from_ref(municipality), &new, &[])
        .await?;
    s.live.changed([]);
    Ok(posted.remove(0))
}
