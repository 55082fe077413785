//! `vgd`: the NERG virtual Gateway daemon.
//!
//! Loads the XDP fast path with its maps pinned in bpffs, attaches it to the access
//! interface in native mode, and serves `/metrics`, `/health` and `/ready`. Runs in the
//! foreground (systemd, containers); on SIGTERM or SIGINT it answers what the slow path had
//! queued and exits, leaving the programs attached through their pinned links and the maps
//! pinned, so forwarding goes on and the next vgd takes over (`--detach-on-exit` detaches).
//!
//! Start-up runs in phases, each a function below: the machine ([`prepare_host`]), the
//! state ([`open_state`]), the fast path ([`start_fast_path`]), the route watch, the
//! slow path's responder ([`start_responder`]), HTTP ([`bind_http`]), the background work
//! ([`start_slow_path`], NAT expiry, DHCP timers); then it serves until shutdown.
//!
//! Homes come from the configuration file and from the REST API ([`vg::api`]); both are
//! kept in the store `<state-dir>/leases.redb` with the leases and each home's NAT blocks,
//! merged at start by the rule in [`vg::control`] (the file wins for the homes it lists).
//! The API needs a bearer token (`--api-token-file`, or `VGD_API_TOKEN`): without one it is
//! off (logged). It shares the `--listen` listener with /metrics unless `--api-listen`
//! names a separate management address. NAT block records go to
//! `<state-dir>/nat-blocks.log` (`--nat-block-log`), one JSON line each.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use anyhow::Context as _;
use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use clap::Parser;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};
use vg::{
    blocklog::BlockLog,
    config::Config,
    control::Control,
    fastpath::{
        AttachMode, Counters, FastPath, bpffs,
        expiry::{NatTables, Timers, monotonic_ns},
        fib::{self, RouteWatch},
        maps::{PinnedHosts, PinnedMaps},
        reconcile::Interfaces,
        v6::V6Tables,
    },
    metrics::Metrics,
    slowpath::{packet_socket::PacketSocket, responder::Responder},
    store::RedbStore,
};

/// Command-line flags; each also reads an environment variable.
#[derive(Debug, Parser)]
#[command(version, about = "NERG virtual Gateway daemon")]
struct Args {
    /// Configuration file (TOML): fast-path settings and subscribers.
    #[arg(long, env = "VGD_CONFIG")]
    config: Option<PathBuf>,
    /// Validate the configuration file and exit (0 when valid).
    #[arg(long)]
    check_config: bool,
    /// Access-side interface (towards the BRGs' LSLs); overrides `fastpath.access_interface`.
    #[arg(long, env = "VGD_ACCESS_IFACE")]
    access_iface: Option<String>,
    /// Core-side interface (towards the internet): downstream NAT; none = upstream only.
    #[arg(long, env = "VGD_CORE_IFACE")]
    core_iface: Option<String>,
    /// XDP attach mode: native in production; generic only for diagnosis.
    #[arg(long, env = "VGD_XDP_MODE", value_enum, default_value_t = AttachMode::Native)]
    xdp_mode: AttachMode,
    /// Where bpffs is (mounted there if it is not).
    #[arg(long, env = "VGD_BPFFS", default_value = bpffs::DEFAULT_MOUNT)]
    bpffs: PathBuf,
    /// Instance name: maps are pinned in `<bpffs>/nerg/<instance>`.
    #[arg(long, env = "VGD_INSTANCE", default_value = "default", value_parser = parse_instance)]
    instance: String,
    /// Address of the HTTP listener for /metrics, /health and /ready.
    #[arg(long, env = "VGD_LISTEN", default_value = "127.0.0.1:9180")]
    listen: SocketAddr,
    /// Where vgd keeps its state (the lease store `leases.redb`); default
    /// `/var/lib/nerg/<instance>`.
    #[arg(long, env = "VGD_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// Detach the XDP programs on exit. By default they stay attached through their pinned
    /// links, so that forwarding goes on while vgd restarts or is upgraded.
    #[arg(long, env = "VGD_DETACH_ON_EXIT")]
    detach_on_exit: bool,
    /// How often idle NAT mappings are swept (seconds).
    #[arg(long, env = "VGD_EXPIRY_INTERVAL", default_value = "10", value_parser = parse_secs)]
    expiry_interval: std::time::Duration,
    /// Log output format.
    #[arg(long, env = "VGD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Log filter (tracing `EnvFilter` syntax, e.g. `info` or `vg=debug`).
    #[arg(long, env = "VGD_LOG", default_value = "info")]
    log: String,
    /// File holding the REST API's bearer token (one line; at least 16 characters). Without
    /// a token (this or `VGD_API_TOKEN`) the API is off: vgd logs it and serves only
    /// /metrics, /health and /ready.
    #[arg(long, env = "VGD_API_TOKEN_FILE")]
    api_token_file: Option<PathBuf>,
    /// Management address for the REST API. Default: the API shares the `--listen`
    /// listener; given, it is served there only.
    #[arg(long, env = "VGD_API_LISTEN")]
    api_listen: Option<SocketAddr>,
    /// The NAT port-block log (one JSON line per block allocation and release); default
    /// `<state-dir>/nat-blocks.log`.
    #[arg(long, env = "VGD_NAT_BLOCK_LOG")]
    nat_block_log: Option<PathBuf>,
    /// Export per-subscriber packet and byte series (one series set per home: mind the
    /// cardinality).
    #[arg(long, env = "VGD_PER_SUBSCRIBER_METRICS")]
    per_subscriber_metrics: bool,
    /// HTTP connections open at once, per listener (beyond: closed when accepted).
    #[arg(long, env = "VGD_HTTP_MAX_CONNECTIONS", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    http_max_connections: u64,
    /// HTTP connections open at once from one client address, per listener.
    #[arg(long, env = "VGD_HTTP_MAX_PER_CLIENT", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    http_max_per_client: u64,
    /// Seconds a client has to send a request's headers.
    #[arg(long, env = "VGD_HTTP_HEADER_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    http_header_timeout: u64,
    /// Seconds a connection may stay with nothing read or written.
    #[arg(long, env = "VGD_HTTP_IDLE_TIMEOUT", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    http_idle_timeout: u64,
}

