//! Start-up and serving: one [`App`] per process, built from a config or,
//! in tests, from a store; [`serve`] takes an already-bound listener.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::aid::AidAudience;
use crate::aidindex::AidIndex;
use crate::auth::Secret;
use crate::checkin::CheckinWriter;
use crate::config::{HttpConfig, ServeConfig, redact_url};
use crate::geoindex::ShelterIndex;
use crate::http::{AppState, Limits};
use crate::import;
use crate::limits::CheckinLimits;
use crate::live::Node;
use crate::sample;
use crate::store::{Actor, Store};
use crate::supply::SupplyIndex;
use crate::usecase::Services;

/// How long start-up waits for the events left in the outbox (a crash, the
/// sample data) to be published before serving.
const STARTUP_PUBLISH_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

/// A started service, ready to serve.
pub struct App {
    pub state: AppState,
    /// The bounds on connections [`serve`] keeps.
    pub http: HttpConfig,
}

impl App {
    /// Opens the store named in the config, then [`App::with_store`].
    pub async fn start(config: &ServeConfig) -> anyhow::Result<App> {
        tracing::info!(database = %redact_url(&config.db.database_url), "opening the store");
        let store = Store::connect(&config.db.database_url).await?;
        Self::with_store(store, config).await
    }

    /// For a command-line change (`anpi import …`) against a deployment's
    /// database: the same services as a server, without a relay (the
    /// running servers publish what the command wrote into the outbox) and
    /// without sample data.
    pub async fn for_command(db: &crate::config::DbConfig) -> anyhow::Result<App> {
        let mut config = ServeConfig {
            db: db.clone(),
            sample_data: false,
            ..ServeConfig::default()
        };
        config.live.relay = false;
        Self::start(&config).await
    }

    /// Loads the secret, the sample shelters (into an empty registry, when
    /// asked) and the in-memory index.
    pub async fn with_store(store: Store, config: &ServeConfig) -> anyhow::Result<App> {
        // The recorder first: a counter taken before it exists (the relay's,
        // at start) would count into nothing for the life of the process.
        let metrics = prometheus();
        let secret = Arc::new(Secret::load(config.db.secret.as_deref(), &store).await?);
        crate::freshness::set_shelter_stale_after(config.shelter_stale_hours);
        crate::supply::set_stale_after(config.supply_stale_hours);
        if config.sample_data && store.shelter_count().await? == 0 {
            let parsed = import::parse_registry(sample::NANAO_SHELTERS_CSV)?;
            let outcome = store
                .import_sites(&Actor::Operator("sample data"), parsed.sites, None)
                .await?;
            tracing::info!(
                shelters = outcome.inserted,
                credit = sample::NANAO_CREDIT,
                "loaded the Nanao sample shelters"
            );
            if config.sample_state {
                let nanao = crate::domain::municipality::MunicipalityCode::parse("172022")?;
                let snapshot =
                    import::parse_status_snapshot(sample::NANAO_FIRST_SNAPSHOT_CSV, &nanao)?;
                let opened = store
                    .apply_status_snapshot(
                        &Actor::Operator(sample::NANAO_SNAPSHOT_BY),
                        &nanao,
                        snapshot,
                        false,
                    )
                    .await?;
                tracing::info!(
                    open = opened.open,
                    "the sample shelters are in their state of 2024-01-09 18:00"
                );
            }
        }
        let index = ShelterIndex::new(store.all_shelters().await?);
        tracing::info!(
            shelters = index.len(),
            backend = store.backend_name(),
            "index built"
        );
        let aid = AidIndex::new(
            store.active_aid_requests().await?,
            store.open_aid_offers().await?,
        );
        let supply = SupplyIndex::new(store.all_supply_points().await?);
        let live = Node::start(
            &config.live,
            store.clone(),
            index.clone(),
            aid.clone(),
            supply.clone(),
        )
        .await?;
        if config.live.relay && !live.published_so_far(STARTUP_PUBLISH_PATIENCE).await {
            tracing::warn!(
                "events from before this start are still in the outbox; they go out as the broker takes them"
            );
        }
        let checkins = CheckinWriter::start(
            store.clone(),
            index.clone(),
            live.clone(),
            config.checkin_queue,
            config.checkin_batch,
            config.checkin_writers,
        );
        Ok(App {
            state: AppState {
                services: Services {
                    store,
                    index,
                    live,
                    checkins,
                    purge_after: chrono::TimeDelta::days(config.purge_after_days.into()),
                    aid,
                    supply,
                    audience: AidAudience::new(
                        secret.clone(),
                        chrono::TimeDelta::hours(config.aid.request_stale_hours.into()),
                        chrono::TimeDelta::hours(config.aid.offer_stale_hours.into()),
                    ),
                    contacts: secret.sealer("aid contact v1"),
                    secret,
                    aid_rules: config.aid.clone(),
                },
                metrics,
                limits: Limits {
                    max_json_bytes: config.max_json_bytes,
                    max_upload_bytes: config.max_upload_bytes,
                    body_timeout: Duration::from_secs(config.http.body_timeout_secs),
                    request_timeout: Duration::from_secs(config.http.request_timeout_secs),
                },
                checkin_limits: CheckinLimits::new(
                    config.checkin_per_phone,
                    config.checkin_per_address,
                ),
                pfif_domain: config.pfif_domain.clone(),
                metrics_token: config.metrics_token.as_ref().map(|t| t.0.clone()),
                map: config.map.clone(),
            },
            http: config.http.clone(),
        })
    }
}

/// Serves until `shutdown` completes, then finishes the requests in flight.
pub async fn serve(
    app: App,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    let services = app.state.services.clone();
    let jobs = CancellationToken::new();
    let purge = tokio::spawn(crate::purge::run(services.clone(), jobs.clone()));
    let aid_clock = tokio::spawn(crate::purge::aid_clock(services.clone(), jobs.clone()));
    let router = crate::http::router(app.state);
    tracing::info!(addr = %addr, "listening");
    crate::http::server::run(listener, router, &app.http, shutdown).await;
    // The requests are answered (each check-in only once stored); now the
    // jobs stop, the relay publishes what is left in the outbox, and the
    // pool closes.
    jobs.cancel();
    let _ = purge.await;
    let _ = aid_clock.await;
    services.live.shutdown().await;
    services.store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}

/// JSON logs to `writer`; `RUST_LOG` filters (default `info`).
pub fn init_logging<W>(writer: fn() -> W)
where
    W: std::io::Write + 'static,
{
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(writer)
        .try_init();
}

/// The process's Prometheus recorder. The `metrics` facade has one global
/// recorder per process by design, so it is installed once and its handle
/// shared by every `App` (tests start several in one process).
fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("_seconds".into()),
                    &[
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                        5.0,
                    ],
                )
                .expect("bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            let _ = metrics::set_global_recorder(recorder);
            // Histograms grow until rendered; a periodic upkeep keeps them bounded
            // even when nobody scrapes.
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(std::time::Duration::from_secs(5));
                        upkeep.run_upkeep();
                    }
                })
                .expect("spawn metrics upkeep");
            handle
        })
        .clone()
}
