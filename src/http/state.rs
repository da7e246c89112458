//! What every handler is given: the use cases' [`Services`] and what only
//! the HTTP edge needs (metrics, limits).

use std::ops::Deref;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::limits::CheckinLimits;
use crate::usecase::Services;

/// Cheap handles, cloned per request.
#[derive(Clone)]
pub struct AppState {
    pub services: Services,
    pub metrics: PrometheusHandle,
    pub limits: Limits,
    pub checkin_limits: CheckinLimits,
    /// The domain of this repository's PFIF record ids.
    pub pfif_domain: String,
    /// Bearer token for `/metrics`; without one, only loopback clients may read it.
    pub metrics_token: Option<String>,
    /// The pages' background map.
    pub map: crate::config::MapConfig,
}

/// Handlers reach the store, index, live node and check-in writer as
/// `state.store` and so on: the state is the services plus the edge's own.
impl Deref for AppState {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.services
    }
}

/// Request size and time limits.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Every body but an official's upload (JSON: check-ins, updates).
    pub max_json_bytes: usize,
    /// An official's CSV or PFIF upload, read only after the token is checked.
    pub max_upload_bytes: usize,
    /// For a request's whole body to arrive.
    pub body_timeout: Duration,
    /// For an answer to be ready.
    pub request_timeout: Duration,
}