impl Args {
    /// The HTTP listeners' bounds.
    fn http_limits(&self) -> vg::http::Limits {
        vg::http::Limits {
            max_connections: usize::try_from(self.http_max_connections).unwrap_or(usize::MAX),
            max_per_client: usize::try_from(self.http_max_per_client).unwrap_or(usize::MAX),
            header_timeout: std::time::Duration::from_secs(self.http_header_timeout),
            idle_timeout: std::time::Duration::from_secs(self.http_idle_timeout),
            ..vg::http::Limits::DEFAULT
        }
    }
}

/// The API token from `--api-token-file` or `VGD_API_TOKEN`.
fn api_token(args: &Args) -> anyhow::Result<Option<Vec<u8>>> {
    let token = match &args.api_token_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading the API token file {}", path.display()))?,
        ),
        None => std::env::var("VGD_API_TOKEN").ok(),
    };
    let Some(token) = token else { return Ok(None) };
    let token = token.trim();
    anyhow::ensure!(
        token.len() >= 16 && token.bytes().all(|b| b.is_ascii_graphic()),
        "the API token must be at least 16 printable characters without spaces"
    );
    Ok(Some(token.as_bytes().to_vec()))
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn parse_secs(s: &str) -> Result<std::time::Duration, String> {
    match s.parse::<u64>() {
        Ok(n) if n > 0 => Ok(std::time::Duration::from_secs(n)),
        _ => Err("a whole number of seconds, at least 1".into()),
    }
}

fn parse_instance(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(s.to_owned())
    } else {
        Err("use 1-64 characters from [A-Za-z0-9_-]".into())
    }
}

