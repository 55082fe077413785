//! brgd's TR-069 CPE: the tokio layer around the I/O-free [`cwmp::session::Session`].
//!
//! ```text
//!            +------------------- Agent::run (one task) -------------------+
//!  CR server | triggers: connection request, periodic, ScheduleInform,     |  HTTP(S)
//!  (cr.rs) ->|   active value change, finished download, retry backoff    |-> ACS
//!            | session: Inform -> TransferComplete -> empty POST -> serve  |  (http.rs)
//!            | persist model + events after every message (store.rs)      |
//!            | actions: Reboot, FactoryReset, ScheduleInform, Download     |
//!            +--------------------------------------------------------------+
//! ```
//!
//! - Start: the model comes from the state directory, else from the factory defaults file
//!   (a corrupt stored model is logged and replaced by the defaults, never fatal). The event
//!   queue is restored; `1 BOOT` is queued, and `0 BOOTSTRAP` on first start or when
//!   `ManagementServer.URL` differs from the URL of the last bootstrap.
//! - Sessions: one at a time; a failed one is retried after [`RetryPolicy`]'s backoff
//!   (TR-069 3.2.1.1, from `ManagementServer.CWMPRetry*`) with every undelivered event kept
//!   (and persisted). Why a session failed is logged once per cause until a session
//!   succeeds ([`Retries`]); the retries after it are logged at debug level. A connection
//!   request starts a session at once, backoff or not.
//! - Reboot: `M Reboot` is queued and persisted, the `--reboot-command` runs, and
//!   [`Agent::run`] returns [`Exit::Reboot`] (brgd exits; the next start informs
//!   `1 BOOT` + `M Reboot`).
//! - FactoryReset: the model is replaced by the factory defaults, pending events are dropped
//!   and `0 BOOTSTRAP` is queued.
//! - Download: fetched over HTTP(S) with the ACS's credentials, size-checked, handed to the
//!   `--firmware-command`, and reported by TransferComplete with the fault that applies; one
//!   interrupted by a restart is reported failed (9010) after it. It is recorded (a marker
//!   file) before the ACS hears DownloadResponse, and starts (after its DelaySeconds) while
//!   the session goes on.
//! - ScheduleInform: persisted; fires after a restart too.
//! - Value changes of read-only values the device sets (SoftwareVersion, the Connection
//!   Request URL) are detected across restarts and informed under their notification.
//! - What the box does ([`Device::report`]: interface status, MAC addresses, the management
//!   interface's addresses) and `Device.InterfaceStack` are published into the model at
//!   start, at the start of every session, after every ACS write that was applied, and on
//!   every link event ([`Agent::watch_links`]); a changed value is a value change, and an
//!   active one opens a session (after `DefaultActiveNotificationThrottle`, if set).
//! - A redirect of the Inform (301/302/307/308) moves the session (up to 5 times).

pub mod cr;
pub mod digest;
mod download;
pub mod http;
pub mod option43;
pub mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use cwmp::fault::{Fault, FaultCode};
use cwmp::model::{Backend, Change, Model, PathRef, Value, View};
use cwmp::session::{Action, EventQueue, Retries, RetryPolicy, Session, SessionConfig, Step};
use cwmp::soap::{Event, EventCode, Status, TransferComplete, TransferFault};
use hyper::{Method, StatusCode};
use rand::RngExt as _;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use self::cr::{CrServer, CrSettings};
use self::http::{ClientConfig, Credentials, HttpSession};
use self::store::StateDir;

const MS: &str = "Device.ManagementServer.";

/// Most HTTP exchanges in one session: an ACS that never ends its session (a bug or an
/// attack) cannot hold the CPE forever.
const MAX_EXCHANGES_PER_SESSION: u32 = 100_000;

/// Most redirects of a session's Inform that are followed (TR-069 3.4.5 asks for at least 5).
const MAX_REDIRECTS: u32 = 5;

/// What the device reports about itself in `Device.DeviceInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `Manufacturer`.
    pub manufacturer: String,
    /// `ManufacturerOUI` (six hex digits).
    pub oui: String,
    /// `ModelName`.
    pub model_name: String,
    /// `ProductClass`.
    pub product_class: String,
    /// `SerialNumber`.
    pub serial_number: String,
    /// `HardwareVersion`.
    pub hardware_version: String,
    /// `SoftwareVersion`.
    pub software_version: String,
}

