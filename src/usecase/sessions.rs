//! Signing a device in with a one-time code, and out again.

use super::Services;
use crate::error::DomainError;
use crate::store::Account;

/// Exchanges a one-time sign-in code for a token of this device's own.
pub async fn sign_in(s: &Services, code: &str) -> Result<(Account, String), DomainError> {
    let token = format!("anpi_{}", crate::auth::random_hex());
    let account = s
        .store
        .redeem_sign_in_code(&s.secret.hash(code.trim()), &s.secret.hash(&token))
        .await?
        .ok_or(DomainError::Unauthorized)?;
    if account.suspended {
        return Err(DomainError::Forbidden(
            "this token is suspended (by its coordinator, or its coordinator is)".into(),
        ));
    }
    Ok((account, token))
}

/// Forgets a device's token. A holder's own token (from the command line or
/// a registration desk) is not a device's: it is revoked by its issuer.
pub async fn sign_out(s: &Services, token: &str) -> Result<(), DomainError> {
    if s.store.revoke_device_token(&s.secret.hash(token)).await? {
        Ok(())
    } else {
        Err(DomainError::Conflict(
            "this token was not made by signing in on a device; it stays valid".into(),
        ))
    }
}
