//! Aid requests, offers, claims and reports. Every change is one
//! transaction with its audit row and its live events (`events::aid_*`):
//! public fields to the record's `cell:` and `area:` channels, claims to
//! the private inboxes of the claimant and the requester, and the open
//! counts per category to `area:`. The contact is stored sealed
//! (`seal::Sealer`) and never leaves this module except to a caller that
//! asked for it by name ([`Store::aid_contact`]).

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::outbox::outbox;
use super::{Actor, Guarded, Store, audit, on_backend};
use crate::aid::AidAudience;
use crate::domain::aid::{Category, ClaimStatus, Item, RequestStatus, Urgency};
use crate::domain::municipality::MunicipalityCode;
use crate::domain::shelter::LatLon;
use crate::events::{self, Addressed};

/// A request as stored, without its contact and edit key.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct AidRequest {
    pub id: String,
    #[schema(value_type = String)]
    pub municipality: MunicipalityCode,
    pub category: Category,
    pub items: Vec<Item>,
    /// The sum of the items' quantities.
    pub quantity: i32,
    /// Units held by live or delivered claims.
    pub claimed: i32,
    pub urgency: Urgency,
    /// The exact point: only for the claimant, the requester and the
    /// municipality's office and coordinators.
    pub at: LatLon,
    pub shelter_id: Option<String>,
    pub note: Option<String>,
    pub posted_by: String,
    pub status: RequestStatus,
    /// Hidden after reports, pending a coordinator's or office's decision.
    pub hidden: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub confirmed_at: DateTime<Utc>,
    pub confirmed_by: String,
    /// Raised by every change, in commit order.
    pub version: i64,
}

/// Whether an offer can still be matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OfferStatus {
    Open,
    Withdrawn,
}

/// An offer as stored.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct AidOffer {
    pub id: String,
    #[schema(value_type = String)]
    pub municipality: MunicipalityCode,
    pub category: Category,
    pub items: Vec<Item>,
    pub quantity: i32,
    /// Where from (shown publicly only as its H3 cell's centre).
    pub at: LatLon,
    /// How far its holder can go, in metres.
    pub reach_m: f64,
    pub available_from: Option<DateTime<Utc>>,
    pub available_until: Option<DateTime<Utc>>,
    pub note: Option<String>,
    /// The volunteer or coordinator who made it.
    pub account_id: i64,
    pub posted_by: String,
    pub status: OfferStatus,
    pub hidden: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub confirmed_at: DateTime<Utc>,
    pub confirmed_by: String,
    /// Raised by every change, in commit order.
    pub version: i64,
}

/// A volunteer's hold on part of a request.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Claim {
    pub id: String,
    pub request_id: String,
    pub account_id: i64,
    pub quantity: i32,
    pub status: ClaimStatus,
    pub created_at: DateTime<Utc>,
    /// Not delivered by then, it lapses and its quantity returns to the request.
    pub due_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    /// Why it was released or lapsed.
    pub reason: Option<String>,
}

/// A claim made, with what its holder is answered: the request's sealed
/// contact and every claim on it, read in the claim's own transaction.
pub struct Claimed {
    pub claim: Claim,
    pub request: AidRequest,
    pub contact: Option<Vec<u8>>,
    pub claims: Vec<Claim>,
}

/// Whether a request counts among its area's open requests.
fn counted(r: &AidRequest) -> bool {
    matches!(
        r.status,
        RequestStatus::Open | RequestStatus::PartiallyClaimed
    ) && !r.hidden
}

/// A claim to make: `quantity` units of a request for an account, due by
/// `due_at`.
pub struct NewClaim<'a> {
    pub request_id: &'a str,
    pub account_id: i64,
    pub quantity: i32,
    pub due_at: DateTime<Utc>,
}

/// What a claim may not exceed, checked in the claim's own transaction.
#[derive(Clone, Copy, Debug)]
pub struct Throttle {
    /// Undelivered claims a volunteer may hold before its record counts.
    pub max_open: i64,
    /// Share of its closed claims that must have been delivered.
    pub min_ratio: f64,
}

/// Why a claim was refused.
#[derive(Debug, PartialEq)]
pub enum ClaimRefusal {
    /// The request is not open for claims (its status).
    NotActive(RequestStatus),
    /// More than what is left (units remaining).
    TooMuch { remaining: i32 },
    /// Too many undelivered claims for the volunteer's delivery record.
    Throttled {
        open: i64,
        delivered: i64,
        closed: i64,
    },
}

/// A record people can report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    Request,
    Offer,
}

impl RecordKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Request => "request",
            RecordKind::Offer => "offer",
        }
    }
}

#[derive(sqlx::FromRow)]
struct RequestRow {
    id: String,
    municipality: String,
    category: String,
    items: String,
    quantity: i32,
    claimed: i32,
    urgency: String,
    lat: f64,
    lon: f64,
    shelter_id: Option<String>,
    note: Option<String>,
    posted_by: String,
    status: String,
    hidden: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    confirmed_at: DateTime<Utc>,
    confirmed_by: String,
    version: i64,
}

