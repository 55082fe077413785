//! The fast path as `vgd` sees it: the embedded eBPF object, loading it with maps pinned in
//! bpffs, attaching XDP to an interface, and reading its counters.

pub mod bpffs;
pub mod counters;
pub mod expiry;
pub mod fib;
pub mod maps;
pub mod reconcile;
pub mod routes;
pub mod test_run;
pub mod v6;

use std::{
    ffi::CString,
    path::{Path, PathBuf},
};

use aya::{
    Ebpf, EbpfLoader,
    maps::MapData,
    programs::{
        ProgramError, SchedClassifier, TcAttachType, Xdp, XdpMode,
        links::{FdLink, PinnedLink},
        tc::SchedClassifierLinkId,
        xdp::{XdpLink, XdpLinkId},
    },
};
use nerg_abi::{map_names, program_names};
use thiserror::Error;

pub use self::counters::{CounterSnapshot, Counters};

/// The vG's eBPF object, built by `build.rs` (empty when built with `AYA_BUILD_SKIP=1`).
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/vg-xdp"));

/// How the XDP program is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AttachMode {
    /// Native (driver) mode: the production mode; refuses interfaces without driver support.
    Native,
    /// Generic (skb) mode: works on any interface, at stack speed. For diagnosis only.
    Generic,
}

impl AttachMode {
    fn xdp_mode(self) -> XdpMode {
        match self {
            Self::Native => XdpMode::Driver,
            Self::Generic => XdpMode::Skb,
        }
    }
}

impl std::fmt::Display for AttachMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Native => "native",
            Self::Generic => "generic",
        })
    }
}