struct AppState {
    metrics: Metrics,
    counters: Counters,
    ready: AtomicBool,
    control: Arc<std::sync::Mutex<Control>>,
    per_subscriber: bool,
    /// vgd's interfaces by role, for `vg_xdp_attached`.
    xdp_interfaces: Vec<(&'static str, u32)>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if let Err(err) = init_tracing(&args) {
        eprintln!("vgd: {err:#}");
        return std::process::ExitCode::FAILURE;
    }
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            error!("{err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_tracing(args: &Args) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log)
        .with_context(|| format!("invalid --log filter {:?}", args.log))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}

/// The responder as vgd runs it: replies through the packet socket, leases in redb, hosts
/// in the pinned host table and IPv6 neighbours and delegated routes in the pinned IPv6
/// tables.
type VgResponder = Responder<PacketSocket, RedbStore, (PinnedHosts, V6Tables)>;

async fn run(args: Args) -> anyhow::Result<()> {
    let config = match &args.config {
        Some(path) => Config::load(path).context("invalid configuration")?,
        None => Config::try_from(vg::config::ConfigFile::default())?,
    };
    if args.check_config {
        println!(
            "configuration valid: {} subscribers",
            config.subscribers.len()
        );
        return Ok(());
    }
    let host = prepare_host(&args, &config)?;
    if let Some(v6) = &config.ipv6 {
        vg::fastpath::routes::unreachable(v6.pools())
            .await
            .context("adding the IPv6 pools' unreachable routes")?;
        info!(pools = ?v6.pools(), "IPv6 pools routed as unreachable in the kernel");
    }
    let (mut control, store, timers) = open_state(&args, config, host.ifaces.access_ifindex)?;
    let mut fastpath = start_fast_path(&args, &host, &mut control)?;

    let shutdown = CancellationToken::new();
    tokio::spawn(wait_for_signal(shutdown.clone()));
    let ring = fastpath.take_punt_ring().context("opening the punt ring")?;
    watch_routes(&mut fastpath, &shutdown)?;
    let (responder, control) = start_responder(&args, &host, control, store)?;
    let state = Arc::new(AppState {
        metrics: Metrics::new().context("creating metrics")?,
        counters: fastpath.counters().context("opening the counter maps")?,
        ready: AtomicBool::new(false),
        control: Arc::clone(&control),
        per_subscriber: args.per_subscriber_metrics,
        xdp_interfaces: std::iter::once(("access", host.ifaces.access_ifindex))
            .chain(host.ifaces.core_ifindex.map(|i| ("core", i)))
            .collect(),
    });
    let servers = bind_http(&args, &state, &control, &shutdown).await?;

    // The background work: NAT expiry, DHCP timers, the slow path's reader and its thread.
    let tables = NatTables::open(&host.pin_dir).context("opening the NAT tables")?;
    let expiry = tokio::spawn(run_expiry(
        tables,
        timers,
        args.expiry_interval,
        Arc::clone(&state),
        shutdown.clone(),
    ));
    tokio::spawn(run_dhcp_timers(
        Arc::clone(&responder),
        Arc::clone(&state),
        shutdown.clone(),
    ));
    let slowpath = start_slow_path(ring, responder, &state, &shutdown)?;

    state.ready.store(true, Ordering::Release);
    release_startup_memory();
    notify_systemd_ready();
    info!("ready");

    vg::http::serve(
        servers.main,
        servers.app,
        args.http_limits(),
        state.metrics.http("main"),
        shutdown.clone(),
    )
    .await
    .context("HTTP server failed")?;

    // Shutdown: the servers and tasks end, the queued frames are answered, the programs stay.
    shutdown.cancel();
    if let Some(api) = servers.api {
        match api.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => error!(error = %err, "API server failed"),
            Err(err) => error!(error = %err, "API server task panicked"),
        }
    }
    if let Err(err) = expiry.await {
        error!(error = %err, "NAT expiry task panicked");
    }
    slowpath.stop().await;
    if args.detach_on_exit {
        fastpath.detach_all();
        info!(pin_dir = %host.pin_dir.display(), "XDP detached; maps stay pinned for the next start");
    } else {
        info!(
            pin_dir = %host.pin_dir.display(),
            "XDP stays attached (pinned links) and keeps forwarding; the next vgd takes over"
        );
    }
    Ok(())
}

/// What start-up learnt about the machine.
struct Host {
    /// The access interface's name.
    access_iface: String,
    /// The instance's bpffs pin directory.
    pin_dir: PathBuf,
    /// The interfaces the maps name.
    ifaces: Interfaces,
}