/// The agent's settings (brgd's flags).
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Where the model, the events and downloads are kept.
    pub state_dir: PathBuf,
    /// The factory defaults (model text format); `None`: the schema's defaults.
    pub factory_defaults: Option<PathBuf>,
    /// Overrides `ManagementServer.URL` at every start.
    pub acs_url: Option<String>,
    /// Overrides `ManagementServer.Username` at every start.
    pub acs_username: Option<String>,
    /// Overrides `ManagementServer.Password` at every start.
    pub acs_password: Option<String>,
    /// CA certificates (PEM) trusted for HTTPS; `None`: the system's.
    pub acs_ca: Option<PathBuf>,
    /// Where the Connection Request server listens; `None`: no server.
    pub cr_listen: Option<SocketAddr>,
    /// Least time between two accepted connection requests (more get 503).
    pub cr_min_interval: Duration,
    /// Run before a Reboot.
    pub reboot_command: Option<PathBuf>,
    /// Applies a downloaded firmware image (its path is the argument).
    pub firmware_command: Option<PathBuf>,
    /// Largest accepted download.
    pub download_max_bytes: u64,
    /// Timeout of one HTTP request to the ACS.
    pub request_timeout: Duration,
    /// The BRG's Ethernet ports, listed in `Device.Ethernet.Interface` in this order (the
    /// ACS names them in `LowerLayers`).
    pub interfaces: Vec<String>,
    /// The management interface (TR-069's own IP stack), published as a
    /// `Device.IP.Interface` with its addresses: the VXLAN underlay an ACS can bind to.
    pub management: Option<String>,
    /// `Device.DeviceInfo`.
    pub identity: Identity,
}

/// Why [`Agent::run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Shutdown was requested.
    Shutdown,
    /// The ACS asked for a reboot and the reboot command has run; the process should end.
    Reboot,
}

/// One row of a device-filled table: `(parameter name, value)` pairs.
pub type Row = Vec<(String, Value)>;

/// What the device reports about itself, read from the box: values to store (with
/// [`Model::set`], so that a change is a value change under the parameter's notification)
/// and the rows of tables only the device fills.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// `(parameter path, value)`.
    pub values: Vec<(String, Value)>,
    /// `(table path ending in `.`, rows)`: row `k` is instance `k + 1`, given as
    /// `(parameter name, value)` pairs; instances past the rows are removed.
    pub tables: Vec<(String, Vec<Row>)>,
}

/// The application backend of the agent: a model [`Backend`] that can also say what the box
/// is doing ([`Device::report`]). The agent asks at the start of every session, after every
/// ACS write it applied, and on every link event ([`Agent::watch_links`]).
pub trait Device: Backend {
    /// The operational state to publish; nothing by default.
    fn report(&self, view: &View<'_>) -> Report {
        let _ = view;
        Report::default()
    }
}

/// The backend the model sees: `DeviceInfo.UpTime` is the agent's, everything else goes to
/// the application's backend `B` (the Linux applier).
#[derive(Debug)]
pub struct AgentBackend<B> {
    inner: B,
    started: Instant,
    /// Change sets applied so far: the agent publishes the device's state after each.
    applied: u64,
}

impl<B> AgentBackend<B> {
    /// The application's backend.
    pub fn inner(&self) -> &B {
        &self.inner
    }
}

impl<B: Backend> Backend for AgentBackend<B> {
    fn read(&self, param: PathRef<'_>) -> Result<Value, Fault> {
        if param.path == "Device.DeviceInfo.UpTime" {
            return Ok(Value::Unsigned(self.started.elapsed().as_secs()));
        }
        self.inner.read(param)
    }

    fn validate(&self, view: &View<'_>, changes: &[Change]) -> Result<(), Fault> {
        self.inner.validate(view, changes)
    }

    fn apply(&mut self, view: &View<'_>, changes: &[Change]) -> Result<Status, Fault> {
        let status = self.inner.apply(view, changes)?;
        self.applied += 1;
        Ok(status)
    }

    fn restored(&self, view: &View<'_>) {
        self.inner.restored(view);
    }
}

/// The TR-069 agent; see the module docs.
pub struct Agent<B: Backend> {
    config: AgentConfig,
    model: Model<AgentBackend<B>>,
    queue: EventQueue,
    store: StateDir,
    client: ClientConfig,
    session_config: SessionConfig,
    cr: Option<CrServer>,
    cr_rx: mpsc::Receiver<()>,
    /// Finished downloads: the TransferComplete and the marker file to remove once it is
    /// queued durably.
    downloads_tx: mpsc::Sender<(TransferComplete, PathBuf)>,
    downloads_rx: mpsc::Receiver<(TransferComplete, PathBuf)>,
    cancel: CancellationToken,
    retries: Retries,
    session_wanted: bool,
    /// Pending ScheduleInforms: Unix time and CommandKey (persisted in `scheduled`).
    scheduled: Vec<(i64, String)>,
    /// Next periodic Inform (Unix seconds) and the settings it was computed from.
    periodic: Option<(i64, (bool, u64, String))>,
    last_value_change_session: Option<Instant>,
    /// Link (and address) events of the box: each one publishes its state again.
    link_events: Option<mpsc::Receiver<()>>,
}

impl<B: Backend> std::fmt::Debug for Agent<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("state_dir", &self.config.state_dir)
            .field("retries", &self.retries.count())
            .finish_non_exhaustive()
    }
}

