//! Incidents: what an office activates for its municipalities, and what
//! check-ins will belong to.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::{Actor, Guarded, Store, StoreError, audit, on_backend};
use crate::domain::municipality::MunicipalityCode;
use crate::domain::shelter::Hazard;

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Incident {
    pub id: String,
    pub name: String,
    pub hazard: Hazard,
    #[schema(value_type = Vec<String>)]
    pub municipalities: Vec<MunicipalityCode>,
    pub started_at: DateTime<Utc>,
    /// The office that activated it.
    pub created_by: String,
    pub closed_at: Option<DateTime<Utc>>,
    /// When the personal data of its check-ins is deleted (aggregates stay).
    pub purge_at: Option<DateTime<Utc>>,
    /// When it was.
    pub purged_at: Option<DateTime<Utc>>,
}

/// What an office asks for.
pub struct NewIncident {
    pub name: String,
    pub hazard: Hazard,
    pub municipalities: Vec<MunicipalityCode>,
    pub started_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct IncidentRow {
    id: String,
    name: String,
    hazard: String,
    municipalities: String,
    started_at: DateTime<Utc>,
    created_by: String,
    closed_at: Option<DateTime<Utc>>,
    purge_at: Option<DateTime<Utc>>,
    purged_at: Option<DateTime<Utc>>,
}

impl TryFrom<IncidentRow> for Incident {
    type Error = anyhow::Error;