/// Start-up phase 1, the machine: both interfaces exist, bpffs is mounted and the pin
/// directory ready (with a warning when it is private), receive VLAN offload is off on the
/// access interface and IP forwarding on. Fails before anything is loaded.
fn prepare_host(args: &Args, config: &Config) -> anyhow::Result<Host> {
    let access_iface = args
        .access_iface
        .clone()
        .or_else(|| config.fastpath.access_interface.clone())
        .context("no access interface: give --access-iface or fastpath.access_interface")?;
    let access_ifindex =
        vg::fastpath::if_index(&access_iface).context("checking the access interface")?;
    let core_ifindex = match &args.core_iface {
        Some(core) => Some(vg::fastpath::if_index(core).context("checking --core-iface")?),
        None => None,
    };
    let ifaces = Interfaces {
        access_ifindex,
        access_mac: interface_mac(&access_iface)?,
        core_ifindex,
    };
    let mounted_here =
        bpffs::ensure_mounted(&args.bpffs).context("mounting bpffs for the fast path's maps")?;
    let pin_dir = bpffs::prepare_pin_dir(&args.bpffs, &args.instance)
        .context("preparing bpffs for the fast path's maps")?;
    if let Some(warning) = bpffs::visibility(&args.bpffs, mounted_here).warning(&args.bpffs) {
        warn!("{warning}");
    }
    receive_vlan_offload_off(&access_iface);
    // bpf_fib_lookup refuses to route (FWD_DISABLED) for interfaces without forwarding.
    for iface in std::iter::once(&access_iface).chain(args.core_iface.as_ref()) {
        enable_sysctl(&format!("/proc/sys/net/ipv4/conf/{iface}/forwarding"))
            .context("enabling IPv4 forwarding")?;
    }
    info!("IPv4 forwarding enabled on the access and core interfaces");
    if config.fastpath.vtep6.is_some() || config.ipv6.is_some() {
        // VXLAN over IPv6 and the homes' routed IPv6: bpf_fib_lookup checks IPv6 forwarding
        // globally (`all`), and frames handed to the stack for neighbour resolution are
        // forwarded by it.
        enable_sysctl("/proc/sys/net/ipv6/conf/all/forwarding")
            .context("enabling IPv6 forwarding")?;
        info!("IPv6 forwarding enabled");
    }
    Ok(Host {
        access_iface,
        pin_dir,
        ifaces,
    })
}

/// Sets the sysctl at `path` to 1 unless it is 1 already: a container (Kubernetes, or
/// podman without `unmask=/proc/sys`) sees /proc/sys read-only, and there the node or the
/// pod's `sysctls` enable forwarding before vgd starts.
fn enable_sysctl(path: &str) -> anyhow::Result<()> {
    if std::fs::read_to_string(path).is_ok_and(|v| v.trim() == "1") {
        return Ok(());
    }
    std::fs::write(path, "1").with_context(|| {
        format!("writing 1 to {path} (read-only in a container: set it before vgd starts)")
    })
}

/// A NIC strips received VLAN tags into metadata by default, where XDP cannot see them (and
/// a redirect loses them): the fast path parses tags in-line.
fn receive_vlan_offload_off(iface: &str) {
    match lsl::offload::switch_off(iface, lsl::offload::RECEIVE_VLAN) {
        Ok(done) => info!(
            %iface,
            off = ?done.off,
            absent = ?done.absent,
            "receive VLAN offload off: tags stay in-line for XDP"
        ),
        Err(err) => warn!(
            %iface,
            error = %err,
            "could not switch off receive VLAN offload; tagged LSLs may arrive untagged"
        ),
    }
}