/// Unix seconds now.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl<B: Device> Agent<B> {
    /// Loads the state, binds the Connection Request server and queues the boot events.
    pub async fn new(
        config: AgentConfig,
        backend: B,
        cancel: CancellationToken,
    ) -> anyhow::Result<Self> {
        let mut store = StateDir::open(&config.state_dir)?;
        let schema = cwmp::tr181::brg().context("building the TR-181 schema")?;
        let mut model = Model::new(
            schema,
            AgentBackend {
                inner: backend,
                started: Instant::now(),
                applied: 0,
            },
        );
        let first_start = !store.exists("model");
        let restored = match store.load_model(&mut model) {
            Ok(Some(report)) => {
                store::log_skipped("stored model", &report);
                true
            }
            Ok(None) => {
                if !first_start {
                    tracing::error!("stored model unreadable: falling back to factory defaults");
                }
                false
            }
            Err(e) => {
                tracing::error!("stored model is corrupt ({e}): falling back to factory defaults");
                false
            }
        };
        if !restored {
            load_factory_defaults(&mut model, config.factory_defaults.as_deref());
        }
        let session_config = SessionConfig::default();
        let client = ClientConfig::new(config.acs_ca.as_deref(), session_config.limits.max_bytes)?;
        let client = ClientConfig {
            request_timeout: config.request_timeout,
            ..client
        };
        let (cr_tx, cr_rx) = mpsc::channel(1);
        let cr = match config.cr_listen {
            Some(addr) => {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding the connection request server to {addr}"))?;
                let path = match store.read("cr-path") {
                    Some(p)
                        if p.starts_with('/')
                            && p.len() > 8
                            && !p.contains(char::is_whitespace) =>
                    {
                        p
                    }
                    _ => {
                        let p = cr::random_path();
                        store.write("cr-path", &p)?;
                        p
                    }
                };
                let server = CrServer::spawn(
                    listener,
                    path,
                    config.cr_min_interval,
                    cr_tx,
                    cancel.clone(),
                )
                .context("starting the connection request server")?;
                tracing::info!(addr = %server.local_addr(), "connection request server listening");
                Some(server)
            }
            None => None,
        };
        let (downloads_tx, downloads_rx) = mpsc::channel(8);
        let scheduled = load_scheduled(store.read("scheduled").as_deref());
        let mut agent = Self {
            config,
            model,
            queue: store.load_events(),
            store,
            client,
            session_config,
            cr,
            cr_rx,
            downloads_tx,
            downloads_rx,
            cancel,
            retries: Retries::default(),
            session_wanted: true,
            scheduled,
            periodic: None,
            last_value_change_session: None,
            link_events: None,
        };
        // The read-only values the device set in its previous run (identity, Connection
        // Request URL) are not in the model file: put them back first, so that a different
        // value now (a new SoftwareVersion, a new CR port) is a value change the ACS hears
        // about under the parameter's notification attribute.
        let previous = agent.store.read("device-values");
        for line in previous.as_deref().unwrap_or_default().lines() {
            if let Some((path, value)) = line.split_once('\t') {
                let _ = agent.model.set(path, value);
            }
        }
        agent.model.clear_value_changes();
        agent.apply_local_settings(None, true);
        agent.device_reset();
        agent.publish();
        if previous.is_none() {
            // Nothing to compare with: the first values are not changes.
            agent.model.clear_value_changes();
        }
        agent.queue.booted();
        if first_start {
            tracing::info!("first start: bootstrapping");
            agent.store.remove("acs-url")?;
        }
        agent.recover_downloads()?;
        agent.check_bootstrap()?;
        agent.persist()?;
        if agent.text(&format!("{MS}URL")).is_empty() {
            tracing::warn!("no ACS URL (--acs-url or ManagementServer.URL): no sessions");
        }
        Ok(agent)
    }

    /// After the tree was replaced wholesale (restored, factory defaults): the port
    /// inventory and the interface stack are put back, and the backend applies the tree.
    fn device_reset(&mut self) {
        let ports: Vec<&str> = self.config.interfaces.iter().map(String::as_str).collect();
        if let Err(e) = crate::apply::inventory(&mut self.model, &ports) {
            tracing::error!("listing the Ethernet ports in the model: {e}");
        }
        if let Some(mgmt) = &self.config.management
            && let Err(e) = crate::apply::ip_inventory(&mut self.model, mgmt)
        {
            tracing::error!("listing the management interface in Device.IP.Interface: {e}");
        }
        if let Err(e) = crate::apply::publish_interface_stack(&mut self.model) {
            tracing::warn!("publishing the interface stack: {e}");
        }
        self.model.backend().restored(&self.model.view());
    }

    /// Publishes what the box is doing ([`Device::report`]) and the interface stack of the
    /// model as it stands. Errors are logged: a value the schema refuses is a bug of the
    /// report, not a reason to stop the agent.
    fn publish(&mut self) {
        let report = self.model.backend().inner.report(&self.model.view());
        for (table, rows) in &report.tables {
            if let Err(e) = sync_rows(&mut self.model, table, rows) {
                tracing::warn!("publishing {table}: {e}");
            }
        }
        for (path, value) in report.values {
            if let Err(e) = self.model.set(&path, value) {
                tracing::warn!("publishing {path}: {e}");
            }
        }
        if let Err(e) = crate::apply::publish_interface_stack(&mut self.model) {
            tracing::warn!("publishing the interface stack: {e}");
        }
    }

    /// Publishes the box's state again on every link or address event from `events` (see
    /// [`crate::apply::watch_links`]).
    pub fn watch_links(&mut self, events: mpsc::Receiver<()>) {
        self.link_events = Some(events);
    }

    /// The model (for inspection).
    pub fn model(&self) -> &Model<AgentBackend<B>> {
        &self.model
    }

    /// The Connection Request server's address, if it runs.
    pub fn cr_addr(&self) -> Option<SocketAddr> {
        self.cr.as_ref().map(CrServer::local_addr)
    }

    /// Writes the identity, the flag overrides (when `flags`: at start and after a factory
    /// reset, so an ACS may still change the URL at run time) and the Connection Request URL
    /// into the model (as the device: read-only parameters included). `local_ip` is our
    /// address towards the ACS, used when the CR server listens on a wildcard address.
    fn apply_local_settings(&mut self, local_ip: Option<std::net::IpAddr>, flags: bool) {
        let id = self.config.identity.clone();
        let mut set = |path: &str, value: &str| {
            if let Err(e) = self.model.set(path, value) {
                tracing::warn!("cannot set {path}: {e}");
            }
        };
        set("Device.DeviceInfo.Manufacturer", &id.manufacturer);
        set("Device.DeviceInfo.ManufacturerOUI", &id.oui);
        set("Device.DeviceInfo.ModelName", &id.model_name);
        set("Device.DeviceInfo.ProductClass", &id.product_class);
        set("Device.DeviceInfo.SerialNumber", &id.serial_number);
        set("Device.DeviceInfo.HardwareVersion", &id.hardware_version);
        set("Device.DeviceInfo.SoftwareVersion", &id.software_version);
        if flags {
            let c = &self.config;
            for (name, value) in [
                ("URL", &c.acs_url),
                ("Username", &c.acs_username),
                ("Password", &c.acs_password),
            ] {
                if let Some(value) = value {
                    set(&format!("{MS}{name}"), value);
                }
            }
        }
        let mut device_values = String::new();
        for name in [
            "Manufacturer",
            "ManufacturerOUI",
            "ModelName",
            "ProductClass",
            "SerialNumber",
            "HardwareVersion",
            "SoftwareVersion",
        ] {
            let path = format!("Device.DeviceInfo.{name}");
            device_values.push_str(&format!("{path}\t{}\n", self.text(&path)));
        }
        if let Some(cr) = &self.cr {
            let addr = cr.local_addr();
            let ip = if addr.ip().is_unspecified() {
                local_ip
            } else {
                Some(addr.ip())
            };
            if let Some(ip) = ip {
                let url = format!("http://{}{}", SocketAddr::new(ip, addr.port()), cr.path());
                if let Err(e) = self
                    .model
                    .set(&format!("{MS}ConnectionRequestURL"), url.as_str())
                {
                    tracing::warn!("cannot set ConnectionRequestURL: {e}");
                }
            }
            let path = format!("{MS}ConnectionRequestURL");
            device_values.push_str(&format!("{path}\t{}\n", self.text(&path)));
        }
        if self.store.read("device-values").as_deref() != Some(device_values.as_str())
            && let Err(e) = self.store.write("device-values", &device_values)
        {
            tracing::error!("{e:#}");
        }
        self.update_cr_settings();
    }

    fn text(&self, path: &str) -> String {
        self.model
            .get(path)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    fn update_cr_settings(&self) {
        if let Some(cr) = &self.cr {
            cr.set_settings(CrSettings {
                username: self.text(&format!("{MS}ConnectionRequestUsername")),
                password: self.text(&format!("{MS}ConnectionRequestPassword")),
            });
        }
    }

    /// Stores the pending ScheduleInforms (a restart keeps them; one past due fires at once).
    fn save_scheduled(&mut self) {
        let text: String = self
            .scheduled
            .iter()
            .map(|(at, key)| format!("{at} {}\n", digest::hex(key.as_bytes())))
            .collect();
        if let Err(e) = self.store.write("scheduled", &text) {
            tracing::error!("{e:#}");
        }
    }

    /// Reports the downloads a previous run accepted but did not finish (their marker files
    /// remain) as failed TransferCompletes, and removes partial files.
    fn recover_downloads(&mut self) -> anyhow::Result<()> {
        let dir = self.store.downloads();
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))?;
        let now = cwmp::time::format(unix_now());
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("pending-") {
                let command_key = std::fs::read_to_string(&path).unwrap_or_default();
                tracing::warn!(%command_key, "a download was interrupted by a restart: reporting it failed");
                self.queue.transfer_complete(TransferComplete {
                    command_key,
                    fault: Some(TransferFault {
                        code: FaultCode::DownloadFailure,
                        string: "interrupted by a restart of the device".to_owned(),
                    }),
                    start_time: cwmp::time::UNKNOWN_TIME.to_owned(),
                    complete_time: now.clone(),
                });
                self.store.save_events(&self.queue)?;
            }
            if name.starts_with("pending-") || name.starts_with("download-") {
                let _ = std::fs::remove_file(&path);
            }
        }
        Ok(())
    }

    /// Queues `0 BOOTSTRAP` when the ACS URL is not the one last bootstrapped with.
    fn check_bootstrap(&mut self) -> anyhow::Result<()> {
        let url = self.text(&format!("{MS}URL"));
        if url.is_empty() {
            return Ok(());
        }
        if self.store.read("acs-url").as_deref() != Some(url.as_str()) {
            tracing::info!(%url, "new ACS URL: 0 BOOTSTRAP");
            self.queue.push(Event::new(EventCode::Bootstrap));
            self.store.save_events(&self.queue)?;
            self.store.write("acs-url", &url)?;
            self.session_wanted = true;
        }
        Ok(())
    }

    fn persist(&mut self) -> anyhow::Result<()> {
        self.store.persist_model(&mut self.model)?;
        self.store.save_events(&self.queue)
    }

    /// Runs sessions until `cancel` or a Reboot.
    pub async fn run(mut self) -> anyhow::Result<Exit> {
        let mut live_tick = tokio::time::interval(Duration::from_secs(1));
        live_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            self.fire_timers();
            let url = self.text(&format!("{MS}URL"));
            let due = self.retries.due(Instant::now());
            if self.session_wanted && due && !url.is_empty() {
                if let Some(exit) = self.session(&url).await? {
                    return Ok(exit);
                }
                continue;
            }
            let deadline = self.next_deadline();
            tokio::select! {
                () = self.cancel.cancelled() => return Ok(Exit::Shutdown),
                Some(()) = self.cr_rx.recv() => {
                    self.queue.push(Event::new(EventCode::ConnectionRequest));
                    self.store.save_events(&self.queue)?;
                    self.session_wanted = true;
                    self.retries.attempt_now();
                }
                Some((message, marker)) = self.downloads_rx.recv() => {
                    self.queue.transfer_complete(message);
                    self.store.save_events(&self.queue)?;
                    if let Err(e) = std::fs::remove_file(&marker) {
                        tracing::warn!(marker = %marker.display(), "removing the download marker: {e}");
                    }
                    self.session_wanted = true;
                }
                _ = live_tick.tick() => {
                    self.model.poll_live();
                }
                Some(()) = next_event(&mut self.link_events) => {
                    self.publish();
                    if let Err(e) = self.store.persist_model(&mut self.model) {
                        tracing::error!("persisting the model: {e:#}");
                    }
                }
                () = tokio::time::sleep_until(deadline.into()) => {}
            }
        }
    }

    /// Queues the events of timers that are due; wants a session for them.
    fn fire_timers(&mut self) {
        let now = Instant::now();
        let unix = unix_now();
        let mut fired = false;
        let pending = self.scheduled.len();
        self.scheduled.retain(|(at, key)| {
            if *at > unix {
                return true;
            }
            self.queue.push(Event::new(EventCode::Scheduled));
            self.queue.push(Event {
                code: EventCode::MScheduleInform,
                command_key: key.clone(),
            });
            fired = true;
            false
        });
        if self.scheduled.len() != pending {
            self.save_scheduled();
        }
        let settings = self.periodic_settings();
        match &self.periodic {
            Some((at, s)) if *s == settings => {
                if *at <= unix {
                    self.queue.push(Event::new(EventCode::Periodic));
                    fired = true;
                    self.periodic = cwmp::session::next_periodic_inform_of(&self.model, unix)
                        .map(|t| (t, settings));
                }
            }
            _ => {
                self.periodic = cwmp::session::next_periodic_inform_of(&self.model, unix)
                    .map(|t| (t, settings));
            }
        }
        if self.model.has_active_changes() {
            let throttle = self.active_throttle();
            let allowed = self
                .last_value_change_session
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(throttle));
            if allowed && !self.session_wanted {
                tracing::info!("active value change: opening a session");
                self.session_wanted = true;
                self.last_value_change_session = Some(now);
            }
        }
        if fired {
            self.session_wanted = true;
            if let Err(e) = self.store.save_events(&self.queue) {
                tracing::error!("persisting events: {e:#}");
            }
        }
    }

    fn periodic_settings(&self) -> (bool, u64, String) {
        let get = |name: &str| self.model.get(&format!("{MS}{name}")).ok();
        (
            get("PeriodicInformEnable")
                .and_then(|v| v.as_bool())
                .unwrap_or(false),
            get("PeriodicInformInterval")
                .and_then(|v| v.as_u64())
                .unwrap_or(0),
            get("PeriodicInformTime")
                .map(|v| v.to_string())
                .unwrap_or_default(),
        )
    }

    fn next_deadline(&self) -> Instant {
        let now = Instant::now();
        let mut deadline = now + Duration::from_secs(3600);
        if self.session_wanted
            && let Some(at) = self.retries.next_attempt()
        {
            deadline = deadline.min(at);
        }
        let unix = unix_now();
        let at_unix = |at: i64| {
            now + Duration::from_secs(u64::try_from(at.saturating_sub(unix)).unwrap_or(0))
        };
        for (at, _) in &self.scheduled {
            deadline = deadline.min(at_unix(*at));
        }
        if let Some((at, _)) = &self.periodic {
            deadline = deadline.min(at_unix(*at));
        }
        // An active change held back by the throttle opens its session when it ends (only
        // a future time: a past one would spin the loop while a session cannot start).
        if self.model.has_active_changes()
            && let Some(last) = self.last_value_change_session
        {
            let at = last + Duration::from_secs(self.active_throttle());
            if at > now {
                deadline = deadline.min(at);
            }
        }
        deadline
    }

    /// `ManagementServer.DefaultActiveNotificationThrottle`, in seconds.
    fn active_throttle(&self) -> u64 {
        self.model
            .get(&format!("{MS}DefaultActiveNotificationThrottle"))
            .ok()
            .and_then(|v| v.as_u64())
            .unwrap_or(0)
    }

    /// One session attempt; `Some(exit)` when the agent must stop.
    async fn session(&mut self, url: &str) -> anyhow::Result<Option<Exit>> {
        let result = self.exchange(url).await;
        let actions = match result {
            Ok(actions) => {
                tracing::info!("session done");
                self.retries.succeeded();
                self.session_wanted = false;
                actions
            }
            Err((e, actions)) => {
                let cause = format!("{e:#}");
                let policy = RetryPolicy::from_model(&self.model);
                let retry =
                    self.retries
                        .failed(&policy, &cause, Instant::now(), rand::rng().random());
                let wait_s = retry.wait.as_secs();
                if retry.new_cause {
                    tracing::warn!(retry = retry.count, wait_s, "session failed: {cause}");
                } else {
                    tracing::debug!(
                        retry = retry.count,
                        wait_s,
                        "session failed again, for the reason logged before"
                    );
                }
                self.session_wanted = true;
                actions
            }
        };
        self.update_cr_settings();
        self.check_bootstrap()?;
        for action in actions {
            if let Some(exit) = self.act(action).await? {
                return Ok(Some(exit));
            }
        }
        self.persist()?;
        Ok(None)
    }

    /// The HTTP side of a session. Returns the actions the ACS asked for (also on failure:
    /// an accepted Reboot stands even if the session broke afterwards).
    async fn exchange(&mut self, url: &str) -> Result<Vec<Action>, (anyhow::Error, Vec<Action>)> {
        let username = self.text(&format!("{MS}Username"));
        let credentials = (!username.is_empty()).then(|| Credentials {
            username,
            password: self.text(&format!("{MS}Password")),
        });
        let mut http = HttpSession::new(url, credentials, self.client.clone())
            .map_err(|e| (anyhow::Error::new(e), Vec::new()))?;
        let local = http.connect().await.map_err(|e| {
            (
                anyhow::Error::new(e).context(format!("connecting to the ACS {url}")),
                Vec::new(),
            )
        })?;
        self.apply_local_settings(Some(local.ip()), false);
        // What the ACS reads in this session is what the box does now.
        self.publish();
        let (mut session, inform) = Session::start(
            &self.session_config,
            &self.model,
            &self.queue,
            unix_now(),
            self.retries.count(),
        );
        tracing::info!(
            events = ?session.informed_events().iter().map(|e| e.code.as_str().to_owned()).collect::<Vec<_>>(),
            transfers = self.queue.transfers().len(),
            retry = self.retries.count(),
            "session: Inform"
        );
        let mut body = inform;
        let mut redirects = 0;
        // Actions for after the session (Reboot, FactoryReset, ScheduleInform); a Download
        // starts as soon as it is accepted.
        let mut later = Vec::new();
        for n in 0..MAX_EXCHANGES_PER_SESSION {
            let content_type = (!body.is_empty()).then_some("text/xml; charset=\"utf-8\"");
            // The Inform is kept for a redirect (TR-069 3.4.5: the ACS may redirect the
            // session's first request; the session then continues at the new location).
            // Each redirect uses one iteration: the Inform is message number `redirects`.
            let inform = (n == redirects).then(|| body.clone());
            let response = match http.request(Method::POST, body, content_type).await {
                Ok(r) => r,
                Err(e) => return Err((anyhow::Error::new(e), later)),
            };
            if let (Some(inform), true) = (inform, response.status.is_redirection()) {
                let location = response
                    .headers
                    .get(hyper::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .map(|l| http.resolve(l));
                let Some(location) = location.filter(|_| redirects < MAX_REDIRECTS) else {
                    return Err((
                        anyhow::anyhow!(
                            "redirect {} without a usable Location, or too many",
                            response.status
                        ),
                        Vec::new(),
                    ));
                };
                tracing::info!(%location, status = %response.status, "session redirected");
                redirects += 1;
                http =
                    HttpSession::new(&location, http.credentials().cloned(), self.client.clone())
                        .map_err(|e| (anyhow::Error::new(e), Vec::new()))?;
                body = inform;
                continue;
            }
            let reply: &[u8] = match response.status {
                StatusCode::OK => &response.body,
                StatusCode::NO_CONTENT => b"",
                status => {
                    return Err((anyhow::anyhow!("the ACS answered HTTP {status}"), later));
                }
            };
            let applied = self.model.backend().applied;
            let step = session.receive(reply, &mut self.model, &mut self.queue);
            // An ACS write changed the box: the next request of this session (a
            // GetParameterValues of the InterfaceStack, of a Status) reads its new state.
            if self.model.backend().applied != applied {
                self.publish();
            }
            // Durable before the ACS sees our answer: a value it set survives a crash, and
            // an accepted Download has its marker (a crash before it is done is reported).
            if let Err(e) = self.persist() {
                later.extend(session.take_actions());
                return Err((e, later));
            }
            for action in session.take_actions() {
                match action {
                    Action::Download(request) => {
                        if let Err(e) = self.start_download(request) {
                            return Err((e, later));
                        }
                    }
                    other => later.push(other),
                }
            }
            match step {
                Step::Post(next) => body = next,
                Step::Done => return Ok(later),
                Step::Failed(e) => return Err((anyhow::Error::new(e), later)),
            }
        }
        Err((
            anyhow::anyhow!(
                "the ACS did not end the session after {MAX_EXCHANGES_PER_SESSION} messages"
            ),
            later,
        ))
    }

    async fn act(&mut self, action: Action) -> anyhow::Result<Option<Exit>> {
        match action {
            Action::Reboot { command_key } => {
                self.queue.push(Event {
                    code: EventCode::MReboot,
                    command_key,
                });
                self.persist()?;
                match &self.config.reboot_command {
                    Some(cmd) => {
                        tracing::info!(command = %cmd.display(), "Reboot: running the reboot command");
                        let status = tokio::process::Command::new(cmd)
                            .status()
                            .await
                            .with_context(|| {
                                format!("running the reboot command {}", cmd.display())
                            })?;
                        if !status.success() {
                            tracing::error!(%status, "the reboot command failed");
                        }
                    }
                    None => tracing::warn!("Reboot without --reboot-command: restarting brgd only"),
                }
                Ok(Some(Exit::Reboot))
            }
            Action::FactoryReset => {
                tracing::info!("FactoryReset: restoring the factory defaults");
                load_factory_defaults(&mut self.model, self.config.factory_defaults.as_deref());
                self.device_reset();
                self.apply_local_settings(None, true);
                self.publish();
                self.model.clear_value_changes();
                self.queue = EventQueue::new();
                self.queue.push(Event::new(EventCode::Boot));
                self.store.remove("acs-url")?;
                self.check_bootstrap()?;
                self.persist()?;
                self.session_wanted = true;
                Ok(None)
            }
            Action::ScheduleInform {
                delay_seconds,
                command_key,
            } => {
                let at = unix_now().saturating_add(i64::from(delay_seconds));
                self.scheduled.push((at, command_key));
                self.save_scheduled();
                Ok(None)
            }
            Action::Download(request) => {
                self.start_download(request)?;
                Ok(None)
            }
        }
    }

    /// Records an accepted Download durably and starts it. A marker stays in the state
    /// directory until its TransferComplete is queued: a download cut short by a crash or
    /// reboot is still reported (as failed).
    fn start_download(&mut self, request: cwmp::soap::Download) -> anyhow::Result<()> {
        let marker = self.store.downloads().join(format!(
            "pending-{}",
            digest::hex(&rand::rng().random::<[u8; 8]>())
        ));
        crate::durable::write_atomic(&marker, request.command_key.as_bytes())
            .with_context(|| format!("writing {}", marker.display()))?;
        let job = download::Job {
            request,
            client: self.client.clone(),
            dir: self.store.downloads(),
            firmware_command: self.config.firmware_command.clone(),
            max_bytes: self.config.download_max_bytes,
        };
        let tx = self.downloads_tx.clone();
        tokio::spawn(async move {
            let message = job.run().await;
            let _ = tx.send((message, marker)).await;
        });
        Ok(())
    }
}

