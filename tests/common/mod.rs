//! Shared test harness: a real service on a real database, on port 0.
//!
//! Every story runs on both backends: SQLite in a temporary directory and
//! PostgreSQL in a fresh database created for the test. PostgreSQL is found
//! at `ANPI_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`,
//! which `ops/test` provides); a test that cannot reach it fails, it never skips.

#![allow(dead_code)]

pub mod follow;
pub mod procs;
pub mod ws;
pub mod xml;

use std::path::PathBuf;

use anpi::app::{self, App};
use anpi::auth;
use anpi::config::{DbConfig, ServeConfig};
use anpi::domain::municipality::MunicipalityCode;
use anpi::http::AppState;
use anpi::store::Store;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Runs each story as two tests, `sqlite::story` and `postgres::story`.
#[macro_export]
macro_rules! on_both_backends {
    ($($story:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $story() {
                    super::$story($crate::common::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $story() {
                    super::$story($crate::common::Backend::Postgres).await
                }
            )*
        }
    };
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database made for one test; the directory (SQLite) or the database
/// (PostgreSQL) lives as long as this.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    /// PostgreSQL: the server's admin URL and the database's name, to drop it.
    made: Option<(String, String)>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("anpi.db").display());
                TestDb {
                    url,
                    _dir: Some(dir),
                    made: None,
                }
            }
            Backend::Postgres => {
                let admin = std::env::var("ANPI_TEST_POSTGRES_URL")
                    .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
                let name = format!("anpi_test_{}", uuid::Uuid::now_v7().simple());
                let pool = sqlx::PgPool::connect(&admin).await.unwrap_or_else(|e| {
                    panic!(
                        "PostgreSQL is required by this test and is not reachable at {admin}: {e}. \
                         Run ops/test, which installs and starts it."
                    )
                });
                sqlx::query(sqlx::AssertSqlSafe(format!("create database {name}")))
                    .execute(&pool)
                    .await
                    .expect("create test database");
                pool.close().await;
                let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
                TestDb {
                    url: format!("{base}/{name}"),
                    _dir: None,
                    made: Some((admin, name)),
                }
            }
        }
    }
}

impl Drop for TestDb {
    /// Drops the test's PostgreSQL database, so runs against a long-lived
    /// server leave nothing behind. On a thread of its own: `drop` cannot
    /// wait on the test's runtime.
    fn drop(&mut self) {
        let Some((admin, name)) = self.made.take() else {
            return;
        };
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let pool = sqlx::PgPool::connect(&admin).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "drop database if exists {name} with (force)"
                )))
                .execute(&pool)
                .await?;
                pool.close().await;
                anyhow::Ok(())
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("test database not dropped: {e}");
        }
    }
}

/// A running service.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub db: TestDb,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

pub fn config(db: &TestDb, sample_data: bool) -> ServeConfig {
    ServeConfig {
        db: DbConfig {
            database_url: db.url.clone(),
            secret: None,
        },
        sample_data,
        ..ServeConfig::default()
    }
}

impl TestApp {
    /// A service with the Nanao sample shelters loaded, in their state of
    /// 2024-01-09 18:00 (as `anpi serve` starts).
    pub async fn start(backend: Backend) -> TestApp {
        Self::on(TestDb::new(backend).await, true).await
    }

    /// A service with the Nanao sample shelters loaded, every one closed.
    pub async fn start_closed(backend: Backend) -> TestApp {
        let db = TestDb::new(backend).await;
        let config = ServeConfig {
            sample_state: false,
            ..config(&db, true)
        };
        Self::with_config(db, config).await
    }

    /// A service on an existing database.
    pub async fn on(db: TestDb, sample_data: bool) -> TestApp {
        let config = config(&db, sample_data);
        Self::with_config(db, config).await
    }

    /// A service with a config of the test's own.
    pub async fn with_config(db: TestDb, config: ServeConfig) -> TestApp {
        let app = App::start(&config).await.expect("app starts");
        let state = app.state.clone();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(app::serve(app, listener, async {
            let _ = stopped.await;
        }));
        TestApp {
            base,
            client: reqwest::Client::new(),
            state,
            db,
            stop: Some(stop),
            server: Some(server),
        }
    }