/// Start-up phase 2, the state: the store (leases, homes, NAT blocks), the block log, and
/// the control plane's homes merged from the file and the store (the precedence rule of
/// [`vg::control`]).
fn open_state(
    args: &Args,
    config: Config,
    access_ifindex: u32,
) -> anyhow::Result<(Control, RedbStore, Timers)> {
    let state_dir = args
        .state_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("/var/lib/nerg").join(&args.instance));
    std::fs::create_dir_all(&state_dir)
        .with_context(|| format!("creating the state directory {}", state_dir.display()))?;
    let store = RedbStore::open(&state_dir.join("leases.redb")).context("opening the store")?;
    info!(state_dir = %state_dir.display(), "store open");
    let block_log_path = args
        .nat_block_log
        .clone()
        .unwrap_or_else(|| state_dir.join("nat-blocks.log"));
    let block_log = BlockLog::open(&block_log_path)
        .with_context(|| format!("opening the NAT block log {}", block_log_path.display()))?;
    // The file's homes move into the control state (one copy per home from here on).
    let from_file = config.subscribers.len();
    let timers = config
        .nat
        .as_ref()
        .map_or_else(Timers::default, Timers::from_nat);
    let control = Control::start(
        config,
        Arc::new(store.clone()),
        block_log,
        access_ifindex,
        vg::nat::UnixTime(unix_now()),
    )
    .context("loading subscribers and NAT blocks")?;
    info!(subscribers = control.len(), from_file, "subscribers loaded");
    Ok((control, store, timers))
}

/// Start-up phase 3, the fast path: loaded (adopting the pins of the vgd before), its maps
/// reconciled with the homes by the control plane (which keeps them), its configuration
/// written, its programs attached (taking over pinned links atomically).
fn start_fast_path(args: &Args, host: &Host, control: &mut Control) -> anyhow::Result<FastPath> {
    let mut fastpath = FastPath::load(&host.pin_dir).context("loading the XDP fast path")?;
    info!(pin_dir = %host.pin_dir.display(), "fast path loaded, maps pinned");
    let tables = PinnedMaps::open(&host.pin_dir).context("opening the fast path's maps")?;
    let report = control
        .reconcile(Box::new(tables))
        .context("writing the homes into the fast path's maps")?;
    fastpath
        .maps()
        .configure(control.config(), &host.ifaces, None)
        .context("writing the fast path's configuration")?;
    info!(?report, "fast path maps reconciled with the configuration");
    fastpath
        .attach_access(&host.access_iface, args.xdp_mode)
        .context("attaching the access-side XDP program")?;
    info!(iface = %host.access_iface, mode = %args.xdp_mode, "XDP attached (access)");
    if let Some(core) = &args.core_iface {
        fastpath
            .attach_core(core, args.xdp_mode)
            .context("attaching the core-side XDP program")?;
        info!(iface = %core, mode = %args.xdp_mode, "XDP attached (core)");
    }
    Ok(fastpath)
}

/// The route cache follows the kernel's routes and neighbours from here on.
fn watch_routes(fastpath: &mut FastPath, shutdown: &CancellationToken) -> anyhow::Result<()> {
    let mut fib_generation = fastpath
        .take_fib_generation()
        .context("opening the route generation")?;
    let route_watch = RouteWatch::open().context("subscribing to rtnetlink notifications")?;
    fib_generation
        .bump()
        .context("bumping the route generation")?;
    tokio::spawn(route_watch.run(fib_generation, fib::SAFETY_INTERVAL, shutdown.clone()));
    Ok(())
}

/// Start-up phase 4, the slow path's answers: the responder restores every home's leases
/// from the store (and their hosts into the fast path), and the control plane gets the
/// responder it changes at run time (it took the maps in phase 3).
#[expect(
    clippy::type_complexity,
    reason = "the two shared halves of the control plane"
)]
fn start_responder(
    args: &Args,
    host: &Host,
    mut control: Control,
    store: RedbStore,
) -> anyhow::Result<(
    Arc<std::sync::Mutex<VgResponder>>,
    Arc<std::sync::Mutex<Control>>,
)> {
    let socket = PacketSocket::bind(&host.access_iface)
        .with_context(|| format!("opening a packet socket on {}", host.access_iface))?;
    let hosts = PinnedHosts::open(&host.pin_dir).context("opening the host table")?;
    let v6_tables = V6Tables::open(&host.pin_dir).context("opening the IPv6 tables")?;
    let mut responder = Responder::new(
        control.config(),
        socket,
        store,
        (hosts, v6_tables),
        vg::dhcp::UnixTime(unix_now()),
    );
    start_ipv6(args, &control, &mut responder)?;
    let responder = Arc::new(std::sync::Mutex::new(responder));
    control.attach(Box::new(Arc::clone(&responder)));
    Ok((responder, Arc::new(std::sync::Mutex::new(control))))
}