/// The next event of an optional channel (never, without one or once it is closed).
async fn next_event(events: &mut Option<mpsc::Receiver<()>>) -> Option<()> {
    match events {
        Some(rx) => match rx.recv().await {
            Some(()) => Some(()),
            None => {
                tracing::error!("link events stopped: state is published at sessions only");
                *events = None;
                std::future::pending().await
            }
        },
        None => std::future::pending().await,
    }
}

/// Makes the device-filled table `table` hold `rows` (row `k` = instance `k + 1`), setting
/// only values that differ and removing instances past the rows.
fn sync_rows<B: Backend>(
    model: &mut Model<B>,
    table: &str,
    rows: &[Row],
) -> Result<(), cwmp::model::ModelError> {
    let existing = model.instances(table)?;
    for n in &existing {
        if usize::try_from(*n).map_or(true, |n| n > rows.len()) {
            model.delete_instance(&format!("{table}{n}."))?;
        }
    }
    for (k, row) in rows.iter().enumerate() {
        let n = u32::try_from(k + 1)
            .map_err(|_| cwmp::model::ModelError::TableFull(table.to_owned()))?;
        if !existing.contains(&n) {
            model.add_instance(table, Some(n))?;
        }
        for (name, value) in row {
            model.set(&format!("{table}{n}.{name}"), value.clone())?;
        }
    }
    Ok(())
}

