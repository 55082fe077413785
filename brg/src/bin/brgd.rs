//! `brgd`: the NERG BRG agent.
//!
//! Runs the TR-069 CPE ([`brg::agent`]): sessions with the ACS, the Connection Request
//! server, the persisted TR-181 model, applied to Linux (bridge, vxlan device, the eBPF LSL
//! tagger) by [`brg::apply`].
//!
//! Exit: 0 on SIGTERM/SIGINT and after an ACS-requested Reboot (the reboot command has run;
//! a supervisor restarts brgd, which then informs `1 BOOT` + `M Reboot`), 1 on a fatal error.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tracing_subscriber::filter::Targets;

use anyhow::Context as _;
use brg::{
    agent::{Agent, AgentConfig, Device, Exit, Identity, Report},
    apply::{ApplierConfig, LinuxApplier},
};
use clap::{Parser, ValueEnum};
use cwmp::fault::Fault;
use cwmp::model::{Backend, Change, View};
use cwmp::soap::Status;
use tokio_util::sync::CancellationToken;
use tracing::info;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Command-line flags; each also reads an environment variable.
#[derive(Debug, Parser)]
#[command(version, about = "NERG BRG agent (TR-069 CPE)")]
struct Args {
    /// ACS URL (http:// or https://); overrides Device.ManagementServer.URL of the stored
    /// model at every start. Without it the stored (or factory) URL is used.
    #[arg(long, env = "BRGD_ACS_URL")]
    acs_url: Option<String>,
    /// A file holding DHCP option 43 (hex, as the management interface's DHCP client hook
    /// writes it: udhcpc's `$opt43`, dhclient's `$new_vendor_encapsulated_options`): without
    /// --acs-url, its sub-option 1 (TR-069 3.1) is the ACS URL. Read at start.
    #[arg(long, env = "BRGD_DHCP_OPTION43_FILE")]
    dhcp_option43_file: Option<PathBuf>,
    /// User name towards the ACS (overrides ManagementServer.Username).
    #[arg(long, env = "BRGD_ACS_USERNAME")]
    acs_username: Option<String>,
    /// Password towards the ACS (overrides ManagementServer.Password).
    #[arg(long, env = "BRGD_ACS_PASSWORD", hide_env_values = true)]
    acs_password: Option<String>,
    /// PEM file of the CA certificates to trust for an https ACS (default: system roots).
    #[arg(long, env = "BRGD_ACS_CA")]
    acs_ca: Option<PathBuf>,
    /// Timeout of one HTTP request to the ACS, in seconds.
    #[arg(long, env = "BRGD_ACS_TIMEOUT", default_value_t = 30)]
    acs_timeout: u64,
    /// State directory: the model, undelivered events, downloads (default /var/lib/brgd).
    #[arg(long, env = "BRGD_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// Factory defaults (the model's text format: `cwmp-model 1` then `V <path> <value>`
    /// lines); used on first start, after FactoryReset and when the stored model is corrupt.
    #[arg(long, env = "BRGD_FACTORY_DEFAULTS")]
    factory_defaults: Option<PathBuf>,
    /// Connection Request server address, e.g. `0.0.0.0:7547` (no server without it).
    #[arg(long, env = "BRGD_CR_LISTEN")]
    cr_listen: Option<SocketAddr>,
    /// Least seconds between two accepted connection requests (others get 503).
    #[arg(long, env = "BRGD_CR_MIN_INTERVAL", default_value_t = 5)]
    cr_min_interval: u64,
    /// Program run when the ACS asks for a Reboot (brgd exits after it).
    #[arg(long, env = "BRGD_REBOOT_COMMAND")]
    reboot_command: Option<PathBuf>,
    /// Program applying a downloaded firmware image, given its path; non-zero exit = refused.
    #[arg(long, env = "BRGD_FIRMWARE_COMMAND")]
    firmware_command: Option<PathBuf>,
    /// Largest download accepted, in bytes.
    #[arg(long, env = "BRGD_DOWNLOAD_MAX_BYTES", default_value_t = 256 << 20)]
    download_max_bytes: u64,
    /// DeviceInfo.SerialNumber (default: from /etc/machine-id).
    #[arg(long, env = "BRGD_SERIAL_NUMBER")]
    serial_number: Option<String>,
    /// DeviceInfo.ManufacturerOUI (six hex digits).
    #[arg(long, env = "BRGD_OUI", default_value = "00005E")]
    oui: String,
    /// The BRG's Ethernet ports, in `Device.Ethernet.Interface` order (repeat the flag):
    /// the LAN ports and the LSL uplink the ACS bridges by `LowerLayers`.
    #[arg(long = "interface", env = "BRGD_INTERFACES", value_delimiter = ',')]
    interfaces: Vec<String>,
    /// The management interface (TR-069's own IP stack): never a bridge member.
    #[arg(long, env = "BRGD_MGMT_INTERFACE")]
    mgmt_interface: Option<String>,
    /// How the TR-181 model reaches the box: `linux` applies it (bridge, vxlan device,
    /// tagger through rtnetlink); `log` only logs changes (for tests of the TR-069 side).
    #[arg(long, env = "BRGD_APPLY", value_enum, default_value = "linux")]
    apply: ApplyMode,
    /// Log filter: a default level and per-target levels (`info`, `warn,brg=debug`).
    #[arg(long, env = "BRGD_LOG", default_value = "info")]
    log: String,
    /// Log format.
    #[arg(long, env = "BRGD_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let filter = match log_filter(&args.log) {
        Ok(f) => f,
        Err(err) => {
            eprintln!("brgd: invalid --log filter {:?}: {err}", args.log);
            return std::process::ExitCode::FAILURE;
        }
    };
    {
        use tracing_subscriber::{fmt, layer::SubscriberExt as _, util::SubscriberInitExt as _};
        let registry = tracing_subscriber::registry().with(filter);
        match args.log_format {
            LogFormat::Text => registry
                .with(
                    fmt::layer()
                        .with_writer(std::io::stderr)
                        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
                )
                .init(),
            LogFormat::Json => registry
                .with(fmt::layer().json().with_writer(std::io::stderr))
                .init(),
        }
    }
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The log filter `--log` asks for. `netlink_packet_route` warns about every attribute of
/// a newer kernel it parses with an older layout (`IFLA_INET6_CONF ... expecting 236, got
/// 240`, eight per link dump, harmless: brgd reads no IPv6 device configuration), so it is
/// held to errors unless the filter names it.
fn log_filter(text: &str) -> Result<Targets, impl std::fmt::Display> {
    // `Targets` rather than `EnvFilter`: the same `target=level` lists without span and
    // field matching, whose regular-expression engine was a fifth of the firmware's size
    // (issue 21: brgd <= 2.5 MB on a BRG).
    let filter: Targets = text.parse()?;
    if text.contains("netlink_packet_route") {
        return Ok(filter);
    }
    Ok::<_, tracing_subscriber::filter::ParseError>(filter.with_target(
        "netlink_packet_route",
        tracing::level_filters::LevelFilter::ERROR,
    ))
}