/// The responder as every home's IPv6 router: the router address (`[ipv6]`'s, else the
/// first global address of the core interface, read once), a packet socket on the core
/// interface for ICMPv6 errors sent there, and each home's IPv6 with its DHCPv6 bindings
/// restored (their fast-path entries rewritten; the first RAs go out at the next tick).
/// Without `[ipv6]` the homes have none, and the slow path's IPv6 entries of an earlier run
/// are removed.
fn start_ipv6(args: &Args, control: &Control, responder: &mut VgResponder) -> anyhow::Result<()> {
    let now_ms = vg::slowpath::monotonic_ms();
    let now = vg::dhcp::UnixTime(unix_now());
    let homes: Vec<(u32, Option<vg::control::HomeIpv6>)> = control
        .config()
        .subscribers
        .keys()
        .map(|&id| (id, control.ipv6_of(id)))
        .collect();
    if control.config().ipv6.is_none() {
        responder.start_ipv6(homes, now_ms, now);
        return Ok(());
    }
    let configured = control
        .config()
        .ipv6
        .as_ref()
        .and_then(|c| c.router_address());
    let router = match (configured, &args.core_iface) {
        (Some(addr), _) => Some(addr),
        (None, Some(core)) => vg::slowpath::v6::first_global_address(core)
            .with_context(|| format!("reading the addresses of {core}"))?,
        (None, None) => None,
    };
    match router {
        Some(addr) => info!(%addr, "IPv6 router address"),
        None => warn!(
            "no IPv6 router address ([ipv6] router_address, or a global address on --core-iface): no ICMPv6 errors will be sent"
        ),
    }
    responder.set_router_address(router);
    if let Some(core) = &args.core_iface {
        let socket = PacketSocket::bind_send_only(core)
            .with_context(|| format!("opening a packet socket on {core}"))?;
        responder.set_core_sink(Box::new(socket));
    }
    responder.start_ipv6(homes, now_ms, now);
    Ok(())
}

/// The HTTP listeners, bound; the API's served already when it has a listener of its own.
struct Servers {
    /// `/metrics`, `/health`, `/ready` (and the API, unless it has its own listener).
    main: tokio::net::TcpListener,
    /// What `main` serves.
    app: Router,
    /// The API's own server, when `--api-listen` gave it a listener.
    api: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// Start-up phase 5, HTTP: the main listener with the metrics and health routes, and the
/// REST API on it or on its own listener (or off, without a token).
async fn bind_http(
    args: &Args,
    state: &Arc<AppState>,
    control: &Arc<std::sync::Mutex<Control>>,
    shutdown: &CancellationToken,
) -> anyhow::Result<Servers> {
    let mut app = Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(|| async { "ok\n" }))
        .route("/ready", get(ready))
        .with_state(Arc::clone(state));
    let mut api = None;
    match (api_token(args)?, args.api_listen) {
        (None, _) => {
            warn!("no API token (--api-token-file or VGD_API_TOKEN): the REST API is off")
        }
        (Some(token), None) => {
            app = app.merge(vg::api::router(Arc::clone(control), token));
            info!(listen = %args.listen, "REST API on the metrics listener");
        }
        (Some(token), Some(addr)) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding the API listener on {addr}"))?;
            let router = vg::api::router(Arc::clone(control), token);
            let (limits, stats) = (args.http_limits(), state.metrics.http("api"));
            api = Some(tokio::spawn(vg::http::serve(
                listener,
                router,
                limits,
                stats,
                shutdown.clone(),
            )));
            info!(listen = %addr, "REST API on its own listener");
        }
    }
    let main = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding the HTTP listener on {}", args.listen))?;
    info!(listen = %args.listen, "serving /metrics, /health, /ready");
    Ok(Servers { main, app, api })
}

/// The running slow path: the ring's reader task and the responder's thread.
struct SlowPath {
    queue: Arc<vg::slowpath::Queue>,
    reader: tokio::task::JoinHandle<std::io::Result<()>>,
    worker: std::thread::JoinHandle<()>,
}

