//! The volunteers a coordinator registers, lists and suspends.

use super::*;

/// A registered volunteer and what the registration desk hands over.
#[derive(Debug, Serialize, ToSchema)]
pub struct Registered {
    pub volunteer: Account,
    /// Shown once.
    pub token: String,
    /// Opens the volunteer page signed in.
    pub sign_in_link: String,
    /// The sign-in link as a QR code (SVG).
    pub qr_svg: String,
}

/// A coordinator registers a volunteer: a token shown once, and the
/// sign-in link as a QR code for the registration desk. `base` is the
/// service's public address, for the link.
pub async fn register_volunteer(
    s: &Services,
    caller: &Caller,
    name: &str,
    base: &str,
) -> Result<Registered, DomainError> {
    let coordinator = match caller {
        Caller::Account(a) if a.role == Role::Coordinator => a,
        Caller::Account(_) => {
            return Err(DomainError::Forbidden(
                "only a coordinator (a volunteer centre or NPO) registers volunteers".into(),
            ));
        }
        _ => return Err(DomainError::Unauthorized),
    };
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(DomainError::field("name", "1 to 100 characters"));
    }
    let (volunteer, token) = crate::auth::create_account(
        &s.store,
        &s.secret,
        &crate::store::NewAccount {
            name,
            role: Role::Volunteer,
            org: coordinator.org.as_deref().or(Some(&coordinator.name)),
            municipalities: &coordinator.municipalities,
            coordinator: Some(coordinator.id),
        },
    )
    .await?;
    let sign_in_link = format!(
        "{}/volunteer.html#token={token}",
        base.trim_end_matches('/')
    );
    let qr_svg = qrcode::QrCode::new(sign_in_link.as_bytes())
        .map_err(|e| DomainError::Store(anyhow::anyhow!("QR code: {e}").into()))?
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(240, 240)
        .build();
    Ok(Registered {
        volunteer,
        token,
        sign_in_link,
        qr_svg,
    })
}

/// A coordinator's volunteers.
pub async fn volunteers(s: &Services, caller: &Caller) -> Result<Vec<Account>, DomainError> {
    let coordinator = coordinator(caller)?;
    Ok(s.store.volunteers_of(coordinator.id).await?)
}

/// A coordinator suspends (or reinstates) one of its volunteers.
pub async fn suspend_volunteer(
    s: &Services,
    caller: &Caller,
    id: i64,
    suspended: bool,
) -> Result<Account, DomainError> {
    let coordinator = coordinator(caller)?;
    let volunteer = s
        .store
        .account(id)
        .await?
        .filter(|v| v.coordinator == Some(coordinator.id))
        .ok_or_else(|| {
            DomainError::NotFound(format!("no volunteer {id} registered by this coordinator"))
        })?;
    s.store.set_suspended(volunteer.id, suspended).await?;
    Ok(s.store.account(id).await?.unwrap_or(volunteer))
}