/// How the model is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum ApplyMode {
    /// To Linux (`brg::apply::LinuxApplier`).
    Linux,
    /// Changes are logged, the box is left alone.
    Log,
}

/// A backend that accepts every change and logs it (`--apply log`).
#[derive(Debug, Default)]
struct LoggingBackend;

impl Backend for LoggingBackend {
    fn read(&self, param: cwmp::model::PathRef<'_>) -> Result<cwmp::model::Value, Fault> {
        // The `LastChange` and `Stats` counters of interfaces: nothing is applied, so
        // nothing changed and nothing was counted.
        if param.path.ends_with(".LastChange") || param.path.contains(".Stats.") {
            return Ok(cwmp::model::Value::Unsigned(0));
        }
        Err(Fault::new(cwmp::fault::FaultCode::InternalError))
    }

    fn apply(&mut self, _view: &View<'_>, changes: &[Change]) -> Result<Status, Fault> {
        for change in changes {
            info!(path = %change.path, change = ?change.kind, "model change (--apply log: not applied)");
        }
        Ok(Status::Applied)
    }
}

/// The model's backend: the Linux applier, or the logging one.
enum BrgBackend {
    Linux(LinuxApplier),
    Log(LoggingBackend),
}

impl Backend for BrgBackend {
    fn read(&self, param: cwmp::model::PathRef<'_>) -> Result<cwmp::model::Value, Fault> {
        match self {
            BrgBackend::Linux(b) => b.read(param),
            BrgBackend::Log(b) => b.read(param),
        }
    }

    fn validate(&self, view: &View<'_>, changes: &[Change]) -> Result<(), Fault> {
        match self {
            BrgBackend::Linux(b) => b.validate(view, changes),
            BrgBackend::Log(b) => b.validate(view, changes),
        }
    }

    fn apply(&mut self, view: &View<'_>, changes: &[Change]) -> Result<Status, Fault> {
        match self {
            BrgBackend::Linux(b) => b.apply(view, changes),
            BrgBackend::Log(b) => b.apply(view, changes),
        }
    }

    fn restored(&self, view: &View<'_>) {
        match self {
            BrgBackend::Linux(b) => b.restored(view),
            BrgBackend::Log(b) => b.restored(view),
        }
    }
}

impl Device for BrgBackend {
    fn report(&self, view: &View<'_>) -> Report {
        match self {
            BrgBackend::Linux(b) => b.report(view),
            // Nothing is applied: nothing to report.
            BrgBackend::Log(_) => Report::default(),
        }
    }
}

