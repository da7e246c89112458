//! Configuration: flags, each with an environment variable, each documented.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

/// Where the data lives; shared by every command that touches the database.
#[derive(Args, Clone)]
pub struct DbConfig {
    /// Database URL: `sqlite://FILE` (created if missing) or `postgres://…`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://anpi.db")]
    pub database_url: String,

    /// Key for keyed hashes of tokens (hex, at least 64 digits). Without it a
    /// key is made at first start and kept in the database; in production
    /// give it from a secret store so a database copy alone reveals nothing.
    #[arg(long, env = "ANPI_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
}

impl std::fmt::Debug for DbConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbConfig")
            .field("database_url", &redact_url(&self.database_url))
            .field("secret", &self.secret.as_ref().map(|_| "…"))
            .finish()
    }
}

/// A secret setting: `Debug` never shows it.
#[derive(Clone)]
pub struct Redacted(pub String);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("…")
    }
}

impl std::str::FromStr for Redacted {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Redacted(s.to_owned()))
    }
}

/// The URL without its password, for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}://{user}:…{}", &url[..scheme_end], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// `anpi serve`.
#[derive(Args, Clone, Debug)]
pub struct ServeConfig {
    /// Address to listen on (port 0 picks a free port; the chosen one is logged).
    #[arg(long, env = "ANPI_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub db: DbConfig,

    /// Load the Nanao sample shelters (compiled in) when the registry is empty.
    #[arg(long, env = "ANPI_SAMPLE_DATA", default_value_t = true, action = clap::ArgAction::Set)]
    pub sample_data: bool,

    /// With the sample shelters, start at a real moment of the 2024 Noto
    /// earthquake: Nanao's open-shelter list of 2024-01-09 18:00 (marked as
    /// sample data with its date). `false`: every sample shelter closed.
    #[arg(long, env = "ANPI_SAMPLE_STATE", default_value_t = true, action = clap::ArgAction::Set)]
    pub sample_state: bool,

    /// Largest CSV or PFIF upload accepted from an official, in bytes (a
    /// national list is a few MB).
    #[arg(long, env = "ANPI_MAX_UPLOAD_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub max_upload_bytes: usize,

    /// Largest body of any other request (JSON), in bytes: anyone may send
    /// one, so it is small.
    #[arg(long, env = "ANPI_MAX_JSON_BYTES", default_value_t = 64 * 1024)]
    pub max_json_bytes: usize,

    /// Days after an incident closes until its check-ins' personal data is
    /// deleted (counts by status survive).
    #[arg(long, env = "ANPI_PURGE_AFTER_DAYS", default_value_t = 30)]
    pub purge_after_days: u32,

    /// Check-ins that may wait to be stored; past it, 503 with Retry-After.
    #[arg(long, env = "ANPI_CHECKIN_QUEUE", default_value_t = 20_000)]
    pub checkin_queue: usize,

    /// Most check-ins stored per transaction (1: one transaction each, the
    /// naive path the surge benchmark compares against).
    #[arg(long, env = "ANPI_CHECKIN_BATCH", default_value_t = 512)]
    pub checkin_batch: usize,

    /// Check-in transactions at once on PostgreSQL (SQLite: always one).
    #[arg(long, env = "ANPI_CHECKIN_WRITERS", default_value_t = 4)]
    pub checkin_writers: usize,

    /// The domain in the ids of PFIF records made here
    /// (`<domain>/person.<id>`): this service's public host name.
    #[arg(long, env = "ANPI_PFIF_DOMAIN", default_value = "anpi.local")]
    pub pfif_domain: String,

    /// Check-ins a minute under one phone number; past it, 429.
    #[arg(long, env = "ANPI_CHECKIN_PER_PHONE", default_value_t = 10)]
    pub checkin_per_phone: u32,

    /// Check-ins a minute from one network address (a shelter's Wi-Fi has
    /// hundreds behind one); past it, 429.
    #[arg(long, env = "ANPI_CHECKIN_PER_ADDRESS", default_value_t = 600)]
    pub checkin_per_address: u32,

    /// Bearer token Prometheus sends to read `/metrics`. Without it only
    /// clients on this machine may read them (behind a proxy on the same
    /// host, set it).
    #[arg(long, env = "ANPI_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<Redacted>,

    /// Hours after its last confirmation an open or full shelter's state is
    /// marked stale in every answer (the office reconfirms with one PATCH).
    #[arg(long, env = "ANPI_SHELTER_STALE_HOURS", default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..))]
    pub shelter_stale_hours: u32,

