use clap::Parser;
use keebai_cli::args::Cli;

#[tokio::main]
async fn main() {
    let exit = keebai_cli::run(Cli::parse()).await;
    std::process::exit(exit.code());
}
