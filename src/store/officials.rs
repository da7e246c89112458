//! Emergency offices' tokens.

use super::{Store, on_backend};
use crate::domain::municipality::MunicipalityCode;

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

impl Store {
    /// Records a new official under the keyed hash of its token.
    pub async fn create_official(
        &self,
        name: &str,
        municipalities: &[MunicipalityCode],
        token_hash: &str,
    ) -> Result<Official, sqlx::Error> {
        let codes = municipalities
            .iter()
            .map(MunicipalityCode::as_str)
            .collect::<Vec<_>>()
            .join(",");
        let id: i64 = on_backend!(self, |pool| {
            sqlx::query_scalar(
                "insert into official (name, token_hash, municipalities, created_at) values ($1, $2, $3, $4) returning id",
            )
            .bind(name)
            .bind(token_hash)
            .bind(&codes)
            .bind(super::now())
            .fetch_one(pool)
            .await
        })?;
        Ok(Official {
            id,
            name: name.to_owned(),
            municipalities: municipalities.to_vec(),
        })
    }

    /// The official whose token hashes to `token_hash`, unless revoked.
    pub async fn official_by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<Official>, sqlx::Error> {
        let row: Option<(i64, String, String)> = on_backend!(self, |pool| {
            sqlx::query_as(
                "select id, name, municipalities from official where token_hash = $1 and revoked_at is null",
            )
            .bind(token_hash)
            .fetch_optional(pool)
            .await
        })?;
        Ok(row.map(|(id, name, codes)| Official {
            id,
            name,
            municipalities: codes
                .split(',')
                .filter_map(|c| MunicipalityCode::parse(c).ok())
                .collect(),
        }))
    }
}
