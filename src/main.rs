use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    anpi::cli::run(anpi::cli::Cli::parse()).await
}
