//! The `alliance` binary: parses arguments, runs the command, and exits
//! non-zero with a message on any failure.

use clap::Parser;

fn main() {
    let cli = alliance_client::cli::Cli::parse();
    let json = cli.json;
    if let Err(f) = alliance_client::run(cli) {
        if json {
            println!(
                "{}",
                serde_json::json!({"error": {"code": f.code, "message": f.message}})
            );
        }
        eprintln!("error: {}", f.message);
        std::process::exit(1);
    }
}