    /// Hours after which an open supply point's stock and queue are shown
    /// as stale until its office confirms them again.
    #[arg(long, env = "ANPI_SUPPLY_STALE_HOURS", default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..))]
    pub supply_stale_hours: u32,

    #[command(flatten)]
    pub http: HttpConfig,

    #[command(flatten)]
    pub live: LiveConfig,

    #[command(flatten)]
    pub aid: AidConfig,

    #[command(flatten)]
    pub map: MapConfig,
}

/// The background map of the finder and the board.
#[derive(Args, Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct MapConfig {
    /// Tile URL template ({z}/{x}/{y}); GSI's standard map by default.
    #[arg(
        long,
        env = "ANPI_MAP_TILES",
        default_value = "https://cyberjapandata.gsi.go.jp/xyz/std/{z}/{x}/{y}.png"
    )]
    pub tiles: String,

    /// The tiles' credit, shown on the map as their terms ask.
    #[arg(
        long,
        env = "ANPI_MAP_CREDIT",
        default_value = "地理院タイル (GSI Tiles)"
    )]
    pub credit: String,

    /// Where the credit links to.
    #[arg(
        long,
        env = "ANPI_MAP_CREDIT_URL",
        default_value = "https://maps.gsi.go.jp/development/ichiran.html"
    )]
    pub credit_url: String,

    /// Closest zoom the tiles offer.
    #[arg(long, env = "ANPI_MAP_MAX_ZOOM", default_value_t = 18)]
    pub max_zoom: u8,
}

impl Default for MapConfig {
    fn default() -> Self {
        Self {
            tiles: "https://cyberjapandata.gsi.go.jp/xyz/std/{z}/{x}/{y}.png".into(),
            credit: "地理院タイル (GSI Tiles)".into(),
            credit_url: "https://maps.gsi.go.jp/development/ichiran.html".into(),
            max_zoom: 18,
        }
    }
}

/// The clocks and thresholds of aid requests, offers and claims.
#[derive(Args, Clone, Debug)]
pub struct AidConfig {
    /// Hours after its last confirmation an active request is marked stale
    /// and its requester asked to reconfirm.
    #[arg(long, env = "ANPI_AID_REQUEST_STALE_HOURS", default_value_t = 24, value_parser = clap::value_parser!(u32).range(1..))]
    pub request_stale_hours: u32,

    /// Hours without reconfirmation after which an open request expires.
    #[arg(long, env = "ANPI_AID_REQUEST_EXPIRE_HOURS", default_value_t = 72, value_parser = clap::value_parser!(u32).range(1..))]
    pub request_expire_hours: u32,

    /// Hours after its last confirmation an open offer is marked stale.
    #[arg(long, env = "ANPI_AID_OFFER_STALE_HOURS", default_value_t = 72, value_parser = clap::value_parser!(u32).range(1..))]
    pub offer_stale_hours: u32,

    /// Minutes a volunteer has to deliver a claim; then it lapses and its
    /// quantity returns to the request.
    #[arg(long, env = "ANPI_AID_CLAIM_MINUTES", default_value_t = 24 * 60, value_parser = clap::value_parser!(u32).range(1..))]
    pub claim_minutes: u32,

    /// Undelivered claims a volunteer may hold before its delivery record
    /// is looked at (Crisis Cleanup's throttle).
    #[arg(long, env = "ANPI_AID_THROTTLE_OPEN_CLAIMS", default_value_t = 5)]
    pub throttle_open_claims: u32,

    /// Share of its closed claims a volunteer holding that many must have
    /// delivered to claim more; below it, 429.
    #[arg(long, env = "ANPI_AID_THROTTLE_MIN_RATIO", default_value_t = 0.5)]
    pub throttle_min_ratio: f64,

    /// Distinct reports that hide a record pending a coordinator's or
    /// office's decision.
    #[arg(long, env = "ANPI_AID_REPORTS_TO_HIDE", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub reports_to_hide: u32,

    /// Seconds between sweeps for lapsed claims, stale and expired records.
    #[arg(long, env = "ANPI_AID_SWEEP_SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub sweep_secs: u64,
}

impl Default for AidConfig {
    fn default() -> Self {
        Self {
            request_stale_hours: 24,
            request_expire_hours: 72,
            offer_stale_hours: 72,
            claim_minutes: 24 * 60,
            throttle_open_claims: 5,
            throttle_min_ratio: 0.5,
            reports_to_hide: 3,
            sweep_secs: 60,
        }
    }
}