/// Reads the `scheduled` file: `<unix time> <hex of the CommandKey>` lines; malformed lines
/// are logged and skipped.
fn load_scheduled(text: Option<&str>) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    for line in text.unwrap_or_default().lines().filter(|l| !l.is_empty()) {
        let parsed = line.split_once(' ').and_then(|(at, key)| {
            let at = at.parse().ok()?;
            let bytes = (0..key.len())
                .step_by(2)
                .map(|i| {
                    key.get(i..i + 2)
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                })
                .collect::<Option<Vec<u8>>>()?;
            Some((at, String::from_utf8(bytes).ok()?))
        });
        match parsed {
            Some(entry) => out.push(entry),
            None => tracing::warn!(%line, "stored ScheduleInform unreadable: skipped"),
        }
    }
    out
}

/// Replaces the model by the factory defaults file (or the schema's defaults when there is
/// none or it is unreadable: logged, never fatal).
fn load_factory_defaults<B: Backend>(model: &mut Model<B>, path: Option<&std::path::Path>) {
    let empty = "cwmp-model 1\n";
    let text = match path {
        None => empty.to_owned(),
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) => {
                tracing::error!(file = %path.display(), "cannot read the factory defaults: {e}");
                empty.to_owned()
            }
        },
    };
    match model.restore(&text) {
        Ok(report) => store::log_skipped("factory defaults", &report),
        Err(e) => {
            tracing::error!("factory defaults unusable ({e}): using the schema's defaults");
            let _ = model.restore(empty);
        }
    }
}

