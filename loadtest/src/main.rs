//! anpi's benchmarks. Each scenario measures anpi beside a peer on the same
//! data in the same run and prints a Markdown section for `BENCHMARKS.md`.
//!
//! - `aid`: matching among a million aid requests and 100,000 offers, in
//!   process, over HTTP and in PostGIS; claims racing on one hot request.
//! - `geo`: nearest open tsunami shelters with room among synthetic shelters
//!   spread like Japan's, in process, over HTTP (wrk), and in PostGIS.
//! - `fanout`: live updates from an office's API call to thousands of
//!   WebSocket subscribers: memory per connection, latency, frames per write.
//! - `surge`: check-ins flooding in, the batch writer beside one transaction
//!   per check-in, on PostgreSQL.
//! - `ceiling`: one frame per write syscall to N loopback sockets, the most
//!   deliveries per second this machine can make.

mod aid;
mod ceiling;
mod fanout;
mod geo;
mod peers;
mod pool;
mod report;
mod subscribers;
mod surge;
mod synthetic;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "anpi-loadtest",
    about = "anpi benchmarks (loopback only, bounded in time)"
)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// Aid matching (nearest requests, best offers) vs PostGIS, and claims on one hot request.
    Aid(aid::AidArgs),
    /// Nearest-shelter queries: anpi in-process and over HTTP vs PostGIS KNN.
    Geo(geo::GeoArgs),
    /// Live fan-out: hold, broadcast, steady and burst phases against one anpi.
    Fanout(fanout::FanoutArgs),
    /// Check-ins flooding in: the batch writer vs one transaction each, on PostgreSQL.
    Surge(surge::SurgeArgs),
    /// anpi's fan-out beside nchan and Socket.IO, two instances each on one Redis.
    Peers(peers::PeersArgs),
    /// One frame per write syscall to N loopback sockets: the machine's ceiling.
    Ceiling(ceiling::CeilingArgs),
    /// The reading end of `ceiling` (started by it).
    Drain(ceiling::DrainArgs),
    /// A pool of WebSocket subscribers, steered by `fanout` over stdin/stdout.
    Subscribers(subscribers::SubscribersArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().scenario {
        Scenario::Aid(args) => aid::run(args).await,
        Scenario::Geo(args) => geo::run(args).await,
        Scenario::Fanout(args) => fanout::run(args).await,
        Scenario::Subscribers(args) => subscribers::run(args).await,
        Scenario::Surge(args) => surge::run(args).await,
        Scenario::Ceiling(args) => ceiling::run(args).await,
        Scenario::Peers(args) => peers::run(args).await,
        Scenario::Drain(args) => ceiling::drain(args).await,
    }
}
