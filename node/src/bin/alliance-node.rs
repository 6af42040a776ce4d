//! `alliance-node`: the merchant node. Parses arguments and calls the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use alliance_node::keyfile::{self, KEY_FILE};
use alliance_node::members::MembersFile;
use alliance_node::store::{self, Engine, Store};
use alliance_node::synth::Synth;
use alliance_protocol::fixtures::demo_genesis;
use alliance_protocol::genesis::Genesis;
use alliance_protocol::Keypair;
use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

/// A Points Alliance merchant node.
#[derive(Parser)]
#[command(name = "alliance-node", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a node home: the merchant's key file (mode 0600). Prints the
    /// merchant address to put in the members file.
    Init {
        /// Node home directory (created if missing).
        #[arg(long)]
        home: PathBuf,
    },
    /// Build or check a genesis file.
    #[command(subcommand)]
    Genesis(GenesisCommand),
    /// Run this merchant's node.
    Run(RunArgs),
    /// Run a local alliance of demo merchants (real nodes on loopback) with a demo.
    Devnet(DevnetArgs),
    /// Append deterministic synthetic blocks to a demo chain's store, printing
    /// `committed HEIGHT STATE_ROOT` after each durable commit (crash tests,
    /// benchmarks, exports).
    #[command(hide = true)]
    Synth {
        /// Node home directory.
        #[arg(long)]
        home: PathBuf,
        /// A genesis made by `genesis demo`.
        #[arg(long)]
        genesis: PathBuf,
        /// Blocks to append.
        #[arg(long, default_value_t = 10)]
        blocks: u64,
        /// Candidate transactions per block.
        #[arg(long, default_value_t = 100)]
        txs_per_block: usize,
    },
    /// Write the stored chain (genesis + every finalized block) to a
    /// self-contained export file for `alliance audit --export` (never
    /// overwrites; see docs/audit.md).
    Export {
        /// Node home directory.
        #[arg(long)]
        home: PathBuf,
        /// The genesis file.
        #[arg(long)]
        genesis: PathBuf,
        /// The export file to create.
        #[arg(long)]
        out: PathBuf,
    },
    /// Move a stopped node's chain store to another storage engine (e.g. a
    /// redb or sled store made before fjall became the default). Copies
    /// every key into HOME/db.new, then renames HOME/db to
    /// HOME/db.ENGINE-backup and HOME/db.new to HOME/db; delete the backup
    /// once the node runs.
    MigrateStore {
        /// Node home directory.
        #[arg(long)]
        home: PathBuf,
        /// The genesis file (the migrated store is opened and checked with it).
        #[arg(long)]
        genesis: PathBuf,
        /// The engine to move to.
        #[arg(long, default_value = "fjall")]
        to: alliance_node::store::StoreKind,
    },
    /// Replay the stored chain from genesis, verifying certificates, links
    /// and state roots, and print the tip.
    Verify {
        /// Node home directory.
        #[arg(long)]
        home: PathBuf,
        /// The genesis file.
        #[arg(long)]
        genesis: PathBuf,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Node home (key file, config.toml, data).
    #[arg(long)]
    home: PathBuf,
    /// The alliance's genesis file.
    #[arg(long)]
    genesis: PathBuf,
    /// libp2p listen address (repeatable), e.g. /ip4/0.0.0.0/tcp/7400. Overrides config.toml.
    #[arg(long)]
    listen: Vec<String>,
    /// Peer to connect to (repeatable), e.g. /ip4/10.0.0.2/tcp/7400. Overrides config.toml.
    #[arg(long)]
    peer: Vec<String>,
    /// HTTP API address. Overrides config.toml (default 127.0.0.1:8080).
    #[arg(long)]
    api: Option<std::net::SocketAddr>,
    /// Memory budget in MiB (default 1024). Overrides config.toml.
    #[arg(long)]
    memory_budget_mib: Option<u64>,
    /// Storage engine of a new data directory: fjall (default), redb or sled.
    /// Overrides config.toml; an existing store opens on its own engine.
    #[arg(long)]
    store_engine: Option<alliance_node::store::StoreKind>,
    /// Log format.
    #[arg(long, value_enum, default_value = "human")]
    log_format: LogFormat,
    /// Test builds only: misbehave on purpose (equivocate, double-vote,
    /// invalid-block, flood, a comma-separated list, or all).
    #[cfg(feature = "byzantine")]
    #[arg(long, hide = true)]
    byzantine: Option<String>,
}