macro_rules! request_columns {
    () => {
        "id, municipality, category, items, quantity, claimed, urgency, lat, lon, \
     shelter_id, note, posted_by, status, hidden, created_at, updated_at, confirmed_at, confirmed_by, version"
    };
}

impl TryFrom<RequestRow> for AidRequest {
    type Error = anyhow::Error;
    fn try_from(r: RequestRow) -> anyhow::Result<AidRequest> {
        Ok(AidRequest {
            municipality: MunicipalityCode::parse(&r.municipality)?,
            category: Category::parse(&r.category)
                .ok_or_else(|| anyhow::anyhow!("unknown category {}", r.category))?,
            items: serde_json::from_str(&r.items)?,
            quantity: r.quantity,
            claimed: r.claimed,
            urgency: Urgency::parse(&r.urgency)
                .ok_or_else(|| anyhow::anyhow!("unknown urgency {}", r.urgency))?,
            at: LatLon::new(r.lat, r.lon).map_err(anyhow::Error::msg)?,
            shelter_id: r.shelter_id,
            note: r.note,
            posted_by: r.posted_by,
            status: RequestStatus::parse(&r.status)
                .ok_or_else(|| anyhow::anyhow!("unknown status {}", r.status))?,
            hidden: r.hidden,
            created_at: r.created_at,
            updated_at: r.updated_at,
            confirmed_at: r.confirmed_at,
            confirmed_by: r.confirmed_by,
            version: r.version,
            id: r.id,
        })
    }
}

#[derive(sqlx::FromRow)]
struct OfferRow {
    id: String,
    municipality: String,
    category: String,
    items: String,
    quantity: i32,
    lat: f64,
    lon: f64,
    reach_m: f64,
    available_from: Option<DateTime<Utc>>,
    available_until: Option<DateTime<Utc>>,
    note: Option<String>,
    account_id: i64,
    posted_by: String,
    status: String,
    hidden: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    confirmed_at: DateTime<Utc>,
    confirmed_by: String,
    version: i64,
}

macro_rules! offer_columns {
    () => {
        "id, municipality, category, items, quantity, lat, lon, reach_m, \
     available_from, available_until, note, account_id, posted_by, status, hidden, created_at, \
     updated_at, confirmed_at, confirmed_by, version"
    };
}

impl TryFrom<OfferRow> for AidOffer {
    type Error = anyhow::Error;
    fn try_from(r: OfferRow) -> anyhow::Result<AidOffer> {
        Ok(AidOffer {
            municipality: MunicipalityCode::parse(&r.municipality)?,
            category: Category::parse(&r.category)
                .ok_or_else(|| anyhow::anyhow!("unknown category {}", r.category))?,
            items: serde_json::from_str(&r.items)?,
            quantity: r.quantity,
            at: LatLon::new(r.lat, r.lon).map_err(anyhow::Error::msg)?,
            reach_m: r.reach_m,
            available_from: r.available_from,
            available_until: r.available_until,
            note: r.note,
            account_id: r.account_id,
            posted_by: r.posted_by,
            status: if r.status == "open" {
                OfferStatus::Open
            } else {
                OfferStatus::Withdrawn
            },
            hidden: r.hidden,
            created_at: r.created_at,
            updated_at: r.updated_at,
            confirmed_at: r.confirmed_at,
            confirmed_by: r.confirmed_by,
            version: r.version,
            id: r.id,
        })
    }
}

#[derive(sqlx::FromRow)]
struct ClaimRow {
    id: String,
    request_id: String,
    account_id: i64,
    quantity: i32,
    status: String,
    created_at: DateTime<Utc>,
    due_at: DateTime<Utc>,
    closed_at: Option<DateTime<Utc>>,
    reason: Option<String>,
}

macro_rules! claim_columns {
    () => {
        "id, request_id, account_id, quantity, status, created_at, due_at, closed_at, reason"
    };
}

impl TryFrom<ClaimRow> for Claim {
    type Error = anyhow::Error;
    fn try_from(r: ClaimRow) -> anyhow::Result<Claim> {
        Ok(Claim {
            status: ClaimStatus::parse(&r.status)
                .ok_or_else(|| anyhow::anyhow!("unknown claim status {}", r.status))?,
            id: r.id,
            request_id: r.request_id,
            account_id: r.account_id,
            quantity: r.quantity,
            created_at: r.created_at,
            due_at: r.due_at,
            closed_at: r.closed_at,
            reason: r.reason,
        })
    }
}

