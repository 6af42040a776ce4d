//! Command-line definitions (clap derive) and argument validators.

use std::path::PathBuf;

use alliance_protocol::{MerchantId, PublicKey};
use clap::{Args, Parser, Subcommand};

/// Parses an alliance address, checking prefix and checksum, so a typo is
/// caught before anything is signed or sent.
pub fn parse_address(s: &str) -> Result<PublicKey, String> {
    s.trim()
        .parse::<PublicKey>()
        .map_err(|e| format!("`{s}` is not a valid alliance address: {e}"))
}

/// Parses a positive whole number of points.
pub fn parse_amount(s: &str) -> Result<u64, String> {
    if s.trim().starts_with('-') {
        return Err(format!(
            "`{s}` is negative: an amount is a whole number of points, at least 1"
        ));
    }
    match s.trim().parse::<u64>() {
        Ok(0) => Err("amount must be at least 1 point".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!(
            "`{s}` is not a whole number of points (e.g. 120; at most {})",
            u64::MAX
        )),
    }
}

/// Parses an amount of money in major units with at most two decimals
/// (`12.50`, `3`, `0.05`) to minor units (1250, 300, 5).
pub fn parse_money(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let bad = || {
        format!("`{s}` is not an amount of money: give major units with at most two decimals, e.g. 12.50")
    };
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    if whole.is_empty() && frac.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > 2
    {
        return Err(bad());
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let cents: u64 = format!("{frac:0<2}").parse().map_err(|_| bad())?;
    let minor = whole
        .checked_mul(100)
        .and_then(|w| w.checked_add(cents))
        .ok_or_else(bad)?;
    if minor == 0 {
        return Err("the amount must be at least 0.01".into());
    }
    Ok(minor)
}

/// Parses an acceptance rate `ISSUER=PERCENT` (`coffee=90`,
/// `cinema=87.5`) to the issuer and basis points (1 to 10000).
pub fn parse_rate(s: &str) -> Result<(MerchantId, u16), String> {
    let bad = || {
        format!("`{s}` is not ISSUER=PERCENT (e.g. coffee=90 or cinema=87.5): a percentage above 0 and at most 100, two decimals at most")
    };
    let (issuer, pct) = s.split_once('=').ok_or_else(bad)?;
    let issuer = parse_merchant(issuer.trim())?;
    let (whole, frac) = pct.trim().split_once('.').unwrap_or((pct.trim(), ""));
    if whole.is_empty()
        || frac.len() > 2
        || !whole
            .bytes()
            .chain(frac.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let whole: u32 = whole.parse().map_err(|_| bad())?;
    let frac: u32 = format!("{frac:0<2}").parse().map_err(|_| bad())?;
    let bps = whole
        .checked_mul(100)
        .and_then(|w| w.checked_add(frac))
        .ok_or_else(bad)?;
    if bps == 0 || bps > 10_000 {
        return Err(bad());
    }
    Ok((issuer, bps as u16))
}

/// Parses a merchant id.
pub fn parse_merchant(s: &str) -> Result<MerchantId, String> {
    MerchantId::new(s).map_err(|e| e.to_string())
}

/// What `--receipt-time` accepts, for its error message.
const RECEIPT_TIME_FORMATS: &str = "an RFC 3339 time with its zone (e.g. 2026-11-23T19:43:42+08:00 or 2026-11-23T11:43:42Z), a date (2026-11-23, read as 00:00 UTC), or ms since the Unix epoch";

/// Parses a receipt time to ms since the Unix epoch: an RFC 3339 time
/// with its zone (`Z` or `±HH:MM`; fractions of a second are cut to the
/// millisecond), a date alone (00:00 UTC that day), or a whole number of ms.
pub fn parse_receipt_time(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let bad = || format!("`{s}` is not a receipt time: give {RECEIPT_TIME_FORMATS}");
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse::<u64>().map_err(|_| bad());
    }
    rfc3339_ms(t).ok_or_else(bad)
}

/// `YYYY-MM-DD[(T|t| )HH:MM:SS[.fraction](Z|z|±HH:MM)]` to ms since the epoch.
fn rfc3339_ms(t: &str) -> Option<u64> {
    let b = t.as_bytes();
    let digits = |from: usize, n: usize| -> Option<i64> {
        let part = b.get(from..from + n)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0i64, |a, d| a * 10 + (d - b'0') as i64))
    };
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    if !(at(4, b'-') && at(7, b'-')) {
        return None;
    }
    let (y, m, d) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
    let days = crate::output::days_from_civil(y, m as u32, d as u32)?;
    let mut ms = days.checked_mul(86_400_000)?;
    if b.len() == 10 {
        return u64::try_from(ms).ok();
    }
    if !(matches!(b[10], b'T' | b't' | b' ') && at(13, b':') && at(16, b':')) {
        return None;
    }
    let (hh, mm, ss) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    if hh > 23 || mm > 59 || ss > 59 {
        return None;
    }
    ms += ((hh * 60 + mm) * 60 + ss) * 1000;
    let mut i = 19;
    if at(i, b'.') {
        let n = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        let frac = digits(i + 1, n.min(3))?;
        ms += frac * [100, 10, 1][n.min(3) - 1];
        i += 1 + n;
    }
    let offset_ms = match b.get(i..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), ..] if b.len() == i + 6 && at(i + 3, b':') => {
            let (oh, om) = (digits(i + 1, 2)?, digits(i + 4, 2)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let o = (oh * 60 + om) * 60_000;
            if *sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    u64::try_from(ms - offset_ms).ok()
}

/// Parses a transaction hash (64 hex characters).
pub fn parse_hash(s: &str) -> Result<String, String> {
    let t = s.trim().to_ascii_lowercase();
    if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(t)
    } else {
        Err(format!(
            "`{s}` is not a transaction hash (64 hex characters)"
        ))
    }
}