#[derive(clap::Args)]
struct DevnetArgs {
    /// Number of merchants, each running a validator node.
    #[arg(long, default_value_t = 4)]
    validators: usize,
    /// Working directory (default: a fresh directory under the system temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Node i serves its HTTP API on this port + i.
    #[arg(long, default_value_t = 8080)]
    api_port: u16,
    /// Node i listens for peers on this port + i.
    #[arg(long, default_value_t = 7400)]
    p2p_port: u16,
    /// Start the nodes without running the demo transactions.
    #[arg(long)]
    no_demo: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    /// Readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

#[derive(Subcommand)]
enum GenesisCommand {
    /// Build a genesis from a members file and validate it.
    Build {
        /// Members file (JSON): chain_id, merchants [{id, name, key, policy?}],
        /// optional genesis_time_ms and params.
        #[arg(long)]
        members: PathBuf,
        /// Where to write the genesis.
        #[arg(long)]
        out: PathBuf,
    },
    /// Validate a genesis file and print its hash.
    Check {
        /// The genesis file.
        file: PathBuf,
    },
    /// Write a demo genesis with N deterministic merchants (test and demo
    /// chains only: the keys are derivable by anyone).
    Demo {
        /// Chain id.
        #[arg(long, default_value = "alliance-devnet")]
        chain_id: String,
        /// Number of merchants.
        #[arg(long, default_value_t = 4)]
        validators: usize,
        /// Where to write the genesis.
        #[arg(long)]
        out: PathBuf,
        /// Also create one node home per merchant under this directory
        /// (`node0`, `node1`, ...) holding its demo key.
        #[arg(long)]
        homes: Option<PathBuf>,
        /// Blocks of notice before a merchant's acceptance change applies
        /// (a demo chain's default is short: seconds, not a day).
        #[arg(long, value_name = "BLOCKS", default_value_t = alliance_node::devnet::DEVNET_ACCEPTANCE_NOTICE_BLOCKS)]
        acceptance_notice_blocks: u64,
    },
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn read_genesis(path: &Path) -> Result<Genesis> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read genesis file {}", path.display()))?;
    Genesis::from_json(&bytes).with_context(|| format!("genesis file {}", path.display()))
}

fn write_new(path: &Path, text: &str) -> Result<()> {
    if path.exists() {
        bail!(
            "{} already exists; refusing to overwrite it",
            path.display()
        );
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Init { home } => {
            std::fs::create_dir_all(&home)
                .with_context(|| format!("cannot create home {}", home.display()))?;
            let key = Keypair::generate();
            keyfile::create(&home.join(KEY_FILE), &key)?;
            let config_path = home.join(alliance_node::config::CONFIG_FILE);
            if !config_path.exists() {
                let text = alliance_node::config::NodeConfig::default().to_toml();
                std::fs::write(&config_path, text)
                    .with_context(|| format!("cannot write {}", config_path.display()))?;
            }
            println!(
                "created {} (mode 0600) and {}",
                home.join(KEY_FILE).display(),
                config_path.display()
            );
            println!("merchant address: {}", key.public());
            println!(
                "libp2p peer id:   {}",
                alliance_node::network::peer_id_of(&key.public())
            );
        }
        Command::Genesis(GenesisCommand::Build { members, out }) => {
            let text = std::fs::read_to_string(&members)
                .with_context(|| format!("cannot read members file {}", members.display()))?;
            let file: MembersFile = serde_json::from_str(&text)
                .with_context(|| format!("members file {} is not valid", members.display()))?;
            let genesis = file.into_genesis(now_ms())?;
            write_new(&out, &genesis.to_json())?;
            println!(
                "wrote {} (chain {}, {} merchants, hash {})",
                out.display(),
                genesis.chain_id,
                genesis.merchants.len(),
                genesis.hash()
            );
        }
        Command::Genesis(GenesisCommand::Check { file }) => {
            let genesis = read_genesis(&file)?;
            println!(
                "valid genesis: chain {}, {} merchants, hash {}",
                genesis.chain_id,
                genesis.merchants.len(),
                genesis.hash()
            );
        }
        Command::Genesis(GenesisCommand::Demo {
            chain_id,
            validators,
            out,
            homes,
            acceptance_notice_blocks,
        }) => {
            if validators == 0 || validators > 64 {
                bail!("--validators must be 1..=64");
            }
            let (mut genesis, keys) = demo_genesis(&chain_id, validators, now_ms());
            genesis.params.acceptance_notice_blocks = acceptance_notice_blocks;
            genesis.validate()?;
            write_new(&out, &genesis.to_json())?;
            if let Some(dir) = homes {
                for (i, key) in keys.iter().enumerate() {
                    let home = dir.join(format!("node{i}"));
                    std::fs::create_dir_all(&home)
                        .with_context(|| format!("cannot create {}", home.display()))?;
                    keyfile::create(&home.join(KEY_FILE), key)?;
                }
            }
            println!(
                "wrote {} (demo chain {}, hash {})",
                out.display(),
                chain_id,
                genesis.hash()
            );
        }
        Command::Run(args) => run_node(args)?,
        Command::Devnet(args) => {
            let opts = alliance_node::devnet::DevnetOptions {
                validators: args.validators,
                dir: args.dir,
                api_port: args.api_port,
                p2p_port: args.p2p_port,
                no_demo: args.no_demo,
            };
            alliance_node::devnet::run(opts, || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    rt.block_on(shutdown_signal());
                }
            })?;
        }
        Command::Synth {
            home,
            genesis,
            blocks,
            txs_per_block,
        } => {
            let genesis = read_genesis(&genesis)?;
            let (mut store, mut state) = Store::open(&home.join("db"), &genesis)?;
            let synth = Synth::new(&genesis.chain_id, genesis.merchants.len(), 200);
            for _ in 0..blocks {
                let (fb, exec) = synth.next_block(&state, txs_per_block, genesis.genesis_time_ms);
                store.commit(exec, &fb, &mut state)?;
                println!("committed {} {}", state.tip().height, state.state_root());
            }
        }
        Command::Export { home, genesis, out } => {
            let genesis = read_genesis(&genesis)?;
            if out.exists() {
                bail!("{} already exists; refusing to overwrite it", out.display());
            }
            if !home.join("db").is_dir() {
                bail!("{} holds no chain store (no db directory)", home.display());
            }
            let (store, _state) = Store::open(&home.join("db"), &genesis)?;
            // Every stored entry against the state root, before anything is
            // written (opening checks only the top of the state tree).
            store.verify_state(&genesis)?;
            let blocks = alliance_node::export::write_export(&store, &genesis, &out)?;
            println!(
                "exported {blocks} blocks of chain {} to {} (tip {})",
                genesis.chain_id,
                out.display(),
                store.tip().hash
            );
        }
        Command::MigrateStore { home, genesis, to } => {
            let genesis = read_genesis(&genesis)?;
            let db = home.join("db");
            let (keys, backup) = alliance_node::store::engine::migrate(&db, to)?;
            let (store, state) = Store::open(&db, &genesis)?;
            println!(
                "moved {keys} keys to {to} in {}; tip {} at height {}, state root {} verified; the old store is in {} (delete it once the node runs)",
                db.display(),
                store.tip().hash,
                store.tip().height,
                state.state_root(),
                backup.display()
            );
        }
        Command::Verify { home, genesis } => {
            let genesis = read_genesis(&genesis)?;
            let (store, state) = Store::open(&home.join("db"), &genesis)?;
            store.verify_state(&genesis)?;
            let replayed = store::replay(&store, &genesis).map_err(anyhow::Error::msg)?;
            if replayed.state_root() != state.state_root() {
                bail!(
                    "stored state root {} differs from replay {}",
                    state.state_root(),
                    replayed.state_root()
                );
            }
            println!(
                "verified {} blocks; tip {} state_root {}",
                store.tip().height,
                store.tip().hash,
                state.state_root()
            );
        }
    }
    Ok(())
}

