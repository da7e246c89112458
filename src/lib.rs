//! anpi (安否, "are you safe?"): a disaster-response information hub.
//!
//! After an earthquake, flood or tsunami, residents find the nearest open
//! shelter for the hazard at hand, emergency offices post which shelters are
//! open and how full they are, and everything updates live.
//!
//! # Layout
//!
//! Every change takes one path: an edge ([`http`], [`cli`], a job) parses it,
//! a use case ([`usecase`]) decides whether it may happen and applies the
//! rules, the [`store`] writes the data and its typed live [`events`] into the
//! outbox in one transaction, and the outbox relay in [`live`] publishes them
//! through the broker to every instance's WebSocket subscribers.
//!
//! - [`cli`] and [`config`]: the command line (`anpi serve`, `anpi token create`,
//!   `anpi import …`, `anpi replay`); `main.rs` only calls [`cli::run`].
//! - [`app`]: start-up (store, secret, sample data, index, live node, check-in
//!   writer) and [`app::serve`], which takes an already-bound listener and a
//!   shutdown future, and stops the jobs and drains the outbox after it.
//! - [`http`]: the axum router, one module per resource, the problem+json
//!   error ([`http::problem`]), the official behind a token, the metrics
//!   middleware, the OpenAPI document, the embedded web UI, and the accept
//!   loop that bounds connections in time and number ([`http::server`]).
//! - [`usecase`]: one function per thing a person or job does; who may do it.
//! - [`error`]: [`error::DomainError`] and [`error::FieldError`], the use cases' words.
//! - [`checkin`]: the surge write path (bounded queue, batch writers, counts).
//! - [`events`]: every kind of live event, where it goes, one serialisation.
//! - [`live`]: channels, the broker (in process or Redis), the outbox relay,
//!   the hub of local subscribers and each WebSocket's reader and writer.
//! - [`store`]: SQLite or PostgreSQL behind one type; audit trail; outbox.
//! - [`auth`]: officials' bearer tokens and keyed hashes.
//! - [`limits`]: check-in rate limits per phone and per address.
//! - [`domain`]: pure rules (shelters, hazards, statuses, phone numbers, codes).
//! - [`import`]: the municipal and national CSV layouts, encodings, era dates.
//! - [`pfif`]: PFIF 1.4 out, 1.2–1.4 in (Google Person Finder's format).
//! - [`cap`]: OASIS CAP 1.2 alerts in and out (reader, writer, Atom feed),
//!   always naming place and issuer.
//! - [`geoindex`]: the in-memory R-tree answering "nearest open shelter".
//! - [`supply`]: supply points (給水・食料…) in memory, nearest first, and
//!   the view readers get (open now, stale).
//! - [`stats`]: an incident's counts, each person by their latest check-in.
//! - [`purge`]: the job deleting closed incidents' personal data on time.
//! - [`replay`]: the 2024 Nanao snapshots posted in time order, sped up.
//! - [`sample`]: the Nanao shelter list compiled into the binary, with its credit.

pub mod aid;
pub mod aidindex;
pub mod app;
pub mod auth;
pub mod cap;
pub mod checkin;
pub mod cli;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod freshness;
pub mod geoindex;
pub mod http;
pub mod import;
pub mod limits;
pub mod live;
pub mod pfif;
pub mod purge;
pub mod replay;
pub mod sample;
pub mod seal;
pub mod stats;
pub mod store;
pub mod supply;
pub mod usecase;
