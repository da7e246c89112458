//! Tokens and who holds them: emergency offices, coordinators (a volunteer
//! centre or NPO) and the volunteers a coordinator registers.

use serde::Serialize;
use utoipa::ToSchema;

use super::{Store, on_backend};
use crate::domain::municipality::MunicipalityCode;

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// An emergency office: shelters, incidents, announcements, aid of its
    /// municipalities.
    Official,
    /// A volunteer centre (災害ボランティアセンター) or NPO: registers and
    /// suspends volunteers, moderates aid, sees contacts of its municipalities.
    Coordinator,
    /// Registered by a coordinator: offers, claims and delivers.
    Volunteer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Official => "official",
            Role::Coordinator => "coordinator",
            Role::Volunteer => "volunteer",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        [Role::Official, Role::Coordinator, Role::Volunteer]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// Whoever a token identifies.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Account {
    pub id: i64,
    pub name: String,
    pub role: Role,
    /// The organisation (a coordinator's own, a volunteer's coordinator's).
    pub org: Option<String>,
    /// Where it may act; never empty.
    #[schema(value_type = Vec<String>)]
    pub municipalities: Vec<MunicipalityCode>,
    /// For a volunteer: the coordinator who registered it.
    pub coordinator: Option<i64>,
    /// Suspended by its coordinator (or its coordinator suspended): it may
    /// no longer act.
    pub suspended: bool,
}

impl Account {
    pub fn may_act_in(&self, municipality: &MunicipalityCode) -> bool {
        self.municipalities.contains(municipality)
    }

    /// The office, when the token is an office's.
    pub fn as_official(&self) -> Option<Official> {
        (self.role == Role::Official).then(|| Official {
            id: self.id,
            name: self.name.clone(),
            municipalities: self.municipalities.clone(),
        })
    }

    /// The name residents and volunteers see: the person, and their
    /// organisation when they act for one.
    pub fn display_name(&self) -> String {
        match &self.org {
            Some(org) if *org != self.name => format!("{} ({org})", self.name),
            _ => self.name.clone(),
        }
    }
}

/// An emergency office, as its token identifies it.
#[derive(Clone, Debug, PartialEq)]
pub struct Official {
    pub id: i64,
    pub name: String,
    /// Where it may act; never empty.
    pub municipalities: Vec<MunicipalityCode>,
}

impl Official {
    pub fn may_act_in(&self, municipality: &MunicipalityCode) -> bool {
        self.municipalities.contains(municipality)
    }
}

/// A new token's holder.
#[derive(Clone, Copy)]
pub struct NewAccount<'a> {
    pub name: &'a str,
    pub role: Role,
    pub org: Option<&'a str>,
    pub municipalities: &'a [MunicipalityCode],
    pub coordinator: Option<i64>,
}

type AccountRow = (
    i64,
    String,
    String,
    Option<String>,
    String,
    Option<i64>,
    bool,
);

fn account(row: AccountRow) -> Account {
    let (id, name, role, org, codes, coordinator, suspended) = row;
    Account {
        id,
        name,
        // Written only by this code; an unknown role acts as the least.
        role: Role::parse(&role).unwrap_or(Role::Volunteer),
        org,
        municipalities: codes
            .split(',')
            .filter_map(|c| MunicipalityCode::parse(c).ok())
            .collect(),
        coordinator,
        suspended,
    }
}

/// Columns of [`AccountRow`]; a volunteer is suspended with its coordinator.
macro_rules! select_account {
    ($where:literal) => {
        concat!(
            "select a.id, a.name, a.role, a.org, a.municipalities, a.coordinator_id, \
     (a.suspended_at is not null or c.suspended_at is not null or c.revoked_at is not null) \
     from official a left join official c on c.id = a.coordinator_id ",
            $where
        )
    };
}

impl Store {
    /// Records a new office under the keyed hash of its token.
    pub async fn create_official(
        &self,
        name: &str,
        municipalities: &[MunicipalityCode],
        token_hash: &str,
    ) -> Result<Official, sqlx::Error> {
        let account = self
            .create_account(
                &NewAccount {
                    name,
                    role: Role::Official,
                    org: None,
                    municipalities,
                    coordinator: None,
                },
                token_hash,
            )
            .await?;
        Ok(account
            .as_official()
            .expect("an official account is an office"))
    }