/// Time and number bounds on HTTP connections, so that slow or silent
/// clients cannot hold sockets (and the process's open files) for ever.
#[derive(Args, Clone, Debug)]
pub struct HttpConfig {
    /// Seconds a client has to send a request's headers, counted from the
    /// first byte of the request; then the connection is closed.
    #[arg(long, env = "ANPI_HEADER_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub header_timeout_secs: u64,

    /// Seconds a connection with no request in flight may stay silent
    /// (nothing arriving, nothing sent) before it is closed. Live WebSocket
    /// connections are not affected: they have pings of their own.
    #[arg(long, env = "ANPI_IDLE_TIMEOUT", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub idle_timeout_secs: u64,

    /// Seconds for a request's whole body to arrive; past it, 408.
    #[arg(long, env = "ANPI_BODY_TIMEOUT", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub body_timeout_secs: u64,

    /// Seconds for an answer to be ready; past it, 503 with Retry-After.
    /// The live WebSocket upgrade is exempt (its connection lives on).
    #[arg(long, env = "ANPI_REQUEST_TIMEOUT", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout_secs: u64,

    /// Connections held at once from one network address; more are refused
    /// with 503. A shelter's Wi-Fi puts hundreds behind one address.
    #[arg(long, env = "ANPI_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 2000, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_connections_per_address: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            header_timeout_secs: 10,
            idle_timeout_secs: 60,
            body_timeout_secs: 30,
            request_timeout_secs: 30,
            max_connections_per_address: 2000,
        }
    }
}

/// The live path: which broker, and the bounds that keep a surge in check.
#[derive(Args, Clone, Debug)]
pub struct LiveConfig {
    /// One Redis for live updates across instances (`redis://host:port`).
    /// Without it (and without a cluster) events stay in this process.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,

    /// A Redis Cluster instead, with sharded pub/sub: `host:port,host:port,…`
    /// (any of its nodes; the rest are discovered).
    #[arg(long, env = "ANPI_REDIS_CLUSTER")]
    pub redis_cluster: Option<String>,

    /// Events kept per channel for clients that reconnect with `since`.
    #[arg(long, env = "ANPI_LIVE_HISTORY", default_value_t = 1000)]
    pub history_size: usize,

    /// How long an event stays replayable, in seconds.
    #[arg(long, env = "ANPI_LIVE_HISTORY_TTL", default_value_t = 3600)]
    pub history_ttl_secs: u64,

    /// Frames queued per connection before the client counts as too slow
    /// and is closed (code 4008) to resume with `since`.
    #[arg(long, env = "ANPI_LIVE_QUEUE", default_value_t = 1024)]
    pub queue: usize,

    /// WebSocket connections this instance holds at once; more get 503.
    /// A process may open 20,000 files here, so the default leaves room for
    /// the database pool, Redis and the listener.
    #[arg(long, env = "ANPI_LIVE_MAX_CONNECTIONS", default_value_t = 19_500)]
    pub max_connections: usize,

    /// Seconds between server pings; a client silent for three is dropped.
    #[arg(long, env = "ANPI_LIVE_PING", default_value_t = 25)]
    pub ping_secs: u64,

    /// Run the outbox relay on this instance (publishing committed changes).
    /// Any number of instances may; at least one must. `false` leaves the
    /// events in the database for the others (and is how the crash test
    /// holds events between commit and publish).
    #[arg(long, env = "ANPI_RELAY", default_value_t = true, action = clap::ArgAction::Set)]
    pub relay: bool,
}

impl Default for LiveConfig {
    fn default() -> Self {
        Self {
            redis_url: None,
            redis_cluster: None,
            history_size: 1000,
            history_ttl_secs: 3600,
            queue: 1024,
            max_connections: 19_500,
            ping_secs: 25,
            relay: true,
        }
    }
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            db: DbConfig {
                database_url: "sqlite://anpi.db".into(),
                secret: None,
            },
            sample_data: true,
            sample_state: true,
            max_upload_bytes: 64 * 1024 * 1024,
            max_json_bytes: 64 * 1024,
            purge_after_days: 30,
            checkin_queue: 20_000,
            checkin_batch: 512,
            checkin_writers: 4,
            pfif_domain: "anpi.local".into(),
            checkin_per_phone: 10,
            checkin_per_address: 600,
            metrics_token: None,
            shelter_stale_hours: 12,
            supply_stale_hours: 6,
            http: HttpConfig::default(),
            live: LiveConfig::default(),
            aid: AidConfig::default(),
            map: MapConfig::default(),
        }
    }
}

/// A file argument for the import commands.
#[derive(Args, Clone, Debug)]
pub struct FileArg {
    /// The CSV file (UTF-8 with or without BOM, or Shift_JIS).
    pub file: PathBuf,
}
