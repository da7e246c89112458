//! The command line. `anpi` alone is `anpi serve`.

use std::io::Write;

use clap::{Parser, Subcommand};
use tokio::net::TcpListener;

use crate::app::{self, App};
use crate::auth::{self, Secret};
use crate::config::{DbConfig, FileArg, ServeConfig};
use crate::domain::municipality::MunicipalityCode;
use crate::import;
use crate::store::{Actor, Store};

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
    Serve(ServeConfig),
    /// Manage officials' bearer tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Import shelter data from CSV files.
    #[command(subcommand)]
    Import(ImportCommand),
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a token for an emergency office; prints it once, alone on stdout.
    Create {
        /// Municipality code (JIS X 0402, 5 or 6 digits) the token may act on; repeatable.
        #[arg(long = "municipality", required = true)]
        municipalities: Vec<String>,
        /// Who holds it, as residents will see it (e.g. "Nanao HQ").
        #[arg(long)]
        name: String,
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

/// Entry point for `main`.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve(cli.serve)) {
        Command::Serve(config) => {
            app::init_logging(std::io::stdout);
            let listener = TcpListener::bind(config.listen).await?;
            let app = App::start(&config).await?;
            app::serve(app, listener, app::shutdown_signal()).await
        }
        Command::Token(TokenCommand::Create {
            municipalities,
            name,
            db,
        }) => {
            app::init_logging(std::io::stderr);
            let codes = municipalities
                .iter()
                .map(|m| MunicipalityCode::parse(m))
                .collect::<Result<Vec<_>, _>>()?;
            let store = Store::connect(&db.database_url).await?;
            let secret = Secret::load(db.secret.as_deref(), &store).await?;
            let token = auth::create_token(&store, &secret, &name, &codes).await?;
            writeln!(std::io::stdout(), "{token}")?;
            Ok(())
        }
        Command::Import(ImportCommand::Shelters { file, db }) => {
            app::init_logging(std::io::stderr);
            let text = import::decode(&std::fs::read(&file.file)?)?;
            let parsed = import::parse_registry(&text)?;
            let store = Store::connect(&db.database_url).await?;
            let mut outcome = store
                .import_sites(&Actor::Operator("cli import"), parsed.sites, None)
                .await?;
            outcome.problems.extend(parsed.problems);
            outcome.problems.sort_by_key(|p| p.line);
            println!("{}", serde_json::to_string_pretty(&outcome)?);
            Ok(())
        }
        Command::Import(ImportCommand::ShelterStatus {
            file,
            municipality,
            db,
        }) => {
            app::init_logging(std::io::stderr);
            let text = import::decode(&std::fs::read(&file.file)?)?;
            let store = Store::connect(&db.database_url).await?;
            let municipality = match municipality {
                Some(m) => MunicipalityCode::parse(&m)?,
                None => guess_municipality(&store, &import::snapshot_ids(&text)?).await?,
            };
            let snapshot = import::parse_status_snapshot(&text, &municipality)?;
            let outcome = store
                .apply_status_snapshot(&Actor::Operator("cli import"), &municipality, snapshot)
                .await?;
            println!("{}", serde_json::to_string_pretty(&outcome)?);
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