    /// Records a new token holder under the keyed hash of its token.
    pub async fn create_account(
        &self,
        new: &NewAccount<'_>,
        token_hash: &str,
    ) -> Result<Account, sqlx::Error> {
        let codes = new
            .municipalities
            .iter()
            .map(MunicipalityCode::as_str)
            .collect::<Vec<_>>()
            .join(",");
        let id: i64 = on_backend!(self, |pool| {
            sqlx::query_scalar(
                "insert into official (name, token_hash, municipalities, created_at, role, org, coordinator_id) \
                 values ($1, $2, $3, $4, $5, $6, $7) returning id",
            )
            .bind(new.name)
            .bind(token_hash)
            .bind(&codes)
            .bind(super::now())
            .bind(new.role.as_str())
            .bind(new.org)
            .bind(new.coordinator)
            .fetch_one(pool)
            .await
        })?;
        Ok(Account {
            id,
            name: new.name.to_owned(),
            role: new.role,
            org: new.org.map(str::to_owned),
            municipalities: new.municipalities.to_vec(),
            coordinator: new.coordinator,
            suspended: false,
        })
    }

    /// The token holder whose token hashes to `token_hash`, unless revoked.
    pub async fn account_by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<Account>, sqlx::Error> {
        // The holder's own token, or a device token it signed in with.
        let sql = select_account!(
            "where a.revoked_at is null and (a.token_hash = $1 or a.id = \
             (select d.account_id from device_token d where d.token_hash = $1 and d.revoked_at is null))"
        );
        let row: Option<AccountRow> = on_backend!(self, |pool| {
            sqlx::query_as(sql)
                .bind(token_hash)
                .fetch_optional(pool)
                .await
        })?;
        Ok(row.map(account))
    }

    /// A token holder by id.
    pub async fn account(&self, id: i64) -> Result<Option<Account>, sqlx::Error> {
        let sql = select_account!("where a.id = $1");
        let row: Option<AccountRow> = on_backend!(self, |pool| sqlx::query_as(sql)
            .bind(id)
            .fetch_optional(pool)
            .await)?;
        Ok(row.map(account))
    }

    /// The volunteers a coordinator registered, newest first.
    pub async fn volunteers_of(&self, coordinator: i64) -> Result<Vec<Account>, sqlx::Error> {
        let sql = select_account!(
            "where a.coordinator_id = $1 and a.revoked_at is null order by a.id desc"
        );
        let rows: Vec<AccountRow> = on_backend!(self, |pool| {
            sqlx::query_as(sql).bind(coordinator).fetch_all(pool).await
        })?;
        Ok(rows.into_iter().map(account).collect())
    }

    /// Records a one-time sign-in code (its keyed hash) for a holder.
    pub async fn create_sign_in_code(
        &self,
        account_id: i64,
        code_hash: &str,
        expires_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), sqlx::Error> {
        on_backend!(self, |pool| {
            sqlx::query(
            "insert into sign_in_code (code_hash, account_id, created_at, expires_at) values ($1, $2, $3, $4)"
        )
        .bind(code_hash)
        .bind(account_id)
        .bind(super::now())
        .bind(expires_at)
        .execute(pool)
        .await
        .map(|_| ())
        })
    }

    /// Uses a sign-in code, once and before it expires, for a new device
    /// token (its keyed hash); the holder it signs in, or `None`.
    pub async fn redeem_sign_in_code(
        &self,
        code_hash: &str,
        device_token_hash: &str,
    ) -> Result<Option<Account>, sqlx::Error> {
        let now = super::now();
        let account: Option<i64> = on_backend!(self, |pool| {
            let mut tx = pool.begin().await?;
            let account: Option<i64> = sqlx::query_scalar(
                "update sign_in_code set used_at = $2 \
                 where code_hash = $1 and used_at is null and expires_at > $2 returning account_id",
            )
            .bind(code_hash)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(id) = account {
                sqlx::query(
                    "insert into device_token (token_hash, account_id, created_at) values ($1, $2, $3)",
                )
                .bind(device_token_hash)
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(account)
        })?;
        match account {
            Some(id) => self.account(id).await,
            None => Ok(None),
        }
    }

    /// Revokes a device token (signing out); false when it is no device's.
    pub async fn revoke_device_token(&self, token_hash: &str) -> Result<bool, sqlx::Error> {
        let done = on_backend!(self, |pool| {
            sqlx::query(
            "update device_token set revoked_at = $2 where token_hash = $1 and revoked_at is null"
        )
        .bind(token_hash)
        .bind(super::now())
        .execute(pool)
        .await
        .map(|d| d.rows_affected())
        })?;
        Ok(done == 1)
    }

    /// Suspends (or reinstates) a token holder; false when there is none.
    pub async fn set_suspended(&self, id: i64, suspended: bool) -> Result<bool, sqlx::Error> {
        let at = suspended.then(super::now);
        let done = on_backend!(self, |pool| {
            sqlx::query("update official set suspended_at = $1 where id = $2")
                .bind(at)
                .bind(id)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        Ok(done == 1)
    }
}
