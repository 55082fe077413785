//! `brgd`: the NERG BRG agent.
//!
//! This increment applies the LSL uplink: it attaches the eBPF tagger to the uplink with the
//! LSL's 802.1Q or QinQ tags and runs until SIGTERM/SIGINT (detaching on exit). The TR-069
//! CPE (ACS sessions, the TR-181 model, bridge and VXLAN reconcile) lands with the BRG issue.

use anyhow::Context as _;
use brg::tagger::{Tagger, Tags};
use clap::Parser;
use lsl::LslId;
use tracing::info;

/// Command-line flags; each also reads an environment variable.
#[derive(Debug, Parser)]
#[command(version, about = "NERG BRG agent")]
struct Args {
    /// The LSL uplink interface (the bridge port towards the access network).
    #[arg(long, env = "BRGD_UPLINK")]
    uplink: String,
    /// The LSL, e.g. `vlan:100` or `qinq:10.200` (VXLAN uses a kernel vxlan device).
    #[arg(long, env = "BRGD_LSL")]
    lsl: LslId,
    /// Log filter (tracing `EnvFilter` syntax).
    #[arg(long, env = "BRGD_LOG", default_value = "info")]
    log: String,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let filter = match tracing_subscriber::EnvFilter::try_new(&args.log) {
        Ok(f) => f,
        Err(err) => {
            eprintln!("brgd: invalid --log filter {:?}: {err}", args.log);
            return std::process::ExitCode::FAILURE;
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let tags = match args.lsl {
        LslId::Vlan { s_tag, c_vid } => Tags {
            s_tag: s_tag.map(|s| (s.tpid as u16, s.vid.get())),
            c_vid: c_vid.get(),
        },
        LslId::Vxlan { .. } => anyhow::bail!(
            "--lsl {}: a VXLAN LSL uses a kernel vxlan device, not the tagger",
            args.lsl
        ),
    };
    // The tagger's outer tag is written in-line by the kernel at transmit only when the
    // uplink has no transmit VLAN offload (see ebpf/brg-tc).
    let ethtool = std::process::Command::new("ethtool")
        .args([
            "-K",
            &args.uplink,
            "txvlan",
            "off",
            "tx-vlan-stag-hw-insert",
            "off",
        ])
        .output()
        .context("running ethtool (package ethtool) to switch off transmit VLAN offload")?;
    if !ethtool.status.success() {
        anyhow::bail!(
            "ethtool -K {} txvlan off failed: {}",
            args.uplink,
            String::from_utf8_lossy(&ethtool.stderr).trim()
        );
    }
    info!(uplink = %args.uplink, "transmit VLAN offload off: tags go out in-line");
    let tagger = Tagger::attach(&args.uplink, tags)
        .with_context(|| format!("attaching the LSL tagger to {}", args.uplink))?;
    info!(uplink = %args.uplink, lsl = %args.lsl, "LSL tagger attached");

    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => info!("SIGTERM: shutting down"),
        _ = int.recv() => info!("SIGINT: shutting down"),
    }
    drop(tagger);
    info!("tagger detached");
    Ok(())
}