#[cfg(test)]
mod tests {
    use cwmp::model::{Model, NoBackend};

    #[test]
    fn scheduled_informs_round_trip() {
        let text = format!(
            "100 {}\n200 \nbad line\n300 zz\n",
            super::digest::hex("key\t1".as_bytes())
        );
        assert_eq!(
            super::load_scheduled(Some(&text)),
            [(100, "key\t1".to_owned()), (200, String::new())]
        );
        assert!(super::load_scheduled(None).is_empty());
    }

    /// After a Reboot RPC brgd exits 0 ([`super::Exit::Reboot`]) for its supervisor to start
    /// it again: the shipped systemd unit must restart it whatever the exit status
    /// (`on-failure` would leave the BRG unmanaged after the ACS's first Reboot).
    #[test]
    fn the_systemd_unit_restarts_brgd_after_a_reboot_exit() {
        let unit = include_str!("../../../deploy/systemd/brgd.service");
        let restart: Vec<&str> = unit
            .lines()
            .filter_map(|l| l.trim().strip_prefix("Restart="))
            .collect();
        assert_eq!(restart, ["always"], "{unit}");
    }

    /// The sample factory defaults shipped in `deploy/` fit the schema, record for record.
    #[test]
    fn shipped_factory_defaults_restore_cleanly() {
        let text = include_str!("../../../deploy/brgd/factory-defaults");
        let mut model = Model::new(cwmp::tr181::brg().expect("schema"), NoBackend);
        let report = model.restore(text).expect("a model file");
        assert!(report.skipped.is_empty(), "{:?}", report.skipped);
        let interval = model
            .get("Device.ManagementServer.PeriodicInformInterval")
            .expect("parameter");
        assert_eq!(interval.as_u64(), Some(3600));
    }
}