fn run_node(args: RunArgs) -> Result<()> {
    use alliance_node::config::NodeConfig;
    use alliance_node::network::{Network, NetworkConfig};
    use alliance_node::runtime::Node;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,libp2p=warn,libp2p_gossipsub=error".into());
    match args.log_format {
        // Colour only on a terminal: `run > node.log` gets plain text.
        LogFormat::Human => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init(),
    }
    if !args.home.is_dir() {
        bail!(
            "node home {} does not exist: create it with `alliance-node init --home {}`",
            args.home.display(),
            args.home.display()
        );
    }
    let key = keyfile::load(&args.home.join(KEY_FILE))?;
    let mut config = NodeConfig::load(&args.home)?;
    if !args.listen.is_empty() {
        config.listen = args.listen;
    }
    if !args.peer.is_empty() {
        config.peers = args.peer;
    }
    if let Some(api) = args.api {
        config.api = api;
    }
    if let Some(mib) = args.memory_budget_mib {
        config.memory_budget_mib = mib;
    }
    if args.store_engine.is_some() {
        config.store_engine = args.store_engine;
    }
    config.validate().map_err(|why| anyhow::anyhow!("{why}"))?;
    let genesis = read_genesis(&args.genesis)?;
    let db = args.home.join("db");
    let (store, state) = Engine::for_dir(&db, config.store_engine, config.memory_budget_bytes())
        .and_then(|engine| Store::open_with(&db, &genesis, engine))
        .map_err(|e| storage_error(&db, e.into()))?;
    let parse = |list: &[String], what: &str| -> Result<Vec<libp2p::Multiaddr>> {
        list.iter()
            .map(|a| {
                a.parse().with_context(|| {
                    format!("{what} `{a}` is not a multiaddr (e.g. /ip4/127.0.0.1/tcp/7400)")
                })
            })
            .collect()
    };
    let mut net_config = NetworkConfig::new(
        key.seed(),
        genesis.chain_id.clone(),
        state
            .validator_set()
            .validators()
            .iter()
            .map(|v| v.key)
            .collect(),
    );
    net_config.listen_addrs = parse(&config.listen, "listen address")?;
    net_config.bootstrap_addrs = parse(&config.peer_addrs(), "peer address")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let (net, events) = Network::spawn(net_config).map_err(|e| match e {
            alliance_node::network::NetworkError::Listen { addr, reason } => {
                anyhow::anyhow!(
                    "cannot listen on {addr} (port in use? pass --listen ADDR): {reason}"
                )
            }
            other => anyhow::anyhow!("network: {other}"),
        })?;
        let api_listener = tokio::net::TcpListener::bind(config.api)
            .await
            .with_context(|| {
                format!(
                    "cannot bind the API to {} (in use? pass --api ADDR)",
                    config.api
                )
            })?;
        let api_addr = api_listener.local_addr()?;
        #[cfg(feature = "byzantine")]
        let byzantine = match &args.byzantine {
            Some(spec) => Some(
                alliance_node::byzantine::Byzantine::new(
                    spec,
                    &genesis.chain_id,
                    key.clone(),
                    &state
                        .validator_set()
                        .validators()
                        .iter()
                        .map(|v| v.key)
                        .collect::<Vec<_>>(),
                )
                .map_err(anyhow::Error::msg)?,
            ),
            None => None,
        };
        let (node, shared) = Node::new(
            genesis,
            key.clone(),
            config,
            store,
            state,
            net.clone(),
            events,
        )?;
        println!(
            "node {} (peer id {}) api http://{}",
            key.public(),
            net.local_peer_id(),
            api_addr
        );
        // The network's libp2p_* series beside the node's alliance_* ones.
        shared.metrics.attach_network(net.metrics_registry());
        let router = alliance_node::api::router(shared);
        // Header read, request and write-stall timeouts and a connection
        // cap: see alliance_node::api::server.
        tokio::spawn(alliance_node::api::server::serve(api_listener, router));
        #[cfg(feature = "byzantine")]
        let node = match byzantine {
            Some(b) => node.with_byzantine(b),
            None => node,
        };
        node.run(shutdown_signal())
            .await
            .map_err(|e| storage_error(&db, e))
    })
}

