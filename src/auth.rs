//! Officials' bearer tokens. A token is 32 random bytes shown once; the
//! database keeps only its keyed hash (HMAC-SHA256 under the server secret),
//! so a copy of the database alone does not let anyone act as an office.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::domain::municipality::MunicipalityCode;
use crate::store::{Account, NewAccount, Role, Store};

/// The server's hashing key. `Debug` never shows it.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl Secret {
    pub fn new(key: Vec<u8>) -> Self {
        Self(key)
    }

    /// `ANPI_SECRET` (hex) when given, else the key kept in the database.
    pub async fn load(configured: Option<&str>, store: &Store) -> anyhow::Result<Self> {
        match configured {
            Some(hex_key) => {
                let key = hex::decode(hex_key.trim())
                    .map_err(|_| anyhow::anyhow!("ANPI_SECRET must be hex"))?;
                anyhow::ensure!(
                    key.len() >= 32,
                    "ANPI_SECRET must be at least 32 bytes (64 hex digits)"
                );
                Ok(Self(key))
            }
            None => Ok(Self(store.secret_key().await?)),
        }
    }

    /// The sealer for personal data of one purpose (`seal`), its key
    /// derived from this one.
    pub fn sealer(&self, purpose: &str) -> crate::seal::Sealer {
        crate::seal::Sealer::derive(&self.0, purpose)
    }

    /// Keyed hash, hex.
    pub fn hash(&self, value: &str) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .expect("HMAC takes keys of any length");
        mac.update(value.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

/// Makes a token for an office and records its hash; returns the token.
pub async fn create_token(
    store: &Store,
    secret: &Secret,
    name: &str,
    municipalities: &[MunicipalityCode],
) -> anyhow::Result<String> {
    let (_, token) = create_account(
        store,
        secret,
        &NewAccount {
            name,
            role: Role::Official,
            org: None,
            municipalities,
            coordinator: None,
        },
    )
    .await?;
    Ok(token)
}

/// Makes a token for any holder and records its hash; returns the holder
/// and the token (shown once).
pub async fn create_account(
    store: &Store,
    secret: &Secret,
    new: &NewAccount<'_>,
) -> anyhow::Result<(Account, String)> {
    anyhow::ensure!(
        !new.municipalities.is_empty(),
        "a token needs at least one municipality"
    );
    anyhow::ensure!(!new.name.trim().is_empty(), "a token needs a name");
    let token = format!("anpi_{}", random_hex());
    let account = store
        .create_account(
            &NewAccount {
                name: new.name.trim(),
                ..*new
            },
            &secret.hash(&token),
        )
        .await?;
    Ok((account, token))
}

/// How long a sign-in link works (once).
pub const SIGN_IN_VALID: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// A one-time sign-in link for a holder's device: `{base}/office#code=…`
/// for an office or coordinator, `{base}/volunteer.html#code=…` for a
/// volunteer. The code is exchanged once, within [`SIGN_IN_VALID`], for a
/// token of the device's own (`POST /v1/sign-in`).
pub async fn sign_in_link(
    store: &Store,
    secret: &Secret,
    account: &Account,
    base: &str,
) -> anyhow::Result<String> {
    let code = format!("anpi_code_{}", random_hex());
    store
        .create_sign_in_code(
            account.id,
            &secret.hash(&code),
            crate::store::now() + SIGN_IN_VALID,
        )
        .await?;
    let page = match account.role {
        Role::Volunteer => "volunteer.html",
        Role::Official | Role::Coordinator => "office",
    };
    Ok(format!("{}/{page}#code={code}", base.trim_end_matches('/')))
}

/// 32 random bytes, hex: tokens and edit keys.
pub fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system gives randomness");
    hex::encode(bytes)
}

/// The token of an `Authorization: Bearer …` value; the scheme name is
/// case-insensitive (RFC 9110 §11.1).
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}