/// `alliance`: the Points Alliance wallet, merchant and governance CLI.
///
/// Keys stay in your wallet file: transactions are signed here and only the
/// signed transaction is sent to the node.
#[derive(Debug, Parser)]
#[command(
    name = "alliance",
    version,
    about,
    long_about,
    after_help = "Environment:\n  ALLIANCE_NODE        node API base URL (like --node)\n  ALLIANCE_PASSPHRASE  wallet passphrase (otherwise prompted without echo)\n  ALLIANCE_KDF=fast    weak, fast key derivation for new wallets: INSECURE, tests only\n\nExamples:\n  alliance keygen --out alice.json\n  alliance balance --key alice.json\n  alliance send --key alice.json --to pa1... --amount 20 --memo lunch\n  alliance redeem --key alice.json --at books --amount 100 --order B-1001\n  alliance merchant issue --key node_key.json --to pa1... --amount 120 --reason purchase --receipt R-1\n\nFailures exit non-zero with a message saying what to fix. See docs/cli.md."
)]
pub struct Cli {
    /// Node API base URL [default: http://127.0.0.1:8080]. `audit
    /// --export` compares the export's tip with this node's when it is
    /// given (here or in ALLIANCE_NODE).
    #[arg(long, global = true, env = "ALLIANCE_NODE", value_name = "URL")]
    pub node: Option<String>,
    /// Machine-readable output: the same data as JSON on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The node used when neither `--node` nor ALLIANCE_NODE is given.
pub const DEFAULT_NODE: &str = "http://127.0.0.1:8080";

impl Cli {
    /// The node's API base URL: `--node`, ALLIANCE_NODE, or [`DEFAULT_NODE`].
    pub fn node_url(&self) -> &str {
        self.node.as_deref().unwrap_or(DEFAULT_NODE)
    }
}

/// How a submitting command waits.
#[derive(Debug, Clone, Args)]
pub struct WaitArgs {
    /// Do not wait for the transaction to be committed: print its hash and return.
    #[arg(long)]
    pub no_wait: bool,
    /// Seconds to wait for the transaction to be committed.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub timeout: u64,
}

/// The signing key.
#[derive(Debug, Clone, Args)]
pub struct KeyArg {
    /// Key file: a wallet from `alliance keygen` (passphrase from
    /// ALLIANCE_PASSPHRASE or a prompt) or a node key file (node_key.json).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
}

/// Whose account: an address or a key file.
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
pub struct WhoArgs {
    /// Address (pa1...).
    #[arg(value_name = "ADDRESS", value_parser = parse_address)]
    pub address: Option<PublicKey>,
    /// Or a key file, whose address is used (no passphrase needed).
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new encrypted wallet file (scrypt + XChaCha20-Poly1305, mode 0600).
    ///
    /// The passphrase comes from ALLIANCE_PASSPHRASE or is asked twice without
    /// echo. An existing file is never overwritten.
    Keygen {
        /// Where to write the wallet.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Print the address of a key file (no passphrase needed).
    Address {
        /// The signing key.
        #[command(flatten)]
        key: KeyArg,
    },
    /// Show points by issuer, lots with their expiry, and points expiring within 30 days.
    ///
    /// With `--verify --genesis FILE`, the balance is not taken from the
    /// node: its proof (a sparse-Merkle proof against the latest finalized
    /// header, that header's certificate and every validator-set change
    /// since genesis) is checked locally from your genesis file, and
    /// `proven` is printed, or why not (exit code 1). See docs/audit.md.
    Balance {
        /// Whose account.
        #[command(flatten)]
        who: WhoArgs,
        /// Check a proof of the balance locally instead of trusting the node.
        #[arg(long, requires = "genesis")]
        verify: bool,
        /// Your trusted copy of the genesis file (with --verify).
        #[arg(long, value_name = "FILE", requires = "verify")]
        genesis: Option<PathBuf>,
        /// With --verify: refuse a proof whose header is older than this
        /// many seconds by your clock (a lagging or withholding node).
        #[arg(long, value_name = "SECS", default_value_t = 60, requires = "verify")]
        max_age: u64,
        /// With --verify: refuse a proof below this height (e.g. a height
        /// you already saw, so an older state cannot be passed off as current).
        #[arg(long, value_name = "H", default_value_t = 0, requires = "verify")]
        min_height: u64,
    },
    /// Give points to another address (lots closest to expiry go first).
    Send {
        /// The signing key.
        #[command(flatten)]
        key: KeyArg,
        /// Recipient address (pa1...).
        #[arg(long, value_name = "ADDR", value_parser = parse_address)]
        to: PublicKey,
        /// Points to send.
        #[arg(long, value_name = "N", value_parser = parse_amount, allow_hyphen_values = true)]
        amount: u64,
        /// Note for the recipient (at most 128 bytes).
        #[arg(long, value_name = "TEXT", default_value = "")]
        memo: String,
        /// Waiting for the commit.
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Pay a merchant's order with points: the merchant's till makes the
    /// request (`alliance merchant order`), you check it and sign. Points
    /// worth the order's value at the merchant's acceptance rates are
    /// spent, of the issuers the request names or, if none, of every
    /// accepted issuer, closest expiry first.
    Pay {
        /// The signing key.
        #[command(flatten)]
        key: KeyArg,
        /// The merchant's signed request (starts with `pa-order:`).
        #[arg(long, value_name = "REQUEST")]
        request: String,
        /// Waiting for the commit.
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Spend a merchant's own points at that merchant (signed by you
    /// alone). Other members' points are spent with `alliance pay`, on an
    /// order the merchant signs.
    Redeem {
        /// The signing key.
        #[command(flatten)]
        key: KeyArg,
        /// Merchant id where the points are spent (e.g. books).
        #[arg(long, value_name = "MERCHANT", value_parser = parse_merchant)]
        at: MerchantId,
        /// Points to redeem.
        #[arg(long, value_name = "N", value_parser = parse_amount, allow_hyphen_values = true)]
        amount: u64,
        /// The merchant's order reference (1-64 bytes).
        #[arg(long, value_name = "REF")]
        order: String,
        /// Waiting for the commit.
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Convert points of one member into another's, at the published
    /// conversion rate of the member you convert into (`alliance merchant
    /// show ID`). The fewest points of `--from` that cover the new points'
    /// value are spent.
    Convert {
        /// The signing key.
        #[command(flatten)]
        key: KeyArg,
        /// The issuer whose points you give up.
        #[arg(long, value_name = "ID", value_parser = parse_merchant)]
        from: MerchantId,
        /// The issuer whose points you receive.
        #[arg(long, value_name = "ID", value_parser = parse_merchant)]
        to: MerchantId,
        /// Points of `--to` to receive.
        #[arg(long, value_name = "N", value_parser = parse_amount, allow_hyphen_values = true)]
        points: u64,
        /// Waiting for the commit.
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// List an account's transactions, newest first.
    History {
        /// Whose account.
        #[command(flatten)]
        who: WhoArgs,
        /// Most entries to show (1 to 200).
        #[arg(long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=200))]
        limit: u32,
    },
    /// Show a transaction's status and outcome.
    Tx {
        /// Transaction hash (64 hex characters).
        #[arg(value_name = "HASH", value_parser = parse_hash)]
        hash: String,
    },
    /// Show the node's status: chain, height, validators, peers.
    Status,
    /// Merchant commands: issue points, confirm settlements, list merchants.
    #[command(subcommand)]
    Merchant(MerchantCommand),
    /// Governance: propose, vote, list proposals (merchants only).
    #[command(subcommand)]
    Gov(GovCommand),
    /// Re-verify the whole chain from its genesis, trusting no node: hash
    /// links, every transaction signature, every certificate against the
    /// validator set of its height, and re-execution of every block (state
    /// roots). Prints the figures and `verified`, or the first failing block
    /// and transaction with the reason (exit code 1). See docs/audit.md.
    ///
    /// `alliance audit --export FILE [--genesis FILE]` audits an export from
    /// `alliance-node export`; `alliance audit --node URL --genesis FILE`
    /// fetches the node's raw blocks.
    ///
    /// A clean prefix of the chain verifies like the whole chain: the tip's
    /// height, hash and age are printed, and `--min-height`, `--max-age`,
    /// `--tip` (and, for an export, `--node`) refuse a chain that ends too
    /// early.
    #[command(group(clap::ArgGroup::new("source").required(true).multiple(true).args(["export", "genesis"])))]
    Audit {
        /// An export file made by `alliance-node export`. Without it, the
        /// blocks are fetched from --node. With --node too, the export's
        /// tip must be that node's finalized tip (refused if the node has
        /// finalized later blocks, or other ones).
        #[arg(long, value_name = "FILE")]
        export: Option<PathBuf>,
        /// Your own trusted copy of the genesis file (required with --node):
        /// the audit is refused if the export's or node's genesis differs.
        #[arg(long, value_name = "FILE")]
        genesis: Option<PathBuf>,
        /// Refuse a chain whose last block is older than this many seconds
        /// by your clock (blocks may be missing at the end).
        #[arg(long, value_name = "SECS")]
        max_age: Option<u64>,
        /// Refuse a chain that ends below this height (e.g. a height you
        /// already saw on a receipt or another node).
        #[arg(long, value_name = "H", default_value_t = 0)]
        min_height: u64,
        /// Refuse a chain that does not end at this block hash (64 hex
        /// characters, e.g. a node's `tip` you trust).
        #[arg(long, value_name = "HASH", value_parser = parse_hash)]
        tip: Option<String>,
    },
    /// Show the claims between merchants (who owes whom).
    ///
    /// With --from/--to, a settlement report of that period of heights:
    /// redemptions by (redeemer, issuer) with points and value,
    /// confirmations, and each merchant's net position. `--csv` prints it
    /// as CSV (RFC 4180), `--json` as JSON.
    Settlement {
        /// Only claims arising from this height on.
        #[arg(long, value_name = "H")]
        from: Option<u64>,
        /// Only claims arising up to this height.
        #[arg(long, value_name = "H")]
        to: Option<u64>,
        /// CSV on stdout: one row per (redeemer, issuer) pair, then one per
        /// merchant's net position.
        #[arg(long, conflicts_with = "json")]
        csv: bool,
    },
}

/// `alliance merchant ...`.
#[derive(Debug, Subcommand)]
pub enum MerchantCommand {
    /// Issue your points to a customer (signed with the merchant's key).
    Issue {
        /// The signing key.
        #[command(flatten)]
        key: KeyArg,
        /// Customer address (pa1...).
        #[arg(long, value_name = "ADDR", value_parser = parse_address)]
        to: PublicKey,
        /// Points to issue.
        #[arg(long, value_name = "N", value_parser = parse_amount, allow_hyphen_values = true)]
        amount: u64,
        /// Why (e.g. purchase): short, no personal data.
        #[arg(long, value_name = "TEXT")]
        reason: String,
        /// Point-of-sale receipt reference: each receipt earns points once
        /// within the alliance's receipt window.
        #[arg(long, value_name = "REF")]
        receipt: String,
        /// When the receipt was issued (default: now): an RFC 3339 time
        /// with its zone (2026-11-23T19:43:42+08:00, 2026-11-23T11:43:42Z),
        /// a date (2026-11-23, read as 00:00 UTC), or ms since the Unix
        /// epoch. Receipts older than the receipt window (90 days unless the
        /// alliance voted otherwise) or more than a day ahead are refused.
        #[arg(long, value_name = "TIME", value_parser = parse_receipt_time)]
        receipt_time: Option<u64>,
        /// Waiting for the commit.
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Confirm that a debtor merchant paid (off-chain) part of its debt to you.
    ConfirmSettlement {
        /// The signing key.
        #[command(flatten)]
        key: KeyArg,
        /// The merchant that paid.
        #[arg(long, value_name = "ID", value_parser = parse_merchant)]
        debtor: MerchantId,
        /// Points of your claim on the debtor now settled.
        #[arg(long, value_name = "N", value_parser = parse_amount, allow_hyphen_values = true)]
        amount: u64,
        /// Waiting for the commit.
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Make a till's payment request: the customer pays an order of
    /// `--value` with points (`alliance pay --request ...`). Prints the
    /// request, signed with the merchant's key.
    Order {
        /// The merchant's signing key.
        #[command(flatten)]
        key: KeyArg,
        /// The paying customer's address (pa1...).
        #[arg(long, value_name = "ADDR", value_parser = parse_address)]
        customer: PublicKey,
        /// The order reference (1-64 bytes): each order is paid once.
        #[arg(long, value_name = "REF")]
        order: String,
        /// The order's value in major currency units (e.g. 12.50).
        #[arg(long, value_name = "MONEY", value_parser = parse_money)]
        value: u64,
        /// Spend only these issuers' points, in this order (repeat, or
        /// comma-separated); default: every accepted issuer, closest expiry
        /// first.
        #[arg(long = "issuer", value_name = "ID", value_delimiter = ',', value_parser = parse_merchant)]
        issuers: Vec<MerchantId>,
        /// Seconds the request stays valid (1 to 86400).
        #[arg(long, value_name = "SECS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
        valid_for: u64,
    },
    /// Set whose points you accept for redemption and at what rate, from a
    /// future height (the alliance's notice period protects customers).
    Accept {
        /// The merchant's signing key.
        #[command(flatten)]
        key: KeyArg,
        /// An issuer whose points pay for your orders, and its rate as a
        /// percentage of its points' value (repeat: --rate coffee=90 --rate
        /// cinema=87.5). Issuers not listed are refused; without any
        /// --rate, every issuer at 100% (the alliance default). Your own
        /// points always count at 100%.
        #[arg(long = "rate", value_name = "ISSUER=PERCENT", value_parser = parse_rate)]
        rates: Vec<(MerchantId, u16)>,
        /// An issuer whose points customers may convert into yours, at
        /// this percentage of their value (repeat). Without any, none:
        /// converted points are your liability, so you offer it by choice.
        #[arg(long = "convert", value_name = "ISSUER=PERCENT", value_parser = parse_rate)]
        conversions: Vec<(MerchantId, u16)>,
        /// The height from which the rates apply (default: the earliest the
        /// notice allows, with a margin for the transaction to be included).
        #[arg(long, value_name = "H")]
        from_height: Option<u64>,
        /// Waiting for the commit.
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// List the merchants with their policies and point totals.
    List,
    /// Show one merchant.
    Show {
        /// Merchant id.
        #[arg(value_name = "ID", value_parser = parse_merchant)]
        id: MerchantId,
    },
}

/// Policy flags; unset flags default to the merchant's current policy
/// (update-policy) or must be given (add-merchant, except those with a
/// documented default).
#[derive(Debug, Clone, Args)]
pub struct PolicyArgs {
    /// Value of 100 points in minor currency units (e.g. 100 = 1.00).
    #[arg(long, value_name = "MINOR")]
    pub point_value: Option<u64>,
    /// Days a point stays valid (0 = never expires).
    #[arg(long, value_name = "DAYS")]
    pub validity_days: Option<u32>,
    /// Most points one customer may receive per UTC day.
    #[arg(long, value_name = "N")]
    pub daily_cap: Option<u64>,
    /// Most of this merchant's points outstanding at any time.
    #[arg(long, value_name = "N")]
    pub outstanding_cap: Option<u64>,
    /// Smallest redemption accepted.
    #[arg(long, value_name = "N")]
    pub min_redemption: Option<u64>,
}

/// Alliance parameter flags; unset ones default to the current parameters
/// when the node publishes them, otherwise all are required.
#[derive(Debug, Clone, Args)]
pub struct ParamsArgs {
    /// ISO 4217 currency of point values (e.g. CNY).
    #[arg(long, value_name = "CODE")]
    pub currency: Option<String>,
    /// Most transactions per block.
    #[arg(long, value_name = "N")]
    pub block_txs_max: Option<u32>,
    /// Most transaction bytes per block.
    #[arg(long, value_name = "BYTES")]
    pub block_bytes_max: Option<u32>,
    /// Longest a proposal may stay open, in blocks.
    #[arg(long, value_name = "BLOCKS")]
    pub proposal_blocks_max: Option<u64>,
    /// How far ahead of a validator's clock a block timestamp may be.
    #[arg(long, value_name = "MS")]
    pub timestamp_drift_max_ms: Option<u64>,
    /// Days a receipt stays in the receipt window (1..=3650): older
    /// receipts earn no points, and used ones are pruned from the state.
    #[arg(long, value_name = "DAYS")]
    pub receipt_window_days: Option<u32>,
    /// Blocks of notice a merchant must give before a change of its
    /// acceptance policy applies (at most 31622400).
    #[arg(long, value_name = "BLOCKS")]
    pub acceptance_notice_blocks: Option<u64>,
}

/// `alliance gov ...`.
#[derive(Debug, Subcommand)]
pub enum GovCommand {
    /// Open a proposal (your approval counts as the first vote).
    Propose {
        /// The signing key.
        #[command(flatten)]
        key: KeyArg,
        /// Votes count until the current height plus this many blocks.
        #[arg(long, value_name = "N", default_value_t = 1000)]
        deadline_blocks: u64,
        /// Waiting for the commit.
        #[command(flatten)]
        wait: WaitArgs,
        /// What the proposal does.
        #[command(subcommand)]
        action: ProposeAction,
    },
    /// Vote on an open proposal.
    #[command(group(clap::ArgGroup::new("choice").required(true).args(["yes", "no"])))]
    Vote {
        /// The signing key.
        #[command(flatten)]
        key: KeyArg,
        /// Proposal id (see `alliance gov list`).
        #[arg(value_name = "PROPOSAL")]
        proposal: u64,
        /// Approve.
        #[arg(long)]
        yes: bool,
        /// Reject.
        #[arg(long)]
        no: bool,
        /// Waiting for the commit.
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// List proposals with their votes and status.
    List,
}

/// The action of `alliance gov propose`.
#[derive(Debug, Subcommand)]
pub enum ProposeAction {
    /// Admit a new merchant (--point-value, --daily-cap and --outstanding-cap
    /// required; --validity-days defaults to 365, --min-redemption to 1).
    AddMerchant {
        /// Its id (1-16 of a-z, 0-9, '-').
        #[arg(long, value_name = "ID", value_parser = parse_merchant)]
        id: MerchantId,
        /// Display name.
        #[arg(long, value_name = "NAME")]
        name: String,
        /// Its signing key's address (pa1...).
        #[arg(long, value_name = "ADDR", value_parser = parse_address)]
        merchant_key: PublicKey,
        /// Policy values.
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// Suspend a merchant.
    SuspendMerchant {
        /// Its id.
        #[arg(long, value_name = "ID", value_parser = parse_merchant)]
        id: MerchantId,
    },
    /// Replace a merchant's policy (unset flags keep the current values).
    UpdatePolicy {
        /// Its id.
        #[arg(long, value_name = "ID", value_parser = parse_merchant)]
        id: MerchantId,
        /// Policy values.
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// Replace the alliance parameters.
    UpdateParams {
        /// Parameter values.
        #[command(flatten)]
        params: ParamsArgs,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_and_rates_parse_exactly_and_refuse_the_rest() {
        assert_eq!(parse_money("12.50"), Ok(1_250));
        assert_eq!(parse_money("3"), Ok(300));
        assert_eq!(parse_money("0.05"), Ok(5));
        assert_eq!(parse_money(".5"), Ok(50));
        for bad in ["", ".", "0", "0.00", "1.005", "-1", "1,50", "1e2", "x"] {
            assert!(parse_money(bad).is_err(), "{bad}");
        }
        let coffee = MerchantId::new("coffee").unwrap();
        assert_eq!(parse_rate("coffee=90"), Ok((coffee.clone(), 9_000)));
        assert_eq!(parse_rate("coffee=87.5"), Ok((coffee.clone(), 8_750)));
        assert_eq!(parse_rate("coffee=0.01"), Ok((coffee.clone(), 1)));
        assert_eq!(parse_rate("coffee=100"), Ok((coffee, 10_000)));
        for bad in [
            "coffee",
            "coffee=0",
            "coffee=100.01",
            "coffee=90.125",
            "Coffee=90",
            "coffee=-5",
        ] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn amounts() {
        assert_eq!(parse_amount("120"), Ok(120));
        assert!(parse_amount("0").unwrap_err().contains("at least 1"));
        assert!(parse_amount("-5").is_err());
        assert!(parse_amount("1.5").is_err());
        assert!(parse_amount("99999999999999999999999").is_err());
    }

    #[test]
    fn addresses() {
        let k = alliance_protocol::Keypair::from_label("a")
            .public()
            .to_string();
        assert!(parse_address(&k).is_ok());
        let mut typo: Vec<char> = k.chars().collect();
        typo[10] = if typo[10] == 'q' { 'p' } else { 'q' };
        let typo: String = typo.into_iter().collect();
        let e = parse_address(&typo).unwrap_err();
        assert!(e.contains("checksum"), "{e}");
        assert!(parse_address("bc1qxyz").is_err());
    }

    #[test]
    fn hashes_and_merchants() {
        assert!(parse_hash(&"ab".repeat(32)).is_ok());
        assert!(parse_hash("abc").is_err());
        assert!(parse_merchant("books").is_ok());
        assert!(parse_merchant("Books").is_err());
    }

    #[test]
    fn parses_commands() {
        let k = alliance_protocol::Keypair::from_label("a")
            .public()
            .to_string();
        let cli = Cli::try_parse_from([
            "alliance", "--json", "send", "--key", "w.json", "--to", &k, "--amount", "5",
        ])
        .unwrap();
        assert!(cli.json);
        assert!(matches!(cli.command, Command::Send { amount: 5, .. }));
        // balance needs exactly one of ADDRESS / --key.
        assert!(Cli::try_parse_from(["alliance", "balance"]).is_err());
        assert!(Cli::try_parse_from(["alliance", "balance", &k, "--key", "w"]).is_err());
        // vote needs exactly one of --yes / --no.
        assert!(Cli::try_parse_from(["alliance", "gov", "vote", "--key", "k", "1"]).is_err());
        assert!(Cli::try_parse_from([
            "alliance", "gov", "vote", "--key", "k", "1", "--yes", "--no"
        ])
        .is_err());
        let cli = Cli::try_parse_from([
            "alliance",
            "gov",
            "propose",
            "--key",
            "k",
            "--deadline-blocks",
            "50",
            "update-policy",
            "--id",
            "coffee",
            "--daily-cap",
            "10",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::Gov(GovCommand::Propose {
                deadline_blocks: 50,
                ..
            })
        ));
        assert!(Cli::try_parse_from([
            "alliance", "send", "--key", "w", "--to", &k, "--amount", "0"
        ])
        .is_err());
    }

    /// Issue 18: `--amount -5` was reported as an unexpected argument, and
    /// `history --limit 0` printed one row.
    #[test]
    fn negative_amounts_and_zero_limits_are_refused_with_what_to_fix() {
        let k = alliance_protocol::Keypair::from_label("a")
            .public()
            .to_string();
        let err = Cli::try_parse_from([
            "alliance", "send", "--key", "w", "--to", &k, "--amount", "-5",
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("`-5` is negative"), "{err}");
        assert!(!err.contains("unexpected argument"), "{err}");
        let err = Cli::try_parse_from(["alliance", "history", &k, "--limit", "0"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--limit"), "{err}");
        assert!(err.contains("1..=200"), "{err}");
        assert!(Cli::try_parse_from(["alliance", "history", &k, "--limit", "200"]).is_ok());
        assert!(Cli::try_parse_from(["alliance", "history", &k, "--limit", "201"]).is_err());
    }

    #[test]
    fn receipt_times_in_each_accepted_form() {
        const T: u64 = 1_700_000_000_000; // 2023-11-14T22:13:20Z
        for (s, ms) in [
            ("2023-11-14T22:13:20Z", T),
            ("2023-11-14t22:13:20z", T),
            ("2023-11-14 22:13:20Z", T),
            ("2023-11-15T06:13:20+08:00", T),
            ("2023-11-14T17:13:20-05:00", T),
            ("2023-11-14T22:13:20.5Z", T + 500),
            ("2023-11-14T22:13:20.123456Z", T + 123),
            ("2023-11-14", T - (22 * 3600 + 13 * 60 + 20) * 1000),
            ("1970-01-01", 0),
            (" 1700000000000 ", T),
        ] {
            assert_eq!(parse_receipt_time(s), Ok(ms), "{s}");
        }
        for s in [
            "",
            "now",
            "yesterday",
            "2023-11-14T22:13:20",
            "2023-11-14T22:13Z",
            "2023-02-29",
            "2023-11-14T24:00:00Z",
            "2023-11-14T22:13:20.Z",
            "2023-11-14T22:13:20+0800",
            "1969-12-31T23:59:59Z",
            "1970-01-01T07:00:00+08:00",
            "-5",
            "99999999999999999999",
        ] {
            let err = parse_receipt_time(s).unwrap_err();
            assert!(
                err.contains("is not a receipt time: give an RFC 3339 time with its zone"),
                "{s}: {err}"
            );
        }
        let k = alliance_protocol::Keypair::from_label("a")
            .public()
            .to_string();
        let issue = |time: &str| {
            Cli::try_parse_from([
                "alliance",
                "merchant",
                "issue",
                "--key",
                "k",
                "--to",
                &k,
                "--amount",
                "5",
                "--reason",
                "r",
                "--receipt",
                "R-1",
                "--receipt-time",
                time,
            ])
        };
        let err = issue("14/11/2023").unwrap_err().to_string();
        assert!(err.contains("--receipt-time"), "{err}");
        assert!(err.contains("`14/11/2023` is not a receipt time"), "{err}");
        assert!(matches!(
            issue("2023-11-14").unwrap().command,
            Command::Merchant(MerchantCommand::Issue {
                receipt_time: Some(1_699_920_000_000),
                ..
            })
        ));
    }
}