/// Start-up phase 6, the slow path: the ring's reader only queues; the responder's own
/// thread answers, one store commit per batch, without holding up the reader while a commit
/// waits for its fsync.
fn start_slow_path(
    ring: aya::maps::RingBuf<aya::maps::MapData>,
    responder: Arc<std::sync::Mutex<VgResponder>>,
    state: &Arc<AppState>,
    shutdown: &CancellationToken,
) -> anyhow::Result<SlowPath> {
    let queue = Arc::new(vg::slowpath::Queue::new(SLOWPATH_QUEUE_FRAMES));
    let reader_state = Arc::clone(state);
    let reader_queue = Arc::clone(&queue);
    let reader = tokio::spawn(vg::slowpath::run(ring, shutdown.clone(), move |records| {
        let refused = reader_queue.push(records);
        if refused > 0 {
            reader_state
                .metrics
                .slowpath
                .with_label_values(&["ignored", "queue_full"])
                .inc_by(refused as u64);
        }
    }));
    let worker_state = Arc::clone(state);
    let worker_queue = Arc::clone(&queue);
    let worker = std::thread::Builder::new()
        .name("vgd-slowpath".into())
        .spawn(move || {
            vg::slowpath::answer_queued(&worker_queue, &responder, &worker_state.metrics)
        })
        .context("starting the slow path's thread")?;
    Ok(SlowPath {
        queue,
        reader,
        worker,
    })
}

impl SlowPath {
    /// Waits for the reader to end (at shutdown), then lets the thread answer what was
    /// queued (and store its leases) before it ends.
    async fn stop(self) {
        match self.reader.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => error!(error = %err, "slow path reader failed"),
            Err(err) => error!(error = %err, "slow path task panicked"),
        }
        self.queue.close();
        if self.worker.join().is_err() {
            error!("the slow path's thread panicked");
        }
    }
}

/// The MAC address of `iface` in vgd's network namespace (getifaddrs' link-layer entry).
fn interface_mac(iface: &str) -> anyhow::Result<[u8; 6]> {
    for ifa in nix::ifaddrs::getifaddrs().context("listing interfaces")? {
        if ifa.interface_name != iface {
            continue;
        }
        if let Some(mac) = ifa
            .address
            .as_ref()
            .and_then(|a| a.as_link_addr())
            .and_then(|l| l.addr())
        {
            return Ok(mac);
        }
    }
    anyhow::bail!("interface {iface} has no MAC address")
}

async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    state
        .metrics
        .update_xdp_attached(&state.xdp_interfaces)
        .await;
    // Reading maps and the control state blocks: off the async threads.
    let st = Arc::clone(&state);
    let text = tokio::task::spawn_blocking(move || {
        let state = st;
        let ids = {
            let control = state
                .control
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let m = &state.metrics;
            m.subscribers
                .set(i64::try_from(control.len()).unwrap_or(i64::MAX));
            m.leases_in_use
                .set(i64::try_from(control.leases_in_use()).unwrap_or(i64::MAX));
            if let Some(pool) = control.pool() {
                m.update_pool(&pool);
            }
            if let Some(v6) = control.prefix_pool() {
                m.update_prefixes(&v6.stats());
            }
            if state.per_subscriber {
                control.config().subscribers.keys().copied().collect()
            } else {
                Vec::new()
            }
        };
        if state.per_subscriber {
            let homes: Vec<_> = ids
                .into_iter()
                .filter_map(|id| Some((id, state.counters.subscriber_counters(id).ok()?)))
                .collect();
            state.metrics.update_subscribers(&homes);
        }
        state
            .counters
            .snapshot()
            .map_err(anyhow::Error::from)
            .and_then(|snap| {
                state.metrics.update(&snap);
                state.metrics.encode().map_err(anyhow::Error::from)
            })
    })
    .await
    .map_err(anyhow::Error::from)
    .and_then(|r| r);
    match text {
        Ok(text) => (StatusCode::OK, text),
        Err(err) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reading counters: {err:#}\n"),
        ),
    }
}

async fn ready(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    if state.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting\n")
    }
}

/// Seconds since the UNIX epoch (lease times are wall-clock: they survive restarts).
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Punted frames waiting for the slow path's thread at most (about 400 bytes each for DHCP,
/// 2 KiB at worst): eight times the punt ring, a second and more of a busy home's DHCP.
const SLOWPATH_QUEUE_FRAMES: usize = 16_384;