    fn try_from(r: IncidentRow) -> anyhow::Result<Incident> {
        Ok(Incident {
            id: r.id,
            name: r.name,
            hazard: serde_json::from_value(serde_json::Value::String(r.hazard))?,
            municipalities: r
                .municipalities
                .split(',')
                .map(MunicipalityCode::parse)
                .collect::<Result<_, _>>()?,
            started_at: r.started_at,
            created_by: r.created_by,
            closed_at: r.closed_at,
            purge_at: r.purge_at,
            purged_at: r.purged_at,
        })
    }
}

/// sqlx takes only literal SQL: the column list is pasted in at compile time.
macro_rules! select_incident {
    ($rest:literal) => {
        concat!(
            "select id, name, hazard, municipalities, started_at, created_by, closed_at, purge_at, purged_at from incident ",
            $rest
        )
    };
}

fn codes(municipalities: &[MunicipalityCode]) -> String {
    municipalities
        .iter()
        .map(MunicipalityCode::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

impl Store {
    pub async fn create_incident(
        &self,
        actor: &Actor,
        new: NewIncident,
    ) -> Result<Incident, StoreError> {
        let now = super::now();
        let incident = Incident {
            id: uuid::Uuid::now_v7().to_string(),
            name: new.name,
            hazard: new.hazard,
            municipalities: new.municipalities,
            started_at: new.started_at,
            created_by: actor.display_name(),
            closed_at: None,
            purge_at: None,
            purged_at: None,
        };
        let hazard = serde_json::to_value(incident.hazard)
            .map_err(anyhow::Error::from)?
            .as_str()
            .unwrap_or_default()
            .to_owned();
        on_backend!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "insert into incident (id, name, hazard, municipalities, started_at, created_by, created_at) \
                 values ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&incident.id)
            .bind(&incident.name)
            .bind(&hazard)
            .bind(codes(&incident.municipalities))
            .bind(incident.started_at)
            .bind(&incident.created_by)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            audit!(
                &mut *tx,
                actor,
                now,
                "incident.open",
                &incident.id,
                None::<&Incident>,
                Some(&incident),
            )?;
            tx.commit().await?;
            Ok::<_, StoreError>(())
        })?;
        Ok(incident)
    }

    pub async fn incident(&self, id: &str) -> Result<Option<Incident>, StoreError> {
        let row: Option<IncidentRow> = on_backend!(self, |pool| {
            sqlx::query_as(select_incident!("where id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await
        })?;
        Ok(row.map(Incident::try_from).transpose()?)
    }

    /// Newest first; only open ones when `active`; only those covering
    /// `municipality` when given.
    pub async fn incidents(
        &self,
        active: Option<bool>,
        municipality: Option<&MunicipalityCode>,
    ) -> Result<Vec<Incident>, StoreError> {
        // Filtered in the query, before the limit: a municipality's
        // incidents must not disappear behind a thousand others.
        let rows: Vec<IncidentRow> = on_backend!(self, |pool| {
            let mut query = sqlx::QueryBuilder::new(select_incident!("where 1 = 1"));
            match active {
                Some(true) => query.push(" and closed_at is null"),
                Some(false) => query.push(" and closed_at is not null"),
                None => &mut query,
            };
            if let Some(code) = municipality {
                // Six-digit codes, comma-separated: matching `,code,` in
                // `,list,` is exact.
                query
                    .push(" and (',' || municipalities || ',') like ")
                    .push_bind(format!("%,{},%", code.as_str()));
            }
            query.push(" order by started_at desc, id desc limit 1000");
            query.build_query_as().fetch_all(pool).await
        })?;
        Ok(rows
            .into_iter()
            .map(Incident::try_from)
            .collect::<anyhow::Result<Vec<_>>>()?)
    }

    /// Closed incidents whose personal data is due for deletion.
    pub async fn incidents_due_for_purge(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, sqlx::Error> {
        on_backend!(self, |pool| {
            sqlx::query_scalar(
                "select id from incident where purge_at <= $1 and purged_at is null order by purge_at",
            )
            .bind(now)
            .fetch_all(pool)
            .await
        })
    }

    /// Deletes an incident's personal data, keeping `stats`; rows deleted.
    pub async fn purge_incident(
        &self,
        id: &str,
        stats: &crate::stats::IncidentStats,
    ) -> Result<u64, sqlx::Error> {
        let now = super::now();
        on_backend!(self, |pool| {
            let mut tx = pool.begin().await?;
            let mut deleted = 0;
            // Children first: check-ins refer to people.
            for table in [
                "delete from checkin where incident_id = $1",
                "delete from person where incident_id = $1",
                "delete from watch where incident_id = $1",
                "delete from idempotency where incident_id = $1",
            ] {
                deleted += sqlx::query(table)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            sqlx::query("update incident set purged_at = $1, final_stats = $2 where id = $3")
                .bind(now)
                .bind(super::to_json(stats))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(deleted)
        })
    }

    /// The counts kept when the incident's personal data was deleted.
    pub async fn final_stats(
        &self,
        id: &str,
    ) -> Result<Option<crate::stats::IncidentStats>, StoreError> {
        let kept: Option<Option<String>> = on_backend!(self, |pool| {
            sqlx::query_scalar("select final_stats from incident where id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await
        })?;
        Ok(kept
            .flatten()
            .map(|json| serde_json::from_str(&json))
            .transpose()
            .map_err(anyhow::Error::from)?)
    }

    /// Closes an open incident, if `check` accepts it as it is; its personal
    /// data is to go `retention` after now.
    pub async fn close_incident<E>(
        &self,
        actor: &Actor,
        id: &str,
        retention: TimeDelta,
        check: impl FnOnce(&Incident) -> Result<(), E>,
    ) -> Result<Incident, Guarded<E>> {
        let now = super::now();
        on_backend!(self, |pool| {
            let mut tx = pool.begin().await?;
            // Take the row's write lock before reading it.
            let touched = sqlx::query("update incident set name = name where id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if touched.rows_affected() == 0 {
                return Err(Guarded::NotFound);
            }
            let row: IncidentRow = sqlx::query_as(select_incident!("where id = $1"))
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            let before = Incident::try_from(row)?;
            check(&before).map_err(Guarded::Refused)?;
            let after = Incident {
                closed_at: Some(now),
                purge_at: Some(now + retention),
                ..before.clone()
            };
            sqlx::query("update incident set closed_at = $1, purge_at = $2 where id = $3")
                .bind(after.closed_at)
                .bind(after.purge_at)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            audit!(
                &mut *tx,
                actor,
                now,
                "incident.close",
                id,
                Some(&before),
                Some(&after),
            )?;
            tx.commit().await?;
            Ok(after)
        })
    }
}