fn backend(args: &Args, state_dir: &std::path::Path) -> anyhow::Result<BrgBackend> {
    Ok(match args.apply {
        ApplyMode::Log => BrgBackend::Log(LoggingBackend),
        ApplyMode::Linux => {
            let applier = LinuxApplier::new(ApplierConfig {
                state_dir: Some(state_dir.join("applier")),
                protected: args.mgmt_interface.iter().cloned().collect(),
            })
            .context("starting the Linux applier (rtnetlink)")?;
            BrgBackend::Linux(applier)
        }
    })
}

fn serial_number() -> String {
    std::fs::read_to_string("/etc/machine-id")
        .ok()
        .map(|id| {
            id.trim()
                .chars()
                .take(12)
                .collect::<String>()
                .to_ascii_uppercase()
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "000000000000".to_owned())
}

async fn run(args: Args) -> anyhow::Result<()> {
    let identity = Identity {
        manufacturer: "NERG".to_owned(),
        oui: args.oui.clone(),
        model_name: "nerg-brg".to_owned(),
        product_class: "BRG".to_owned(),
        serial_number: args.serial_number.clone().unwrap_or_else(serial_number),
        hardware_version: std::env::consts::ARCH.to_owned(),
        software_version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let max_ports = cwmp::tr181::MAX_ETHERNET_INTERFACES as usize;
    anyhow::ensure!(
        args.interfaces.len() <= max_ports,
        "--interface lists {} ports; Device.Ethernet.Interface holds at most {max_ports}",
        args.interfaces.len()
    );
    let state_dir = args
        .state_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("/var/lib/brgd"));
    let backend = backend(&args, &state_dir)?;
    // Subscribed before the agent reads the box for the first time: no event is missed
    // between that reading and the first session.
    let link_events = match &backend {
        BrgBackend::Linux(_) => Some(
            brg::apply::watch_links()
                .context("subscribing to rtnetlink link and address notifications")?,
        ),
        BrgBackend::Log(_) => None,
    };
    let acs_url = match (&args.acs_url, &args.dhcp_option43_file) {
        (Some(url), _) => Some(url.clone()),
        (None, Some(path)) => acs_url_from_dhcp(path),
        (None, None) => None,
    };
    let config = AgentConfig {
        state_dir,
        interfaces: args.interfaces,
        management: args.mgmt_interface,
        factory_defaults: args.factory_defaults,
        acs_url,
        acs_username: args.acs_username,
        acs_password: args.acs_password,
        acs_ca: args.acs_ca,
        cr_listen: args.cr_listen,
        cr_min_interval: Duration::from_secs(args.cr_min_interval),
        reboot_command: args.reboot_command,
        firmware_command: args.firmware_command,
        download_max_bytes: args.download_max_bytes,
        request_timeout: Duration::from_secs(args.acs_timeout.max(1)),
        identity,
    };
    let cancel = CancellationToken::new();
    let mut agent = Agent::new(config, backend, cancel.clone()).await?;
    if let Some(events) = link_events {
        agent.watch_links(events);
    }
    if let Some(addr) = agent.cr_addr() {
        info!(%addr, "brgd ready");
    }

    let stop = cancel.clone();
    let signals = wait_for_signal();
    tokio::spawn(async move {
        if let Err(e) = signals.await {
            tracing::error!("{e:#}");
        }
        stop.cancel();
    });
    match agent.run().await? {
        Exit::Shutdown => info!("stopped"),
        Exit::Reboot => info!("exiting for the reboot"),
    }
    cancel.cancel();
    Ok(())
}

/// The ACS URL of the DHCP option 43 file; `None` (logged) when there is none yet or it
/// is unusable: the stored URL is used then.
fn acs_url_from_dhcp(path: &std::path::Path) -> Option<String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            tracing::warn!(file = %path.display(), "no DHCP option 43 ({e}): using the stored ACS URL");
            return None;
        }
    };
    match brg::agent::option43::parse_hex(&text) {
        Ok(option) => {
            if option.url.is_none() {
                tracing::warn!(file = %path.display(), "DHCP option 43 has no ACS URL (sub-option 1)");
            }
            option
                .url
                .inspect(|url| info!(%url, "ACS URL from DHCP option 43"))
        }
        Err(e) => {
            tracing::warn!(file = %path.display(), "{e}: using the stored ACS URL");
            None
        }
    }
}

/// Waits for SIGTERM or SIGINT (the handlers are installed before this returns its future).
fn wait_for_signal() -> impl Future<Output = anyhow::Result<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let handlers = signal(SignalKind::terminate())
        .and_then(|term| Ok((term, signal(SignalKind::interrupt())?)))
        .context("installing SIGTERM/SIGINT handlers");
    async move {
        let (mut term, mut int) = handlers?;
        tokio::select! {
            _ = term.recv() => info!("SIGTERM: shutting down"),
            _ = int.recv() => info!("SIGINT: shutting down"),
        }
        Ok(())
    }
}