/// Errors from loading or attaching the fast path.
#[derive(Debug, Error)]
pub enum FastPathError {
    /// The binary was built with `AYA_BUILD_SKIP=1`.
    #[error(
        "this binary was built without its eBPF programs (AYA_BUILD_SKIP was set); \
         rebuild without it (`cargo xtask setup` installs the BPF toolchain)"
    )]
    NoObject,
    /// bpffs could not be mounted or the pin directory not created.
    #[error(transparent)]
    Bpffs(#[from] bpffs::BpffsError),
    /// The kernel refused the object (maps or programs).
    #[error("loading the eBPF object failed")]
    Load(#[source] aya::EbpfError),
    /// A map pinned by another vgd does not have this fast path's layout.
    #[error(
        "{path}: pinned by an incompatible vgd (its {what} is {pinned}, this one needs \
         {needed}); restarting across a map ABI change is not hitless: remove {dir} and start \
         again"
    )]
    IncompatiblePin {
        /// The pinned map.
        path: String,
        /// Its directory (the instance's pins).
        dir: String,
        /// `key size`, `value size` or `entry count`.
        what: &'static str,
        /// Its size or count there.
        pinned: u32,
        /// What this build needs.
        needed: u32,
    },
    /// An older vgd's stateless map could not be unpinned to be made anew.
    #[error("removing the pin {path} (an older vgd's map with another layout)")]
    Unpin {
        /// The pin.
        path: String,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The delivery program's descriptor could not be duplicated for the jump table.
    #[error("filling the tail-call table")]
    JumpTable(#[source] std::io::Error),
    /// A program is missing from the object or has the wrong type.
    #[error("program {name} missing or not XDP in the eBPF object")]
    MissingProgram {
        /// Program name.
        name: &'static str,
        /// Underlying error, if any.
        #[source]
        source: Option<ProgramError>,
    },
    /// The verifier rejected a program (the message carries the verifier log).
    #[error("the kernel rejected program {name}")]
    Verifier {
        /// Program name.
        name: &'static str,
        /// The load error, with the verifier log in its message.
        #[source]
        source: ProgramError,
    },
    /// The interface does not exist in this network namespace.
    #[error("interface {0:?} does not exist in this network namespace")]
    NoSuchInterface(String),
    /// Attaching XDP failed.
    #[error(
        "cannot attach XDP in {mode} mode to {iface}: the driver may lack native XDP support, \
         or another XDP program is attached"
    )]
    Attach {
        /// Interface name.
        iface: String,
        /// Requested mode.
        mode: AttachMode,
        /// Underlying error.
        #[source]
        source: ProgramError,
    },
    /// Pinning an XDP link, or taking over a pinned one, failed.
    #[error("XDP link pin {path}")]
    LinkPin {
        /// The pin.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Writing the device map failed.
    #[error("map NERG_DEVMAP")]
    Devmap(#[source] aya::maps::xdp::XdpMapError),
    /// Reading or writing a map failed.
    #[error("map {name}")]
    Map {
        /// Map name.
        name: &'static str,
        /// Underlying error.
        #[source]
        source: aya::maps::MapError,
    },
}

/// Key and value sizes of the pinned maps whose layout `nerg-abi` defines: what a vgd of
/// this build reads and writes.
fn abi_sizes() -> [(&'static str, usize, usize); 23] {
    use nerg_abi as a;
    use std::mem::size_of;
    [
        (map_names::CONFIG, 4, size_of::<a::Config>()),
        (map_names::SUBSCRIBERS, 4, size_of::<a::Subscriber>()),
        (map_names::LSL_VLAN, size_of::<a::VlanLslKey>(), 4),
        (map_names::LSL_VXLAN, size_of::<a::VxlanLslKey>(), 4),
        (map_names::LSL_VXLAN6, size_of::<a::Vxlan6LslKey>(), 4),
        (
            map_names::HOSTS,
            size_of::<a::HostKey>(),
            size_of::<a::Host>(),
        ),
        (map_names::SUB_COUNTERS, 4, size_of::<a::SubCounters>()),
        (map_names::HOSTS_GEN, 4, 4),
        (map_names::QOS, 4, size_of::<a::QosState>()),
        (
            map_names::NAT_FWD,
            size_of::<a::NatFwdKey>(),
            size_of::<a::NatMapping>(),
        ),
        (
            map_names::NAT_REV,
            size_of::<a::NatRevKey>(),
            size_of::<a::NatRev>(),
        ),
        (map_names::NAT_PERMIT, size_of::<a::NatPermitKey>(), 8),
        (map_names::SUB_SESSIONS, 4, 8),
        (map_names::PUBLIC_RANGE, 4, size_of::<a::PublicRange>()),
        (
            map_names::FRAGS,
            size_of::<a::FragKey>(),
            size_of::<a::FragTarget>(),
        ),
        (map_names::STATS, 4, size_of::<a::CounterValue>()),
        (map_names::DROPS, 4, size_of::<a::CounterValue>()),
        (map_names::DELIVERY, 4, size_of::<a::Delivery>()),
        (map_names::FROM_HOME6, 4, size_of::<a::FromHome6>()),
        (map_names::JUMP, 4, 4),
        (
            map_names::V6_PREFIXES,
            4 + size_of::<a::V6PrefixKey>(),
            size_of::<a::V6Prefix>(),
        ),
        (
            map_names::V6_NEIGH,
            size_of::<a::V6NeighKey>(),
            size_of::<a::V6Neigh>(),
        ),
        (map_names::V6_RANGE, 4, size_of::<a::V6Range>()),
    ]
}

/// Pinned maps that hold no state a restart must keep: the jump table (filled at every
/// load), the per-CPU hand-over slots of a tail call, and the counters (which Prometheus
/// reads as a reset). One of these pinned by an older vgd with another layout is replaced,
/// so that an upgrade that grows them (a new program, a new drop reason) stays hitless:
/// the programs still attached keep the old map until the new ones replace them.
const REPLACEABLE: [&str; 5] = [
    map_names::JUMP,
    map_names::DELIVERY,
    map_names::FROM_HOME6,
    map_names::STATS,
    map_names::DROPS,
];

/// Refuses, with a message an operator can act on, maps pinned in `pin_dir` by a vgd whose
/// map layout differs (the kernel would otherwise reject the programs with a verifier log);
/// the [`REPLACEABLE`] ones are unpinned instead, and made anew by the load.
fn check_pins(pin_dir: &Path) -> Result<(), FastPathError> {
    for (name, key, value) in abi_sizes() {
        let path = pin_dir.join(name);
        if !path.exists() {
            continue;
        }
        match pin_fits(&path, name, key, value) {
            Err(FastPathError::IncompatiblePin {
                what,
                pinned,
                needed,
                ..
            }) if REPLACEABLE.contains(&name) => {
                std::fs::remove_file(&path).map_err(|source| FastPathError::Unpin {
                    path: path.display().to_string(),
                    source,
                })?;
                tracing::info!(
                    map = name,
                    what,
                    pinned,
                    needed,
                    "an older vgd's map replaced (it keeps no state)"
                );
            }
            other => other?,
        }
    }
    Ok(())
}

/// Whether the map pinned at `path` has the layout this build needs.
fn pin_fits(
    path: &Path,
    name: &'static str,
    key: usize,
    value: usize,
) -> Result<(), FastPathError> {
    let pin_dir = path.parent().unwrap_or(path);
    let info = MapData::from_pin(path)
        .and_then(|m| m.info())
        .map_err(|source| FastPathError::Map { name, source })?;
    // The counter maps are indexed by enums that grow: a pinned one with fewer slots would
    // silently lose the new counters.
    let slots = match name {
        map_names::STATS => nerg_abi::Counter::COUNT,
        map_names::DROPS => nerg_abi::DropReason::COUNT,
        // An older vgd's jump table has no slot for `vg_home6`.
        map_names::JUMP => nerg_abi::JUMP_SLOTS,
        _ => info.max_entries(),
    };
    for (what, pinned, needed) in [
        ("key size", info.key_size(), key as u32),
        ("value size", info.value_size(), value as u32),
        ("entry count", info.max_entries(), slots),
    ] {
        if pinned != needed {
            return Err(FastPathError::IncompatiblePin {
                path: path.display().to_string(),
                dir: pin_dir.display().to_string(),
                what,
                pinned,
                needed,
            });
        }
    }
    Ok(())
}

/// The loaded fast path of one vG instance: programs loaded, maps pinned under `pin_dir`.
pub struct FastPath {
    ebpf: Ebpf,
    pin_dir: PathBuf,
    attached: Vec<(String, XdpLinkId, PathBuf)>,
    tc_attached: Vec<SchedClassifierLinkId>,
}

impl FastPath {
    /// Loads [`OBJECT`] with its maps pinned in `pin_dir` (which must be on bpffs; see
    /// [`bpffs::prepare_pin_dir`]). Maps already pinned there are adopted, not recreated, so
    /// a restarted `vgd` keeps the state of the one before.
    pub fn load(pin_dir: &Path) -> Result<Self, FastPathError> {
        Self::load_object(OBJECT, pin_dir)
    }

    /// Loads a given eBPF object (tests and benchmarks use [`OBJECT`] too; this exists so a
    /// different build can be loaded side by side).
    pub fn load_object(object: &[u8], pin_dir: &Path) -> Result<Self, FastPathError> {
        if object.is_empty() {
            return Err(FastPathError::NoObject);
        }
        check_pins(pin_dir)?;
        let mut ebpf = EbpfLoader::new()
            .default_map_pin_directory(pin_dir)
            .load(object)
            .map_err(FastPathError::Load)?;
        for name in [
            program_names::ACCESS,
            program_names::CORE,
            program_names::PASS,
            program_names::DELIVER,
            program_names::HOME6,
        ] {
            let prog = xdp_program(&mut ebpf, name)?;
            prog.load()
                .map_err(|source| FastPathError::Verifier { name, source })?;
        }
        // The entries hand frames for a home to `vg_deliver`, and `vg_access` IPv6 from a
        // home to `vg_home6`, by tail call.
        for (slot, name) in [
            (nerg_abi::JUMP_DELIVER, program_names::DELIVER),
            (nerg_abi::JUMP_HOME6, program_names::HOME6),
        ] {
            let target = xdp_program(&mut ebpf, name)?
                .fd()
                .map_err(|source| FastPathError::Verifier { name, source })?
                .try_clone()
                .map_err(FastPathError::JumpTable)?;
            let name = map_names::JUMP;
            let jump = ebpf.map_mut(name).ok_or(FastPathError::Map {
                name,
                source: aya::maps::MapError::InvalidName {
                    name: name.to_owned(),
                },
            })?;
            aya::maps::ProgramArray::try_from(jump)
                .and_then(|mut jump| jump.set(slot, &target, 0))
                .map_err(|source| FastPathError::Map { name, source })?;
        }
        let name = program_names::ACCESS_TC;
        let tc: &mut SchedClassifier = ebpf
            .program_mut(name)
            .ok_or(FastPathError::MissingProgram { name, source: None })?
            .try_into()
            .map_err(|source| FastPathError::MissingProgram {
                name,
                source: Some(source),
            })?;
        tc.load()
            .map_err(|source| FastPathError::Verifier { name, source })?;
        Ok(Self {
            ebpf,
            pin_dir: pin_dir.to_owned(),
            attached: Vec::new(),
            tc_attached: Vec::new(),
        })
    }

    /// Where the maps are pinned.
    pub fn pin_dir(&self) -> &Path {
        &self.pin_dir
    }

    /// Attaches the access-side programs to `iface`: XDP, and the tc ingress fix-up for
    /// frames XDP hands to the stack.
    pub fn attach_access(&mut self, iface: &str, mode: AttachMode) -> Result<(), FastPathError> {
        self.attach(program_names::ACCESS, iface, mode)?;
        let name = program_names::ACCESS_TC;
        let tc: &mut SchedClassifier = self
            .ebpf
            .program_mut(name)
            .ok_or(FastPathError::MissingProgram { name, source: None })?
            .try_into()
            .map_err(|source| FastPathError::MissingProgram {
                name,
                source: Some(source),
            })?;
        let link =
            tc.attach(iface, TcAttachType::Ingress)
                .map_err(|source| FastPathError::Attach {
                    iface: iface.to_owned(),
                    mode,
                    source,
                })?;
        self.tc_attached.push(link);
        Ok(())
    }

    /// Attaches the core-side program to `iface`.
    pub fn attach_core(&mut self, iface: &str, mode: AttachMode) -> Result<(), FastPathError> {
        self.attach(program_names::CORE, iface, mode)
    }

    /// Attaches program `name` to `iface` in `mode` so that it stays attached when this
    /// process exits (hitless restarts and upgrades): the XDP link is pinned at
    /// `<pin_dir>/link_<name>_<iface>`. A link pinned by an earlier vgd is taken over and its
    /// program replaced atomically (`bpf_link_update`): no frame ever meets no program.
    /// [`FastPath::detach_all`] removes the pins, and with them the attachments.
    pub fn attach(
        &mut self,
        name: &'static str,
        iface: &str,
        mode: AttachMode,
    ) -> Result<(), FastPathError> {
        let ifindex = if_index(iface)?;
        let pin = self.pin_dir.join(format!("link_{name}_{iface}"));
        let attach_err = |source| FastPathError::Attach {
            iface: iface.to_owned(),
            mode,
            source,
        };
        let pin_err = |e: &dyn std::fmt::Display| FastPathError::LinkPin {
            path: pin.clone(),
            source: std::io::Error::other(e.to_string()),
        };
        let prog = xdp_program(&mut self.ebpf, name)?;
        if let Ok(pinned) = PinnedLink::from_pin(&pin) {
            let link = XdpLink::try_from(FdLink::from(pinned)).map_err(|e| pin_err(&e))?;
            let id = prog.attach_to_link(link).map_err(attach_err)?;
            self.attached.push((name.to_owned(), id, pin));
            return Ok(());
        }
        // A pin that cannot be opened is stale (its interface is gone): replace it.
        let _ = std::fs::remove_file(&pin);
        let id = prog
            .attach_to_if_index(ifindex, mode.xdp_mode())
            .map_err(attach_err)?;
        // bpf_link attachments (kernel 5.9+) can be pinned; a netlink one cannot and is
        // detached when this process exits.
        let link = prog.take_link(id).map_err(attach_err)?;
        match FdLink::try_from(link) {
            Ok(fd) => {
                let pinned = fd.pin(&pin).map_err(|e| pin_err(&e))?;
                let link = XdpLink::try_from(FdLink::from(pinned)).map_err(|e| pin_err(&e))?;
                let id = prog.attach_to_link(link).map_err(attach_err)?;
                self.attached.push((name.to_owned(), id, pin));
            }
            Err(_) => {
                tracing::warn!(%iface, "XDP attached through netlink: it will not survive a restart");
            }
        }
        Ok(())
    }

    /// The loaded XDP program `name`, for [`test_run`].
    pub fn program(&mut self, name: &'static str) -> Result<&mut Xdp, FastPathError> {
        xdp_program(&mut self.ebpf, name)
    }

    /// Typed access to the maps the control plane writes (config, LSLs, subscribers, hosts).
    pub fn maps(&mut self) -> maps::Maps<'_> {
        maps::Maps::new(&mut self.ebpf)
    }

    /// Takes the punt ring buffer out of the object, for the slow path's reader.
    pub fn take_punt_ring(
        &mut self,
    ) -> Result<aya::maps::RingBuf<aya::maps::MapData>, FastPathError> {
        let name = nerg_abi::map_names::PUNT;
        let map = self.ebpf.take_map(name).ok_or(FastPathError::Map {
            name,
            source: aya::maps::MapError::InvalidName {
                name: name.to_owned(),
            },
        })?;
        aya::maps::RingBuf::try_from(map).map_err(|source| FastPathError::Map { name, source })
    }

    /// Takes the route generation out of the object, for [`fib::RouteWatch`]. Until it is
    /// bumped, the route cache keeps what it looked up (tests and benchmarks that change no
    /// routes need not take it).
    pub fn take_fib_generation(&mut self) -> Result<fib::FibGeneration, FastPathError> {
        let name = map_names::FIB_GEN;
        let map = self.ebpf.take_map(name).ok_or(FastPathError::Map {
            name,
            source: aya::maps::MapError::InvalidName {
                name: name.to_owned(),
            },
        })?;
        aya::maps::Array::try_from(map)
            .and_then(fib::FibGeneration::new)
            .map_err(|source| FastPathError::Map { name, source })
    }

    /// A reader over the counter maps of this instance.
    pub fn counters(&self) -> Result<Counters, FastPathError> {
        Counters::open(&self.pin_dir)
    }

    /// Detaches every program this instance attached. Dropping a [`FastPath`] without this
    /// leaves the XDP programs attached through their pinned links (a restart takes them
    /// over); the tc program goes with the process.
    pub fn detach_all(&mut self) {
        if let Some(tc) = self
            .ebpf
            .program_mut(program_names::ACCESS_TC)
            .and_then(|p| <&mut SchedClassifier>::try_from(p).ok())
        {
            for link in self.tc_attached.drain(..) {
                if let Err(err) = tc.detach(link) {
                    tracing::warn!(error = %err, "detaching the tc program failed");
                }
            }
        }
        for (name, link, pin) in self.attached.drain(..) {
            // Without its pin the link lives only as long as this process holds it.
            if let Err(err) = std::fs::remove_file(&pin) {
                tracing::warn!(pin = %pin.display(), error = %err, "unpinning the XDP link failed");
            }
            let prog = self
                .ebpf
                .program_mut(&name)
                .and_then(|p| <&mut Xdp>::try_from(p).ok());
            if let Some(Err(err)) = prog.map(|p| p.detach(link)) {
                tracing::warn!(program = %name, error = %err, "detaching XDP failed");
            }
        }
    }
}

fn xdp_program<'a>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut Xdp, FastPathError> {
    let prog = ebpf
        .program_mut(name)
        .ok_or(FastPathError::MissingProgram { name, source: None })?;
    prog.try_into()
        .map_err(|source| FastPathError::MissingProgram {
            name,
            source: Some(source),
        })
}

/// The index of `iface` in the current network namespace.
pub fn if_index(iface: &str) -> Result<u32, FastPathError> {
    let missing = || FastPathError::NoSuchInterface(iface.to_owned());
    let name = CString::new(iface).map_err(|_| missing())?;
    match nix::net::if_::if_nametoindex(name.as_c_str()) {
        Ok(index) if index != 0 => Ok(index),
        _ => Err(missing()),
    }
}