/// Writes every mutable column of a request.
macro_rules! write_request {
    ($exec:expr, $r:expr, $contact:expr) => {
        sqlx::query(
            "update aid_request set category = $2, items = $3, quantity = $4, claimed = $5, \
             urgency = $6, lat = $7, lon = $8, note = $9, status = $10, hidden = $11, \
             updated_at = $12, confirmed_at = $13, confirmed_by = $14, contact = $15, \
             version = version + 1 where id = $1",
        )
        .bind(&$r.id)
        .bind($r.category.as_str())
        .bind(super::to_json(&$r.items))
        .bind($r.quantity)
        .bind($r.claimed)
        .bind($r.urgency.as_str())
        .bind($r.at.lat)
        .bind($r.at.lon)
        .bind(&$r.note)
        .bind($r.status.as_str())
        .bind($r.hidden)
        .bind($r.updated_at)
        .bind($r.confirmed_at)
        .bind(&$r.confirmed_by)
        .bind($contact)
        .execute($exec)
        .await
    };
}

/// Writes every mutable column of an offer.
macro_rules! write_offer {
    ($exec:expr, $o:expr) => {
        sqlx::query(
            "update aid_offer set category = $2, items = $3, quantity = $4, lat = $5, lon = $6, \
             reach_m = $7, available_from = $8, available_until = $9, note = $10, status = $11, \
             hidden = $12, updated_at = $13, confirmed_at = $14, confirmed_by = $15, \
             version = version + 1 where id = $1",
        )
        .bind(&$o.id)
        .bind($o.category.as_str())
        .bind(super::to_json(&$o.items))
        .bind($o.quantity)
        .bind($o.at.lat)
        .bind($o.at.lon)
        .bind($o.reach_m)
        .bind($o.available_from)
        .bind($o.available_until)
        .bind(&$o.note)
        .bind(match $o.status {
            OfferStatus::Open => "open",
            OfferStatus::Withdrawn => "withdrawn",
        })
        .bind($o.hidden)
        .bind($o.updated_at)
        .bind($o.confirmed_at)
        .bind(&$o.confirmed_by)
        .execute($exec)
        .await
    };
}

/// The open requests per category of a municipality, read in the writing
/// transaction so the counts published are those it committed.
macro_rules! open_counts {
    ($exec:expr, $municipality:expr) => {{
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "select category, count(*) from aid_request where municipality = $1 \
             and status in ('open', 'partially_claimed') and hidden = $2 group by category",
        )
        .bind($municipality.as_str())
        .bind(false)
        .fetch_all($exec)
        .await?;
        rows
    }};
}

/// The holders of a request's live or delivered claims, whose inboxes hear of it.
macro_rules! live_claimants {
    ($exec:expr, $request_id:expr) => {{
        let ids: Vec<i64> = sqlx::query_scalar(
            "select distinct account_id from aid_claim where request_id = $1 \
             and status in ('live', 'delivered')",
        )
        .bind($request_id)
        .fetch_all($exec)
        .await?;
        ids
    }};
}

/// The events of a changed request: public, counts, inboxes of the
/// requester and of the holders of its live claims.
/// `$recount`: whether the change moved the request into or out of the
/// open set, so the area's counts changed — the counts are read only then,
/// which keeps the count out of the many claims that leave it open.
macro_rules! request_events {
    ($exec:expr, $request:expr, $inboxes:expr, $claimants:expr, $recount:expr, $extra:expr) => {{
        let counts = if $recount {
            Some(open_counts!(&mut *$exec, &$request.municipality))
        } else {
            None
        };
        let mut out: Vec<Addressed> =
            events::aid_request_changed($request, $inboxes, $claimants, counts);
        out.extend($extra);
        outbox!($exec, &out)
    }};
}