/// When a storage failure is behind `e`, says so plainly, naming the data
/// directory: "disk full", "read-only". The node stops on such a failure
/// (a block or vote that is not on disk is never acknowledged or sent), and
/// restarts cleanly once the directory is writable again.
fn storage_error(db: &Path, e: anyhow::Error) -> anyhow::Error {
    use alliance_node::chain::FinalizeError;
    use alliance_node::store::{KvError, StoreError};
    fn engine_io(e: &KvError) -> Option<&std::io::Error> {
        match e {
            KvError::Io(io) => Some(io),
            KvError::Engine(_) | KvError::InUse => None,
        }
    }
    let io = e.chain().find_map(|c| {
        c.downcast_ref::<std::io::Error>()
            .or_else(|| c.downcast_ref::<KvError>().and_then(engine_io))
            .or_else(|| match c.downcast_ref::<StoreError>() {
                Some(StoreError::Db(s)) => engine_io(s),
                _ => None,
            })
            .or_else(|| match c.downcast_ref::<FinalizeError>() {
                Some(FinalizeError::Store(StoreError::Db(s))) => engine_io(s),
                _ => None,
            })
    });
    let Some(io) = io else {
        return e;
    };
    // sled may rewrap the OS error, keeping only its kind.
    use std::io::ErrorKind::{PermissionDenied, ReadOnlyFilesystem, StorageFull};
    let what = match (io.raw_os_error(), io.kind()) {
        (Some(28), _) | (_, StorageFull) => "disk full",
        (Some(30), _) | (_, ReadOnlyFilesystem) => "read-only file system",
        (_, PermissionDenied) => "permission denied (read-only?)",
        _ => "I/O error",
    };
    anyhow::anyhow!(
        "data directory {}: {what} ({io}). The node stopped; nothing that is not on disk was \
         acknowledged or voted for. Make the directory writable (free space), check it with \
         `alliance-node verify`, and restart",
        db.display()
    )
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

fn main() -> ExitCode {
    // Resident memory follows what is in use (alliance_node::alloc).
    alliance_node::alloc::start_trimming();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
