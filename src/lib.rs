//! anpi (安否, "are you safe?"): a disaster-response information hub.
//!
//! After an earthquake, flood or tsunami, residents find the nearest open
//! shelter for the hazard at hand, emergency offices post which shelters are
//! open and how full they are, and everything updates live.
//!
//! # Layout
//!
//! - [`cli`] and [`config`]: the command line (`anpi serve`, `anpi token create`,
//!   `anpi import …`); `main.rs` only calls [`cli::run`].
//! - [`app`]: start-up (store, secret, sample data, index) and [`app::serve`],
//!   which takes an already-bound listener and a shutdown future.
//! - [`http`]: the axum router, one module per resource, the metrics
//!   middleware, the OpenAPI document and the embedded web UI; the accept
//!   loop that bounds connections in time and number ([`http::server`]).
//! - [`error`]: the one error type, answered as `application/problem+json`.
//! - [`auth`]: officials' bearer tokens and keyed hashes.
//! - [`domain`]: pure rules (shelters, hazards, statuses, municipality codes).
//! - [`import`]: the municipal and national CSV layouts, encodings, era dates.
//! - [`store`]: SQLite or PostgreSQL behind one type; the audit trail.
//! - [`geoindex`]: the in-memory R-tree answering "nearest open shelter".
//! - [`sample`]: the Nanao shelter list compiled into the binary, with its credit.

pub mod app;
pub mod auth;
pub mod checkin;
pub mod cli;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod geoindex;
pub mod http;
pub mod import;
pub mod limits;
pub mod live;
pub mod pfif;
pub mod purge;
pub mod replay;
pub mod sample;
pub mod stats;
pub mod store;
pub mod usecase;
