fn main() {
    eprintln!("alliance: the wallet CLI arrives with the HTTP API (issue #5)");
    std::process::exit(2)
}