/// The responder's timers: leases, offers and quarantines (DHCPv4 and DHCPv6, one store
/// commit) once a second; the IPv6 routers' RAs, NS retransmissions and binding expiry at
/// their earliest deadline (at most a second away, at least [`MIN_TIMER_GAP`] apart).
async fn run_dhcp_timers<S, L, H>(
    responder: Arc<std::sync::Mutex<Responder<S, L, H>>>,
    state: Arc<AppState>,
    shutdown: CancellationToken,
) where
    S: vg::slowpath::responder::FrameSink + Send + 'static,
    L: vg::slowpath::responder::Stores + Send + 'static,
    H: vg::slowpath::responder::HostTable + vg::slowpath::v6::NeighbourTable + Send + 'static,
{
    let mut next_second = vg::slowpath::monotonic_ms();
    loop {
        let now_ms = vg::slowpath::monotonic_ms();
        let (commit, counts, next_v6) = {
            let mut responder = responder
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let commit = (now_ms >= next_second).then(|| {
                next_second = now_ms + 1_000;
                responder.tick(vg::dhcp::UnixTime(unix_now()))
            });
            let next_v6 = responder.timers6(now_ms);
            (commit, responder.take_v6_counts(), next_v6)
        };
        if let Some(commit) = commit {
            state.metrics.count_commit(commit);
        }
        state.metrics.count_v6(&counts);
        let wake = next_v6.map_or(next_second, |at| at.min(next_second));
        let wait = wake
            .saturating_sub(vg::slowpath::monotonic_ms())
            .max(MIN_TIMER_GAP.as_millis() as u64);
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(std::time::Duration::from_millis(wait)) => {}
        }
    }
}

/// The shortest wait between two runs of the responder's timers: a burst of homes due at
/// once is served in one run rather than one run each.
const MIN_TIMER_GAP: std::time::Duration = std::time::Duration::from_millis(10);

/// Sweeps the NAT tables every `interval` until shutdown (on a blocking thread: a sweep
/// iterates the maps with one syscall per entry).
async fn run_expiry(
    tables: NatTables,
    timers: Timers,
    interval: std::time::Duration,
    state: Arc<AppState>,
    shutdown: CancellationToken,
) {
    let tables = Arc::new(std::sync::Mutex::new(tables));
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let tables = Arc::clone(&tables);
        let swept = tokio::task::spawn_blocking(move || {
            let mut tables = tables
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            tables.sweep(&timers, monotonic_ns())
        })
        .await;
        match swept {
            Ok(Ok(report)) => {
                state
                    .metrics
                    .nat_mappings
                    .set(i64::try_from(report.mappings - report.expired).unwrap_or(i64::MAX));
                state.metrics.nat_expired.inc_by(report.expired as u64);
                state
                    .metrics
                    .nat_ports_released
                    .inc_by(report.released as u64);
                if report.expired > 0 || report.released > 0 {
                    tracing::debug!(?report, "NAT expiry sweep");
                }
            }
            Ok(Err(err)) => error!(error = %err, "NAT expiry sweep failed"),
            Err(err) => error!(error = %err, "NAT expiry sweep panicked"),
        }
    }
}

async fn wait_for_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        error!("cannot install signal handlers; stop with SIGKILL");
        return;
    };
    tokio::select! {
        _ = term.recv() => info!("SIGTERM: shutting down"),
        _ = int.recv() => info!("SIGINT: shutting down"),
    }
    shutdown.cancel();
}

/// Tells systemd (Type=notify) that start-up is complete, when run under it.
fn notify_systemd_ready() {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let sent = std::os::unix::net::UnixDatagram::unbound()
        .and_then(|sock| sock.send_to(b"READY=1", &path));
    if let Err(err) = sent {
        tracing::warn!(error = %err, "sd_notify READY=1 failed");
    }
}

/// Gives the heap's free memory back to the kernel once start-up is done: reading a large
/// configuration and importing it into the store peak far above what vgd keeps, and glibc's
/// allocator holds on to freed pages otherwise (they would stay in vgd's resident memory).
fn release_startup_memory() {
    vg::http::release_free_memory();
}
