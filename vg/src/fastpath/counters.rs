//! Reading the fast path's per-CPU counters from their bpffs pins.
//!
//! Works from any process that sees the pins (vgd itself, vgctl, tests), whichever network
//! namespace it runs in: pins live in the mount namespace, maps are global.

use std::path::Path;

use aya::maps::{Array, Map, MapData, MapError, PerCpuArray};
use nerg_abi::{
    Counter, CounterValue, DropReason, SubCounters, Subscriber, SubscriberId, map_names,
};
use serde::Serialize;

use super::FastPathError;

/// Handles to the pinned counter maps of one vG instance.
pub struct Counters {
    stats: PerCpuArray<MapData, CounterValue>,
    drops: PerCpuArray<MapData, CounterValue>,
    pin_dir: std::path::PathBuf,
}

impl Counters {
    /// Opens the counter maps pinned in `pin_dir`.
    pub fn open(pin_dir: &Path) -> Result<Self, FastPathError> {
        Ok(Self {
            stats: open_per_cpu(pin_dir, map_names::STATS)?,
            drops: open_per_cpu(pin_dir, map_names::DROPS)?,
            pin_dir: pin_dir.to_owned(),
        })
    }

    /// Subscriber `id`'s fast-path record (public address, blocks, LSL).
    pub fn subscriber(&self, id: SubscriberId) -> Result<Subscriber, FastPathError> {
        let name = map_names::SUBSCRIBERS;
        let map_err = |source: MapError| FastPathError::Map { name, source };
        let data = MapData::from_pin(self.pin_dir.join(name)).map_err(map_err)?;
        let array: Array<MapData, Subscriber> =
            Array::try_from(Map::Array(data)).map_err(map_err)?;
        array.get(&id, 0).map_err(map_err)
    }

    /// Subscriber `id`'s traffic counters, summed over CPUs.
    pub fn subscriber_counters(&self, id: SubscriberId) -> Result<SubCounters, FastPathError> {
        let name = map_names::SUB_COUNTERS;
        let map_err = |source: MapError| FastPathError::Map { name, source };
        let data = MapData::from_pin(self.pin_dir.join(name)).map_err(map_err)?;
        let per_cpu: PerCpuArray<MapData, SubCounters> =
            PerCpuArray::try_from(Map::PerCpuArray(data)).map_err(map_err)?;
        Ok(sum_sub_counters(&per_cpu.get(&id, 0).map_err(map_err)?))
    }

    /// Reads every counter, per CPU.
    pub fn snapshot(&self) -> Result<CounterSnapshot, FastPathError> {
        let read = |map: &PerCpuArray<MapData, CounterValue>, name, index: u32| {
            map.get(&index, 0)
                .map(|values| values.to_vec())
                .map_err(|source| FastPathError::Map { name, source })
        };
        let counters = Counter::ALL
            .iter()
            .map(|&c| Ok((c, read(&self.stats, map_names::STATS, c.index())?)))
            .collect::<Result<_, FastPathError>>()?;
        let drops = DropReason::ALL
            .iter()
            .map(|&d| Ok((d, read(&self.drops, map_names::DROPS, d.index())?)))
            .collect::<Result<_, FastPathError>>()?;
        Ok(CounterSnapshot { counters, drops })
    }
}

/// The sum over CPUs of per-CPU subscriber counters.
pub fn sum_sub_counters(per_cpu: &[SubCounters]) -> SubCounters {
    per_cpu.iter().fold(SubCounters::default(), |mut a, c| {
        a.up_packets += c.up_packets;
        a.up_bytes += c.up_bytes;
        a.down_packets += c.down_packets;
        a.down_bytes += c.down_bytes;
        a.up_drops += c.up_drops;
        a.punted += c.punted;
        a.up_policed_packets += c.up_policed_packets;
        a.up_policed_bytes += c.up_policed_bytes;
        a.down_policed_packets += c.down_policed_packets;
        a.down_policed_bytes += c.down_policed_bytes;
        a
    })
}

fn open_per_cpu(
    pin_dir: &Path,
    name: &'static str,
) -> Result<PerCpuArray<MapData, CounterValue>, FastPathError> {
    let map_err = |source: MapError| FastPathError::Map { name, source };
    let data = MapData::from_pin(pin_dir.join(name)).map_err(map_err)?;
    PerCpuArray::try_from(Map::PerCpuArray(data)).map_err(map_err)
}

/// All counters at one moment, with one value per possible CPU.
#[derive(Clone, Debug, Default)]
pub struct CounterSnapshot {
    /// Packet counters, per CPU.
    pub counters: Vec<(Counter, Vec<u64>)>,
    /// Drop counters by reason, per CPU.
    pub drops: Vec<(DropReason, Vec<u64>)>,
}

impl CounterSnapshot {
    /// The sum over CPUs of `counter`.
    pub fn total(&self, counter: Counter) -> u64 {
        sum_of(&self.counters, counter)
    }

    /// The sum over CPUs of the drops for `reason`.
    pub fn drops(&self, reason: DropReason) -> u64 {
        sum_of(&self.drops, reason)
    }

    /// A JSON-friendly view: label -> { total, per_cpu }.
    pub fn to_report(&self) -> CounterReport {
        CounterReport {
            counters: report_rows(&self.counters, Counter::label),
            drops: report_rows(&self.drops, DropReason::label),
        }
    }
}

fn report_rows<K: Copy>(rows: &[(K, Vec<u64>)], label: fn(K) -> &'static str) -> Vec<CounterRow> {
    rows.iter()
        .map(|(k, per_cpu)| CounterRow {
            name: label(*k),
            total: per_cpu.iter().sum(),
            per_cpu: per_cpu.clone(),
        })
        .collect()
}

fn sum_of<K: PartialEq>(rows: &[(K, Vec<u64>)], key: K) -> u64 {
    rows.iter()
        .find(|(k, _)| *k == key)
        .map_or(0, |(_, v)| v.iter().sum())
}

/// Serializable counters, as `vgctl stats --json` prints them.
#[derive(Clone, Debug, Serialize)]
pub struct CounterReport {
    /// Packet counters.
    pub counters: Vec<CounterRow>,
    /// Drops by reason.
    pub drops: Vec<CounterRow>,
}

/// One counter: its name, total and per-CPU values.
#[derive(Clone, Debug, Serialize)]
pub struct CounterRow {
    /// Stable snake_case name.
    pub name: &'static str,
    /// Sum over CPUs.
    pub total: u64,
    /// One value per possible CPU.
    pub per_cpu: Vec<u64>,
}
