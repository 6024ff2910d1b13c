//! The `rightsflow` binary: parses the command line and hands over to the library.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    rightsflow::cli::run(rightsflow::cli::Cli::parse()).await
}
