//! `vgctl`: operate a running vG.
//!
//! `vgctl stats` reads the fast path's counters straight from their bpffs pins, so it works
//! even when vgd's API is unreachable.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use vg::fastpath::{Counters, bpffs};

/// Command-line interface.
#[derive(Debug, Parser)]
#[command(version, about = "Operate a NERG virtual Gateway")]
struct Args {
    /// Where bpffs is mounted.
    #[arg(long, env = "VGD_BPFFS", default_value = bpffs::DEFAULT_MOUNT, global = true)]
    bpffs: PathBuf,
    /// vgd instance name.
    #[arg(long, env = "VGD_INSTANCE", default_value = "default", global = true)]
    instance: String,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Fast-path counters and drops, per CPU.
    Stats,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.command {
        Command::Stats => stats(&args),
    }
}

fn stats(args: &Args) -> anyhow::Result<()> {
    let pin_dir = bpffs::pin_dir(&args.bpffs, &args.instance);
    let counters = Counters::open(&pin_dir).with_context(|| {
        format!(
            "opening the fast path's maps in {} (is vgd running with --instance {}?)",
            pin_dir.display(),
            args.instance
        )
    })?;
    let report = counters.snapshot()?.to_report();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let cpus = report.counters.first().map_or(0, |r| r.per_cpu.len());
    let mut header = format!("{:<22} {:>14}", "COUNTER", "TOTAL");
    for cpu in 0..cpus {
        header.push_str(&format!(" {:>12}", format!("cpu{cpu}")));
    }
    println!("{header}");
    for (prefix, rows) in [("", &report.counters), ("drop:", &report.drops)] {
        for row in rows {
            let mut line = format!("{:<22} {:>14}", format!("{prefix}{}", row.name), row.total);
            for v in &row.per_cpu {
                line.push_str(&format!(" {v:>12}"));
            }
            println!("{line}");
        }
    }
    Ok(())
}
