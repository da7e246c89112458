//! The command line. `anpi` alone is `anpi serve`.

use std::io::Write;

use clap::{Parser, Subcommand};
use tokio::net::TcpListener;

use crate::app::{self, App};
use crate::auth::{self, Secret};
use crate::config::{DbConfig, FileArg, ServeConfig};
use crate::domain::municipality::MunicipalityCode;
use crate::import;
use crate::replay::Replay;
use crate::store::{Actor, NewAccount, Role, Store};
use crate::usecase;

#[derive(Parser, Debug)]
#[command(
    name = "anpi",
    version,
    about = "安否 — disaster-response information hub",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// `anpi` with no command serves, with these settings.
    #[command(flatten)]
    pub serve: ServeConfig,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the service (the default).
    Serve(Box<ServeConfig>),
    /// Manage officials' bearer tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Import shelter data from CSV files.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Post a folder of open-shelter snapshots to a running service, in time
    /// order and sped up, so the incident can be watched live.
    Replay(ReplayArgs),
}

#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// Folder of snapshot CSV files, e.g. geodata/noto-2024-nanao/history.
    pub dir: std::path::PathBuf,
    /// The service's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub to: String,
    /// An official's bearer token for the snapshots' municipality.
    #[arg(long, env = "ANPI_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Times faster than real time: 3600 plays an hour in a second.
    #[arg(long, default_value_t = 3600.0)]
    pub speed: f64,
    /// The longest pause between two snapshots, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub max_pause: f64,
    /// Municipality code; by default the one the first listed shelter belongs to.
    #[arg(long)]
    pub municipality: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a token for an emergency office or a coordinator; prints it
    /// once, alone on stdout.
    Create {
        /// Municipality code (JIS X 0402, 5 or 6 digits) the token may act on; repeatable.
        #[arg(long = "municipality", required = true)]
        municipalities: Vec<String>,
        /// Who holds it, as residents will see it (e.g. "Nanao HQ"); for a
        /// coordinator, the organisation's name when omitted.
        #[arg(long, required_unless_present = "org")]
        name: Option<String>,
        /// official (an emergency office) or coordinator (a volunteer centre
        /// or NPO, which registers volunteers through the API).
        #[arg(long, default_value = "official", value_parser = ["official", "coordinator"])]
        role: String,
        /// A coordinator's organisation, e.g. "七尾市社会福祉協議会".
        #[arg(long)]
        org: Option<String>,
        /// Print a one-time sign-in link (and its QR code, on stderr) for
        /// the board instead of the token itself: opened once on a device,
        /// within a day, it signs that device in.
        #[arg(long)]
        link: bool,
        /// The service's public address, for the link.
        #[arg(long, env = "ANPI_PUBLIC_URL", default_value = "http://127.0.0.1:8080")]
        public_url: String,
        #[command(flatten)]
        db: DbConfig,
    },
    /// A new one-time sign-in link for an existing holder's next device.
    Link {
        /// The token holder's number (`id` in `GET /v1/me`).
        id: i64,
        #[arg(long, env = "ANPI_PUBLIC_URL", default_value = "http://127.0.0.1:8080")]
        public_url: String,
        #[command(flatten)]
        db: DbConfig,
    },
    /// Suspend a token (a coordinator's suspends its volunteers too), or
    /// reinstate it with --reinstate.
    Suspend {
        /// The token holder's number (`id` in `GET /v1/me`).
        id: i64,
        #[arg(long)]
        reinstate: bool,
        #[command(flatten)]
        db: DbConfig,
    },
}

#[derive(Subcommand, Debug)]
pub enum ImportCommand {
    /// The shelter registry: national standard list or GSI layout.
    Shelters {
        #[command(flatten)]
        file: FileArg,
        #[command(flatten)]
        db: DbConfig,
    },
    /// An open-shelter snapshot (the municipality's spreadsheet after an incident).
    ShelterStatus {
        #[command(flatten)]
        file: FileArg,
        /// The municipality the snapshot is for; by default, the one its listed shelters belong to.
        #[arg(long)]
        municipality: Option<String>,
        #[command(flatten)]
        db: DbConfig,
    },
}

/// Who the command line acts as: someone with shell access to the server.
const OPERATOR: Actor = Actor::Operator("cli import");

