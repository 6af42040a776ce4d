//! The `alliance` CLI: wallet, merchant and governance commands for Points
//! Alliance. Keys are loaded from an encrypted keystore (or a merchant's
//! node key file), transactions are signed locally and submitted to a
//! node's HTTP API; the node never sees a secret.

#![warn(missing_docs)]

pub mod api;
pub mod cli;
pub mod commands;
pub mod http;
pub mod keystore;
pub mod output;

use cli::{Cli, Command, GovCommand, MerchantCommand};
use commands::{audit, gov, merchant, proof, settlement, wallet, CmdResult, Ctx};

/// Runs a parsed command line.
pub fn run(cli: Cli) -> CmdResult {
    let ctx = Ctx {
        client: http::Client::new(cli.node_url()),
        json: cli.json,
    };
    match &cli.command {
        Command::Keygen { out } => wallet::keygen(&ctx, out),
        Command::Address { key } => wallet::address(&ctx, &key.key),
        Command::Balance {
            who,
            verify,
            genesis,
            max_age,
            min_height,
        } => match (verify, genesis) {
            (true, Some(genesis)) => proof::balance_verified(
                &ctx,
                who,
                genesis,
                std::time::Duration::from_secs(*max_age),
                *min_height,
            ),
            _ => wallet::balance(&ctx, who),
        },
        Command::Send {
            key,
            to,
            amount,
            memo,
            wait,
        } => wallet::send(&ctx, &key.key, *to, *amount, memo, wait),
        Command::Redeem {
            key,
            at,
            amount,
            order,
            wait,
        } => wallet::redeem(&ctx, &key.key, at, *amount, order, wait),
        Command::Pay { key, request, wait } => wallet::pay(&ctx, &key.key, request, wait),
        Command::Convert {
            key,
            from,
            to,
            points,
            wait,
        } => wallet::convert(&ctx, &key.key, (from, to), *points, wait),
        Command::History { who, limit } => wallet::history(&ctx, who, *limit),
        Command::Tx { hash } => wallet::tx(&ctx, hash),
        Command::Status => wallet::status(&ctx),
        Command::Settlement { from, to, csv } => settlement::settlement(&ctx, *from, *to, *csv),
        Command::Audit {
            export,
            genesis,
            max_age,
            min_height,
            tip,
        } => {
            let source = match (export, genesis) {
                (Some(file), genesis) => audit::Source::Export {
                    file,
                    genesis: genesis.as_deref(),
                    compare_with_node: cli.node.is_some(),
                },
                (None, Some(genesis)) => audit::Source::Node { genesis },
                (None, None) => {
                    return Err(commands::Failure::new(
                        "usage",
                        "pass --export FILE, or --node URL --genesis FILE",
                    ))
                }
            };
            let tip = audit::TipArgs {
                max_age_s: *max_age,
                min_height: *min_height,
                tip: tip.as_deref(),
            };
            audit::audit(&ctx, source, &tip)
        }
        Command::Merchant(m) => match m {
            MerchantCommand::Issue {
                key,
                to,
                amount,
                reason,
                receipt,
                receipt_time,
                wait,
            } => merchant::issue(
                &ctx,
                &key.key,
                *to,
                *amount,
                reason,
                (receipt, *receipt_time),
                wait,
            ),
            MerchantCommand::ConfirmSettlement {
                key,
                debtor,
                amount,
                wait,
            } => merchant::confirm_settlement(&ctx, &key.key, debtor, *amount, wait),
            MerchantCommand::Order {
                key,
                customer,
                order,
                value,
                issuers,
                valid_for,
            } => merchant::order(
                &ctx, &key.key, *customer, order, *value, issuers, *valid_for,
            ),
            MerchantCommand::Accept {
                key,
                rates,
                conversions,
                from_height,
                wait,
            } => merchant::accept(&ctx, &key.key, (rates, conversions), *from_height, wait),
            MerchantCommand::List => merchant::list(&ctx),
            MerchantCommand::Show { id } => merchant::show(&ctx, id),
        },
        Command::Gov(g) => match g {
            GovCommand::Propose {
                key,
                deadline_blocks,
                wait,
                action,
            } => gov::propose(&ctx, &key.key, *deadline_blocks, wait, action),
            GovCommand::Vote {
                key,
                proposal,
                yes,
                no: _,
                wait,
            } => gov::vote(&ctx, &key.key, *proposal, *yes, wait),
            GovCommand::List => gov::list(&ctx),
        },
    }
}
