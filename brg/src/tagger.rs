//! The LSL uplink's 802.1Q/QinQ tagger: loads the tc programs built from `ebpf/brg-tc`,
//! writes the LSL's tags into their map, and attaches them to the uplink (tcx on kernels
//! 6.6 and later, where aya needs no clsact qdisc). Dropping the [`Tagger`] detaches them.

use aya::{
    Ebpf,
    maps::{Array, MapError, PerCpuArray},
    programs::{ProgramError, SchedClassifier, TcAttachType},
};
use nerg_abi::brg::{TAG_VALID, TagConfig, TagCounter, names};
use thiserror::Error;

/// The tagger object, built by `build.rs` (empty when built with `AYA_BUILD_SKIP=1`).
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/brg-tc"));

/// The tags an LSL uplink carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tags {
    /// The S-tag (TPID, VID), for QinQ.
    pub s_tag: Option<(u16, u16)>,
    /// The C-VID.
    pub c_vid: u16,
}

/// Errors loading or attaching the tagger.
#[derive(Debug, Error)]
pub enum TaggerError {
    /// Built with `AYA_BUILD_SKIP=1`.
    #[error("this binary was built without its eBPF tagger (AYA_BUILD_SKIP was set)")]
    NoObject,
    /// The kernel refused the object.
    #[error("loading the tagger object failed")]
    Load(#[source] aya::EbpfError),
    /// A program is missing or the kernel refused it (the message has the verifier log).
    #[error("tc program {name}")]
    Program {
        /// Program name.
        name: &'static str,
        /// Underlying error.
        #[source]
        source: ProgramError,
    },
    /// A map operation failed.
    #[error("map {name}")]
    Map {
        /// Map name.
        name: &'static str,
        /// Underlying error.
        #[source]
        source: MapError,
    },
}

/// The tagger, attached to one uplink.
pub struct Tagger {
    ebpf: Ebpf,
}

impl Tagger {
    /// Loads the tagger and attaches it to `uplink` (in the calling thread's network
    /// namespace) with `tags`.
    pub fn attach(uplink: &str, tags: Tags) -> Result<Self, TaggerError> {
        if OBJECT.is_empty() {
            return Err(TaggerError::NoObject);
        }
        let ebpf = Ebpf::load(OBJECT).map_err(TaggerError::Load)?;
        let mut tagger = Self { ebpf };
        tagger.set_tags(tags)?;
        for (name, direction) in [
            (names::INGRESS, TcAttachType::Ingress),
            (names::EGRESS, TcAttachType::Egress),
        ] {
            let prog: &mut SchedClassifier = tagger
                .ebpf
                .program_mut(name)
                .ok_or(TaggerError::Program {
                    name,
                    source: ProgramError::NotLoaded,
                })?
                .try_into()
                .map_err(|source| TaggerError::Program { name, source })?;
            prog.load()
                .map_err(|source| TaggerError::Program { name, source })?;
            prog.attach(uplink, direction)
                .map_err(|source| TaggerError::Program { name, source })?;
        }
        Ok(tagger)
    }

    /// Changes the tags (takes effect for the next frame).
    pub fn set_tags(&mut self, tags: Tags) -> Result<(), TaggerError> {
        let name = names::LSL;
        let err = |source| TaggerError::Map { name, source };
        let map = self.ebpf.map_mut(name).ok_or(TaggerError::Map {
            name,
            source: MapError::InvalidName { name: name.into() },
        })?;
        let mut array: Array<_, TagConfig> = Array::try_from(map).map_err(err)?;
        let (s_tpid, s_vid) = tags.s_tag.unwrap_or((0, 0));
        array
            .set(
                0,
                TagConfig {
                    flags: TAG_VALID,
                    s_tpid,
                    s_vid,
                    c_vid: tags.c_vid,
                    _pad: 0,
                },
                0,
            )
            .map_err(err)
    }

    /// The tagger's counters, summed over CPUs.
    pub fn counters(&self) -> Result<Vec<(TagCounter, u64)>, TaggerError> {
        let name = names::STATS;
        let err = |source| TaggerError::Map { name, source };
        let map = self.ebpf.map(name).ok_or(TaggerError::Map {
            name,
            source: MapError::InvalidName { name: name.into() },
        })?;
        let stats: PerCpuArray<_, u64> = PerCpuArray::try_from(map).map_err(err)?;
        TagCounter::ALL
            .iter()
            .map(|&c| Ok((c, stats.get(&(c as u32), 0).map_err(err)?.iter().sum())))
            .collect()
    }
}