    /// Stops the service gracefully and hands back its database.
    pub async fn stop(mut self) -> TestDb {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server ran");
        }
        std::mem::replace(
            &mut self.db,
            TestDb {
                url: String::new(),
                _dir: None,
                made: None,
            },
        )
    }

    /// Waits until every event written so far left the outbox: changes are
    /// answered before their events are published.
    pub async fn wait_published(&self) {
        assert!(
            self.state
                .live
                .published_so_far(std::time::Duration::from_secs(15))
                .await,
            "the outbox was not emptied"
        );
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn store(&self) -> &Store {
        &self.state.store
    }

    /// A bearer token for an office acting on `codes`.
    pub async fn token(&self, name: &str, codes: &[&str]) -> String {
        let codes: Vec<_> = codes
            .iter()
            .map(|c| MunicipalityCode::parse(c).expect("valid code"))
            .collect();
        auth::create_token(&self.state.store, &self.state.secret, name, &codes)
            .await
            .expect("token")
    }

    /// A bearer token for a coordinator (a volunteer centre) acting on `codes`.
    pub async fn coordinator(&self, org: &str, codes: &[&str]) -> String {
        let codes: Vec<_> = codes
            .iter()
            .map(|c| MunicipalityCode::parse(c).expect("valid code"))
            .collect();
        let (_, token) = auth::create_account(
            &self.state.store,
            &self.state.secret,
            &anpi::store::NewAccount {
                name: org,
                role: anpi::store::Role::Coordinator,
                org: Some(org),
                municipalities: &codes,
                coordinator: None,
            },
        )
        .await
        .expect("token");
        token
    }

    /// A volunteer registered through the API by the holder of `coordinator`.
    pub async fn volunteer(&self, coordinator: &str, name: &str) -> String {
        let r = self
            .post_as(
                coordinator,
                "/v1/volunteers",
                serde_json::json!({ "name": name }),
            )
            .await;
        assert_eq!(r.status(), 201);
        r.json::<serde_json::Value>().await.expect("registration")["token"]
            .as_str()
            .expect("volunteer token")
            .to_owned()
    }

    /// `PATCH path` with a JSON body, as the holder of `token`.
    pub async fn patch_as(
        &self,
        token: &str,
        path: &str,
        body: serde_json::Value,
    ) -> reqwest::Response {
        self.client
            .patch(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("PATCH")
    }

    /// `POST path` with a JSON body as the holder of `token`.
    pub async fn post_as(
        &self,
        token: &str,
        path: &str,
        body: serde_json::Value,
    ) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("POST")
    }

    /// Opens an earthquake incident for Nanao as the holder of `token`; its id.
    pub async fn open_nanao_incident(&self, token: &str) -> String {
        let r = self
            .post_as(
                token,
                "/v1/incidents",
                serde_json::json!({"name": "能登半島地震", "hazard": "earthquake", "municipalities": ["172022"]}),
            )
            .await;
        assert_eq!(r.status(), 201);
        r.json::<serde_json::Value>().await.expect("incident")["id"]
            .as_str()
            .expect("incident id")
            .to_owned()
    }

    /// `GET path` as the holder of `token`.
    pub async fn get_as(&self, token: &str, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET")
    }

    /// A CSV upload (`PUT` for snapshots, `POST` for imports) as the holder of `token`.
    pub async fn upload_as(
        &self,
        token: &str,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let request = if path
            .split('?')
            .next()
            .unwrap_or(path)
            .ends_with("/shelter-status")
        {
            self.client.put(self.url(path))
        } else {
            self.client.post(self.url(path))
        };
        request
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("upload")
    }

    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let r = self.client.get(self.url(path)).send().await.expect("GET");
        let status = r.status().as_u16();
        (status, r.json().await.expect("JSON body"))
    }
}

/// Events waiting in the outbox of the database at `url`
/// (`Store::outbox_backlog`: the events, not the rows holding them).
pub async fn outbox_backlog(url: &str) -> i64 {
    let store = Store::connect(url).await.expect("the database opens");
    let waiting = store.outbox_backlog().await.expect("count the outbox");
    store.close().await;
    waiting
}

/// Waits until the outbox of the database at `url` is empty, at most
/// `within`; fails with the count left otherwise.
pub async fn wait_outbox_empty(url: &str, within: std::time::Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let waiting = outbox_backlog(url).await;
        if waiting == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{waiting} events still in the outbox after {within:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// The Prometheus text of the service at `base` (tests run on loopback,
/// which may read it without a token).
pub async fn metrics(base: &str) -> String {
    reqwest::get(format!("{base}/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text")
}

/// The repository's sample data directory.
pub fn geodata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("geodata/noto-2024-nanao")
}

/// Asserts a problem+json answer and returns its body.
pub async fn expect_problem(response: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(response.status().as_u16(), status, "status");
    let ct = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(ct, "application/problem+json");
    let body: serde_json::Value = response.json().await.expect("problem body");
    assert_eq!(body["status"], status);
    assert!(
        body["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("urn:anpi:problem:"))
    );
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    body
}

/// The fields a problem's `errors` name, in order.
pub fn problem_fields(problem: &serde_json::Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