impl Store {
    /// Stores a new request with its sealed contact and its edit key's hash
    /// (and, posted with an Idempotency-Key, the key and the body's hash).
    pub async fn insert_aid_request(
        &self,
        actor: &Actor,
        request: &AidRequest,
        contact: Option<Vec<u8>>,
        edit_hash: &str,
        idempotency: Option<(&str, &str)>,
        inboxes: &AidAudience,
    ) -> Result<(), sqlx::Error> {
        let r = request;
        on_backend!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "insert into aid_request (id, municipality, category, items, quantity, claimed, urgency, \
                 lat, lon, shelter_id, note, contact, edit_hash, posted_by, status, hidden, created_at, \
                 updated_at, confirmed_at, confirmed_by) \
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)",
            )
            .bind(&r.id)
            .bind(r.municipality.as_str())
            .bind(r.category.as_str())
            .bind(super::to_json(&r.items))
            .bind(r.quantity)
            .bind(r.claimed)
            .bind(r.urgency.as_str())
            .bind(r.at.lat)
            .bind(r.at.lon)
            .bind(&r.shelter_id)
            .bind(&r.note)
            .bind(contact)
            .bind(edit_hash)
            .bind(&r.posted_by)
            .bind(r.status.as_str())
            .bind(r.hidden)
            .bind(r.created_at)
            .bind(r.updated_at)
            .bind(r.confirmed_at)
            .bind(&r.confirmed_by)
            .execute(&mut *tx)
            .await?;
            if let Some((key, body_hash)) = idempotency {
                sqlx::query(
                    "insert into aid_idempotency (key, body_hash, request_id, created_at) \
                     values ($1, $2, $3, $4)",
                )
                .bind(key)
                .bind(body_hash)
                .bind(&r.id)
                .bind(r.created_at)
                .execute(&mut *tx)
                .await?;
            }
            audit!(
                &mut *tx,
                actor,
                r.created_at,
                "aid.request.post",
                &r.id,
                None::<&AidRequest>,
                Some(r),
            )?;
            request_events!(&mut *tx, r, inboxes, &[], true, [])?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Changes a request under a row lock: `change` sees it as stored and
    /// edits it (and, given `Some`, replaces the sealed contact), or refuses.
    pub async fn change_aid_request<E>(
        &self,
        actor: &Actor,
        id: &str,
        action: &str,
        inboxes: &AidAudience,
        change: impl FnOnce(&mut AidRequest) -> Result<Option<Option<Vec<u8>>>, E>,
    ) -> Result<AidRequest, Guarded<E>> {
        let now = super::now();
        on_backend!(self, |pool| {
            let mut tx = pool.begin().await?;
            let touched = sqlx::query("update aid_request set status = status where id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if touched.rows_affected() == 0 {
                return Err(Guarded::NotFound);
            }
            let row: RequestRow = sqlx::query_as(concat!(
                "select ",
                request_columns!(),
                " from aid_request where id = $1"
            ))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
            let before = AidRequest::try_from(row)?;
            let mut after = before.clone();
            let contact = change(&mut after).map_err(Guarded::Refused)?;
            after.updated_at = now;
            after.version = before.version + 1;
            let contact = match contact {
                Some(new) => new,
                None => {
                    sqlx::query_scalar::<_, Option<Vec<u8>>>(
                        "select contact from aid_request where id = $1",
                    )
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?
                }
            };
            write_request!(&mut *tx, &after, contact)?;
            audit!(
                &mut *tx,
                actor,
                now,
                action,
                id,
                Some(&before),
                Some(&after)
            )?;
            let claimants = live_claimants!(&mut *tx, id);
            // Receipt confirmed: the delivered claims are received, in the
            // same transaction (their holders hear of it with the request).
            if after.status == RequestStatus::Fulfilled && before.status != after.status {
                sqlx::query(
                    "update aid_claim set status = 'received' where request_id = $1 and status = 'delivered'",
                )
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
            request_events!(
                &mut *tx,
                &after,
                inboxes,
                &claimants,
                counted(&before) != counted(&after),
                []
            )?;
            tx.commit().await?;
            Ok::<_, Guarded<E>>(after)
        })
    }

    /// Claims `quantity` units of a request for `account`, unless that
    /// would take more than is left (checked by the update itself, so no
    /// interleaving of claims anywhere can over-claim) or the throttle
    /// refuses.
    pub async fn claim_aid(
        &self,
        actor: &Actor,
        new: &NewClaim<'_>,
        throttle: Throttle,
        inboxes: &AidAudience,
    ) -> Result<Claimed, Guarded<ClaimRefusal>> {
        let (request_id, account_id, quantity) = (new.request_id, new.account_id, new.quantity);
        let now = super::now();
        let claim = Claim {
            id: uuid::Uuid::now_v7().to_string(),
            request_id: request_id.to_owned(),
            account_id,
            quantity,
            status: ClaimStatus::Live,
            created_at: now,
            due_at: new.due_at,
            closed_at: None,
            reason: None,
        };
        on_backend!(self, |pool| {
            let mut tx = pool.begin().await?;
            // Write first: on SQLite a transaction that read before its
            // first write fails when another writer committed in between.
            let touched = sqlx::query("update aid_request set status = status where id = $1")
                .bind(request_id)
                .execute(&mut *tx)
                .await?;
            if touched.rows_affected() == 0 {
                return Err(Guarded::NotFound);
            }
            let (open, delivered, closed): (i64, i64, i64) = sqlx::query_as(
                "select \
                   coalesce(sum(case when status = 'live' then 1 else 0 end), 0), \
                   coalesce(sum(case when status in ('delivered', 'received') then 1 else 0 end), 0), \
                   coalesce(sum(case when status in ('delivered', 'received', 'lapsed') then 1 else 0 end), 0) \
                 from aid_claim where account_id = $1",
            )
            .bind(account_id)
            .fetch_one(&mut *tx)
            .await?;
            let ratio = if closed == 0 {
                1.0
            } else {
                delivered as f64 / closed as f64
            };
            if open >= throttle.max_open && ratio < throttle.min_ratio {
                return Err(Guarded::Refused(ClaimRefusal::Throttled {
                    open,
                    delivered,
                    closed,
                }));
            }
            let taken = sqlx::query(
                "update aid_request set claimed = claimed + $2, \
                 status = case when claimed + $2 >= quantity then 'claimed' else 'partially_claimed' end, \
                 updated_at = $3, version = version + 1 \
                 where id = $1 and hidden = $4 and status in ('open', 'partially_claimed') \
                 and claimed + $2 <= quantity",
            )
            .bind(request_id)
            .bind(quantity)
            .bind(now)
            .bind(false)
            .execute(&mut *tx)
            .await?;
            let row: Option<RequestRow> = sqlx::query_as(concat!(
                "select ",
                request_columns!(),
                " from aid_request where id = $1"
            ))
            .bind(request_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else {
                return Err(Guarded::NotFound);
            };
            let request = AidRequest::try_from(row)?;
            if taken.rows_affected() == 0 {
                return Err(Guarded::Refused(
                    if matches!(
                        request.status,
                        RequestStatus::Open | RequestStatus::PartiallyClaimed
                    ) && !request.hidden
                    {
                        ClaimRefusal::TooMuch {
                            remaining: request.quantity - request.claimed,
                        }
                    } else {
                        ClaimRefusal::NotActive(request.status)
                    },
                ));
            }
            sqlx::query(
                "insert into aid_claim (id, request_id, account_id, quantity, status, created_at, due_at) \
                 values ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&claim.id)
            .bind(request_id)
            .bind(account_id)
            .bind(quantity)
            .bind(claim.status.as_str())
            .bind(now)
            .bind(new.due_at)
            .execute(&mut *tx)
            .await?;
            audit!(
                &mut *tx,
                actor,
                now,
                "aid.claim",
                &claim.id,
                None::<&Claim>,
                Some(&claim)
            )?;
            // The claimant hears of it (and the requester, and the area); the
            // other claimants need not: on a hot request that would be one
            // event per claimant per claim.
            request_events!(
                &mut *tx,
                &request,
                inboxes,
                &[account_id],
                // It was open or partly claimed; it leaves the open set when full.
                request.status == RequestStatus::Claimed,
                events::aid_claim_changed(&claim, &request, inboxes)
            )?;
            // What the claimant is answered with, read here: once the claim
            // is committed, the answer must not depend on another query
            // that could fail and report a stored claim as refused.
            let contact: Option<Vec<u8>> =
                sqlx::query_scalar("select contact from aid_request where id = $1")
                    .bind(request_id)
                    .fetch_one(&mut *tx)
                    .await?;
            let claims: Vec<ClaimRow> = sqlx::query_as(concat!(
                "select ",
                claim_columns!(),
                " from aid_claim where request_id = $1 order by created_at"
            ))
            .bind(request_id)
            .fetch_all(&mut *tx)
            .await?;
            let claims = claims
                .into_iter()
                .map(Claim::try_from)
                .collect::<anyhow::Result<_>>()?;
            tx.commit().await?;
            Ok(Claimed {
                claim,
                request,
                contact,
                claims,
            })
        })
    }

    /// Moves a claim on: delivered, released or lapsed (the latter two give
    /// its quantity back to the request) — only from `live`. `check` sees
    /// the claim first and may refuse.
    pub async fn close_claim<E>(
        &self,
        actor: &Actor,
        claim_id: &str,
        to: ClaimStatus,
        reason: Option<&str>,
        inboxes: &AidAudience,
        check: impl FnOnce(&Claim) -> Result<(), E>,
    ) -> Result<(Claim, AidRequest), Guarded<CloseRefusal<E>>> {
        let now = super::now();
        on_backend!(self, |pool| {
            let mut tx = pool.begin().await?;
            let touched = sqlx::query("update aid_claim set status = status where id = $1")
                .bind(claim_id)
                .execute(&mut *tx)
                .await?;
            if touched.rows_affected() == 0 {
                return Err(Guarded::NotFound);
            }
            let row: ClaimRow = sqlx::query_as(concat!(
                "select ",
                claim_columns!(),
                " from aid_claim where id = $1"
            ))
            .bind(claim_id)
            .fetch_one(&mut *tx)
            .await?;
            let before = Claim::try_from(row)?;
            check(&before).map_err(|e| Guarded::Refused(CloseRefusal::Check(e)))?;
            if before.status != ClaimStatus::Live {
                return Err(Guarded::Refused(CloseRefusal::NotLive(before.status)));
            }
            let mut after = before.clone();
            after.status = to;
            after.closed_at = Some(now);
            after.reason = reason.map(str::to_owned);
            sqlx::query(
                "update aid_claim set status = $2, closed_at = $3, reason = $4 where id = $1",
            )
            .bind(claim_id)
            .bind(to.as_str())
            .bind(now)
            .bind(reason)
            .execute(&mut *tx)
            .await?;
            let gives_back = matches!(to, ClaimStatus::Released | ClaimStatus::Lapsed);
            if gives_back {
                sqlx::query(
                    "update aid_request set claimed = claimed - $2, updated_at = $3, version = version + 1, \
                     status = case when status in ('open', 'partially_claimed', 'claimed') then \
                        case when claimed - $2 <= 0 then 'open' else 'partially_claimed' end \
                     else status end \
                     where id = $1",
                )
                .bind(&before.request_id)
                .bind(before.quantity)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            let row: RequestRow = sqlx::query_as(concat!(
                "select ",
                request_columns!(),
                " from aid_request where id = $1"
            ))
            .bind(&before.request_id)
            .fetch_one(&mut *tx)
            .await?;
            let request = AidRequest::try_from(row)?;
            audit!(
                &mut *tx,
                actor,
                now,
                format!("aid.claim.{}", to.as_str()),
                claim_id,
                Some(&before),
                Some(&after)
            )?;
            let claimants = [before.account_id];
            // Given back to a request that was full: it is open again.
            let reopened = gives_back
                && counted(&request)
                && request.claimed + before.quantity >= request.quantity;
            request_events!(
                &mut *tx,
                &request,
                inboxes,
                &claimants,
                reopened,
                events::aid_claim_changed(&after, &request, inboxes)
            )?;
            tx.commit().await?;
            Ok((after, request))
        })
    }

    /// Stores a new offer.
    pub async fn insert_aid_offer(
        &self,
        actor: &Actor,
        offer: &AidOffer,
        audience: &AidAudience,
    ) -> Result<(), sqlx::Error> {
        let o = offer;
        on_backend!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "insert into aid_offer (id, municipality, category, items, quantity, lat, lon, reach_m, \
                 available_from, available_until, note, account_id, posted_by, status, hidden, \
                 created_at, updated_at, confirmed_at, confirmed_by) \
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
            )
            .bind(&o.id)
            .bind(o.municipality.as_str())
            .bind(o.category.as_str())
            .bind(super::to_json(&o.items))
            .bind(o.quantity)
            .bind(o.at.lat)
            .bind(o.at.lon)
            .bind(o.reach_m)
            .bind(o.available_from)
            .bind(o.available_until)
            .bind(&o.note)
            .bind(o.account_id)
            .bind(&o.posted_by)
            .bind("open")
            .bind(o.hidden)
            .bind(o.created_at)
            .bind(o.updated_at)
            .bind(o.confirmed_at)
            .bind(&o.confirmed_by)
            .execute(&mut *tx)
            .await?;
            audit!(
                &mut *tx,
                actor,
                o.created_at,
                "aid.offer.post",
                &o.id,
                None::<&AidOffer>,
                Some(o)
            )?;
            outbox!(&mut *tx, &events::aid_offer_changed(o, audience))?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Changes an offer under a row lock, as [`Store::change_aid_request`].
    pub async fn change_aid_offer<E>(
        &self,
        actor: &Actor,
        id: &str,
        action: &str,
        audience: &AidAudience,
        change: impl FnOnce(&mut AidOffer) -> Result<(), E>,
    ) -> Result<AidOffer, Guarded<E>> {
        let now = super::now();
        on_backend!(self, |pool| {
            let mut tx = pool.begin().await?;
            let touched = sqlx::query("update aid_offer set status = status where id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if touched.rows_affected() == 0 {
                return Err(Guarded::NotFound);
            }
            let row: OfferRow = sqlx::query_as(concat!(
                "select ",
                offer_columns!(),
                " from aid_offer where id = $1"
            ))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
            let before = AidOffer::try_from(row)?;
            let mut after = before.clone();
            change(&mut after).map_err(Guarded::Refused)?;
            after.updated_at = now;
            after.version = before.version + 1;
            write_offer!(&mut *tx, &after)?;
            audit!(
                &mut *tx,
                actor,
                now,
                action,
                id,
                Some(&before),
                Some(&after)
            )?;
            outbox!(&mut *tx, &events::aid_offer_changed(&after, audience))?;
            tx.commit().await?;
            Ok::<_, Guarded<E>>(after)
        })
    }

    /// Asks the owners of records confirmed before their cut-off (and not
    /// asked since) to reconfirm, on their inboxes: once per staleness.
    /// Returns how many were asked.
    pub async fn remind_stale_aid(
        &self,
        requests_before: DateTime<Utc>,
        offers_before: DateTime<Utc>,
        audience: &AidAudience,
    ) -> Result<usize, sqlx::Error> {
        let now = super::now();
        let mut asked = 0;
        for (kind, before) in [
            (RecordKind::Request, requests_before),
            (RecordKind::Offer, offers_before),
        ] {
            let (select, mark) = match kind {
                RecordKind::Request => (
                    "select id, confirmed_at, cast(0 as bigint) from aid_request \
                     where status in ('open', 'partially_claimed') and hidden = $1 and confirmed_at < $2 \
                     and (reminded_at is null or reminded_at < confirmed_at) limit 500",
                    "update aid_request set reminded_at = $2 where id = $1 \
                     and (reminded_at is null or reminded_at < confirmed_at)",
                ),
                RecordKind::Offer => (
                    "select id, confirmed_at, account_id from aid_offer \
                     where status = 'open' and hidden = $1 and confirmed_at < $2 \
                     and (reminded_at is null or reminded_at < confirmed_at) limit 500",
                    "update aid_offer set reminded_at = $2 where id = $1 \
                     and (reminded_at is null or reminded_at < confirmed_at)",
                ),
            };
            let due: Vec<(String, DateTime<Utc>, i64)> = on_backend!(self, |pool| {
                sqlx::query_as(select)
                    .bind(false)
                    .bind(before)
                    .fetch_all(pool)
                    .await
            })?;
            for (id, confirmed_at, account) in due {
                let inbox = match kind {
                    RecordKind::Request => audience.requester_inbox(&id),
                    RecordKind::Offer => audience.account_inbox(account),
                };
                let event = events::reconfirm(
                    inbox,
                    events::Reminder {
                        kind: kind.as_str(),
                        id: id.clone(),
                        confirmed_at,
                    },
                );
                let marked = on_backend!(self, |pool| {
                    let mut tx = pool.begin().await?;
                    let marked = sqlx::query(mark)
                        .bind(&id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    if marked == 1 {
                        outbox!(&mut *tx, std::slice::from_ref(&event))?;
                    }
                    tx.commit().await?;
                    Ok::<_, sqlx::Error>(marked)
                })?;
                asked += marked as usize;
            }
        }
        Ok(asked)
    }

    /// Records one reporter's report (a second one from the same reporter
    /// counts once); returns how many distinct reporters there are now.
    pub async fn report_aid(
        &self,
        kind: RecordKind,
        id: &str,
        reporter: &str,
        reason: &str,
    ) -> Result<i64, sqlx::Error> {
        on_backend!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "insert into aid_report (kind, target, reporter, reason, at) values ($1, $2, $3, $4, $5) \
                 on conflict (kind, target, reporter) do nothing",
            )
            .bind(kind.as_str())
            .bind(id)
            .bind(reporter)
            .bind(reason)
            .bind(super::now())
            .execute(&mut *tx)
            .await?;
            let n: i64 = sqlx::query_scalar(
                "select count(*) from aid_report where kind = $1 and target = $2",
            )
            .bind(kind.as_str())
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(n)
        })
    }

    /// The reports on a record, for the moderation queue: (reason, count).
    pub async fn aid_reports(
        &self,
        kind: RecordKind,
        id: &str,
    ) -> Result<Vec<(String, i64)>, sqlx::Error> {
        on_backend!(self, |pool| sqlx::query_as(
            "select reason, count(*) from aid_report where kind = $1 and target = $2 \
             group by reason order by reason"
        )
        .bind(kind.as_str())
        .bind(id)
        .fetch_all(pool)
        .await)
    }

    /// Clears a record's reports (after a decision to keep it).
    pub async fn clear_aid_reports(&self, kind: RecordKind, id: &str) -> Result<(), sqlx::Error> {
        on_backend!(self, |pool| sqlx::query(
            "delete from aid_report where kind = $1 and target = $2"
        )
        .bind(kind.as_str())
        .bind(id)
        .execute(pool)
        .await
        .map(|_| ()))
    }

    pub async fn aid_request(&self, id: &str) -> Result<Option<AidRequest>, super::StoreError> {
        let row: Option<RequestRow> = on_backend!(self, |pool| {
            sqlx::query_as(concat!(
                "select ",
                request_columns!(),
                " from aid_request where id = $1"
            ))
            .bind(id)
            .fetch_optional(pool)
            .await
        })?;
        Ok(row.map(AidRequest::try_from).transpose()?)
    }

    /// The request an Idempotency-Key was first used for: (body hash, id).
    pub async fn aid_request_by_key(
        &self,
        key: &str,
    ) -> Result<Option<(String, String)>, sqlx::Error> {
        on_backend!(self, |pool| sqlx::query_as(
            "select body_hash, request_id from aid_idempotency where key = $1"
        )
        .bind(key)
        .fetch_optional(pool)
        .await)
    }

    /// The sealed contact and the edit key's hash of a request.
    pub async fn aid_request_secrets(
        &self,
        id: &str,
    ) -> Result<Option<(Option<Vec<u8>>, String)>, sqlx::Error> {
        on_backend!(self, |pool| sqlx::query_as(
            "select contact, edit_hash from aid_request where id = $1"
        )
        .bind(id)
        .fetch_optional(pool)
        .await)
    }

    pub async fn aid_offer(&self, id: &str) -> Result<Option<AidOffer>, super::StoreError> {
        let row: Option<OfferRow> = on_backend!(self, |pool| {
            sqlx::query_as(concat!(
                "select ",
                offer_columns!(),
                " from aid_offer where id = $1"
            ))
            .bind(id)
            .fetch_optional(pool)
            .await
        })?;
        Ok(row.map(AidOffer::try_from).transpose()?)
    }

    /// Requests still waiting for help, and visible: the matching index.
    pub async fn active_aid_requests(&self) -> Result<Vec<AidRequest>, super::StoreError> {
        let rows: Vec<RequestRow> = on_backend!(self, |pool| {
            sqlx::query_as(concat!(
                "select ",
                request_columns!(),
                " from aid_request \
                 where status in ('open', 'partially_claimed', 'claimed') and hidden = $1"
            ))
            .bind(false)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows
            .into_iter()
            .map(AidRequest::try_from)
            .collect::<anyhow::Result<_>>()?)
    }

    /// Open, visible offers: the matching index.
    pub async fn open_aid_offers(&self) -> Result<Vec<AidOffer>, super::StoreError> {
        let rows: Vec<OfferRow> = on_backend!(self, |pool| {
            sqlx::query_as(concat!(
                "select ",
                offer_columns!(),
                " from aid_offer where status = 'open' and hidden = $1"
            ))
            .bind(false)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows
            .into_iter()
            .map(AidOffer::try_from)
            .collect::<anyhow::Result<_>>()?)
    }

    /// Hidden records of these municipalities, for the moderation queue.
    pub async fn hidden_aid(
        &self,
        municipalities: &[MunicipalityCode],
    ) -> Result<(Vec<AidRequest>, Vec<AidOffer>), super::StoreError> {
        let (mut requests, mut offers) = (Vec::new(), Vec::new());
        for code in municipalities {
            let rows: Vec<RequestRow> = on_backend!(self, |pool| {
                sqlx::query_as(concat!(
                    "select ",
                    request_columns!(),
                    " from aid_request where hidden = $1 and municipality = $2 order by updated_at"
                ))
                .bind(true)
                .bind(code.as_str())
                .fetch_all(pool)
                .await
            })?;
            for row in rows {
                requests.push(AidRequest::try_from(row)?);
            }
            let rows: Vec<OfferRow> = on_backend!(self, |pool| {
                sqlx::query_as(concat!(
                    "select ",
                    offer_columns!(),
                    " from aid_offer where hidden = $1 and municipality = $2 order by updated_at"
                ))
                .bind(true)
                .bind(code.as_str())
                .fetch_all(pool)
                .await
            })?;
            for row in rows {
                offers.push(AidOffer::try_from(row)?);
            }
        }
        Ok((requests, offers))
    }

    pub async fn aid_claim(&self, id: &str) -> Result<Option<Claim>, super::StoreError> {
        let row: Option<ClaimRow> = on_backend!(self, |pool| {
            sqlx::query_as(concat!(
                "select ",
                claim_columns!(),
                " from aid_claim where id = $1"
            ))
            .bind(id)
            .fetch_optional(pool)
            .await
        })?;
        Ok(row.map(Claim::try_from).transpose()?)
    }

    /// Claims on a request, oldest first.
    pub async fn claims_on(&self, request_id: &str) -> Result<Vec<Claim>, super::StoreError> {
        let rows: Vec<ClaimRow> = on_backend!(self, |pool| {
            sqlx::query_as(concat!(
                "select ",
                claim_columns!(),
                " from aid_claim where request_id = $1 order by created_at"
            ))
            .bind(request_id)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows
            .into_iter()
            .map(Claim::try_from)
            .collect::<anyhow::Result<_>>()?)
    }

    /// A volunteer's claims, newest first.
    pub async fn claims_of(&self, account_id: i64) -> Result<Vec<Claim>, super::StoreError> {
        let rows: Vec<ClaimRow> = on_backend!(self, |pool| {
            sqlx::query_as(concat!(
                "select ",
                claim_columns!(),
                " from aid_claim where account_id = $1 order by created_at desc limit 200"
            ))
            .bind(account_id)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows
            .into_iter()
            .map(Claim::try_from)
            .collect::<anyhow::Result<_>>()?)
    }

    /// Live claims whose time ran out.
    pub async fn claims_due(&self, now: DateTime<Utc>) -> Result<Vec<Claim>, super::StoreError> {
        let rows: Vec<ClaimRow> = on_backend!(self, |pool| {
            sqlx::query_as(concat!(
                "select ",
                claim_columns!(),
                " from aid_claim where status = 'live' and due_at < $1 limit 500"
            ))
            .bind(now)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows
            .into_iter()
            .map(Claim::try_from)
            .collect::<anyhow::Result<_>>()?)
    }

    /// Ids of open requests not reconfirmed since `before`.
    pub async fn aid_requests_unconfirmed_since(
        &self,
        before: DateTime<Utc>,
    ) -> Result<Vec<String>, sqlx::Error> {
        on_backend!(self, |pool| sqlx::query_scalar(
            "select id from aid_request where status in ('open', 'partially_claimed') \
             and confirmed_at < $1 limit 500"
        )
        .bind(before)
        .fetch_all(pool)
        .await)
    }
}

/// Why a claim could not be moved on.
#[derive(Debug)]
pub enum CloseRefusal<E> {
    /// The caller's check refused.
    Check(E),
    /// Only a live claim can be delivered, released or lapse (its status).
    NotLive(ClaimStatus),
}