/// Entry point for `main`.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve(Box::new(cli.serve))) {
        Command::Serve(config) => {
            app::init_logging(std::io::stdout);
            let listener = TcpListener::bind(config.listen).await?;
            let app = App::start(&config).await?;
            app::serve(app, listener, app::shutdown_signal()).await
        }
        Command::Token(TokenCommand::Create {
            municipalities,
            name,
            role,
            org,
            link,
            public_url,
            db,
        }) => {
            app::init_logging(std::io::stderr);
            let codes = municipalities
                .iter()
                .map(|m| MunicipalityCode::parse(m))
                .collect::<Result<Vec<_>, _>>()?;
            let role = Role::parse(&role).expect("clap allows only known roles");
            let name = name.or_else(|| org.clone()).unwrap_or_default();
            let store = Store::connect(&db.database_url).await?;
            let secret = Secret::load(db.secret.as_deref(), &store).await?;
            let (account, token) = auth::create_account(
                &store,
                &secret,
                &NewAccount {
                    name: &name,
                    role,
                    org: org.as_deref(),
                    municipalities: &codes,
                    coordinator: None,
                },
            )
            .await?;
            if link {
                print_link(&auth::sign_in_link(&store, &secret, &account, &public_url).await?)?;
            } else {
                writeln!(std::io::stdout(), "{token}")?;
            }
            Ok(())
        }
        Command::Token(TokenCommand::Link { id, public_url, db }) => {
            app::init_logging(std::io::stderr);
            let store = Store::connect(&db.database_url).await?;
            let secret = Secret::load(db.secret.as_deref(), &store).await?;
            let account = store
                .account(id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no token holder with number {id}"))?;
            print_link(&auth::sign_in_link(&store, &secret, &account, &public_url).await?)
        }
        Command::Token(TokenCommand::Suspend { id, reinstate, db }) => {
            app::init_logging(std::io::stderr);
            let store = Store::connect(&db.database_url).await?;
            anyhow::ensure!(
                store.set_suspended(id, !reinstate).await?,
                "no token holder with number {id}"
            );
            Ok(())
        }
        Command::Import(ImportCommand::Shelters { file, db }) => {
            app::init_logging(std::io::stderr);
            let bytes = std::fs::read(&file.file)?;
            let app = App::for_command(&db).await?;
            let outcome =
                usecase::shelters::import_registry(&app.state.services, &OPERATOR, &bytes).await?;
            println!("{}", serde_json::to_string_pretty(&outcome)?);
            Ok(())
        }
        Command::Import(ImportCommand::ShelterStatus {
            file,
            municipality,
            db,
        }) => {
            app::init_logging(std::io::stderr);
            let bytes = std::fs::read(&file.file)?;
            let app = App::for_command(&db).await?;
            let services = &app.state.services;
            let municipality = match municipality {
                Some(m) => MunicipalityCode::parse(&m)?,
                None => {
                    let text = import::decode(&bytes)?;
                    guess_municipality(&services.store, &import::snapshot_ids(&text)?).await?
                }
            };
            let outcome = usecase::shelters::apply_snapshot(
                services,
                &OPERATOR,
                &municipality,
                &bytes,
                false,
                false,
            )
            .await?;
            println!("{}", serde_json::to_string_pretty(&outcome)?);
            Ok(())
        }
        Command::Replay(args) => {
            app::init_logging(std::io::stderr);
            let replay = Replay {
                dir: args.dir,
                to: args.to,
                token: args.token,
                speed: args.speed,
                max_pause: std::time::Duration::try_from_secs_f64(args.max_pause)
                    .map_err(|_| anyhow::anyhow!("--max-pause must be a number of seconds"))?,
                municipality: args
                    .municipality
                    .as_deref()
                    .map(MunicipalityCode::parse)
                    .transpose()?,
            };
            // One JSON line per snapshot, as it is posted.
            replay
                .run(|posted| {
                    // A closed stdout (`| head`) must not stop the replay.
                    if let Ok(line) = serde_json::to_string(posted) {
                        let _ = writeln!(std::io::stdout(), "{line}");
                    }
                })
                .await?;
            Ok(())
        }
    }
}

/// The one municipality the snapshot's known shelters belong to.
async fn guess_municipality(store: &Store, ids: &[String]) -> anyhow::Result<MunicipalityCode> {
    let mut found = std::collections::BTreeSet::new();
    for id in ids {
        if let Some(s) = store.shelter(id).await? {
            found.insert(s.site.municipality);
        }
    }
    match found.len() {
        1 => Ok(found.into_iter().next().expect("one element")),
        0 => anyhow::bail!("none of the listed shelters is in the registry; give --municipality"),
        _ => anyhow::bail!(
            "the listed shelters belong to several municipalities ({found:?}); give --municipality"
        ),
    }
}

/// The link alone on stdout (for scripts), and as a QR code on stderr for a
/// phone's camera.
fn print_link(link: &str) -> anyhow::Result<()> {
    let qr = qrcode::QrCode::new(link.as_bytes())?
        .render::<qrcode::render::unicode::Dense1x2>()
        .quiet_zone(true)
        .build();
    writeln!(std::io::stderr(), "{qr}")?;
    writeln!(std::io::stdout(), "{link}")?;
    Ok(())
}
