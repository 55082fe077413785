//! The queue of undelivered Inform events and TransferComplete messages (TR-069 3.7.1.5,
//! Table 7), which the application persists across restarts.
//!
//! | event                              | cumulative | kept across a reboot |
//! |------------------------------------|------------|----------------------|
//! | `0 BOOTSTRAP`                      | single     | yes                  |
//! | `1 BOOT`                           | single     | replaced by the new boot's |
//! | `2 PERIODIC`                       | single     | no (the schedule raises it again) |
//! | `3 SCHEDULED`, `5 KICKED`, `9 REQUEST DOWNLOAD`, `10 AUTONOMOUS TRANSFER COMPLETE`, `11`, `12`, `13 WAKEUP` | single | yes |
//! | `4 VALUE CHANGE`                   | single     | no (values are re-read) |
//! | `6 CONNECTION REQUEST`             | single     | no (the ACS's request is stale) |
//! | `8 DIAGNOSTICS COMPLETE`           | single     | no (results do not survive a reboot) |
//! | `M Reboot`, `M ScheduleInform`, `M Download`, `M Upload`, `M ScheduleDownload`, `M ChangeDUState`, other `M ...` | one per CommandKey | yes |
//!
//! Rules:
//! - An event stays queued until an InformResponse acknowledges the Inform that carried it;
//!   a failed session keeps every event for the retry.
//! - A single event queued twice is one event; a method event (`M ...`) is one per
//!   CommandKey.
//! - `0 BOOTSTRAP` discards every other undelivered event except `1 BOOT`, and every pending
//!   TransferComplete: they were meant for the previous ACS (the new one starts afresh).
//! - A pending TransferComplete puts `7 TRANSFER COMPLETE` and `M Download <CommandKey>` in
//!   every Inform until a TransferCompleteResponse acknowledges it, so its events are never
//!   lost between an acknowledged Inform and an interrupted TransferComplete.
//! - `4 VALUE CHANGE` comes from the model's pending value changes, not from this queue.

use crate::fault::FaultCode;
use crate::model::persist::{escape, unescape};
use crate::soap::{Event, EventCode, TransferComplete, TransferFault};

/// The most events an Inform carries (`cwmp-1-2.xsd` `EventList`).
pub const MAX_EVENTS: usize = 64;

/// How an event accumulates in the queue.
fn is_single(code: &EventCode) -> bool {
    match code {
        EventCode::MReboot
        | EventCode::MScheduleInform
        | EventCode::MDownload
        | EventCode::MScheduleDownload
        | EventCode::MUpload
        | EventCode::MChangeDuState => false,
        EventCode::Other(text) => !text.starts_with("M "),
        _ => true,
    }
}

/// Whether an undelivered event is still meaningful after the device rebooted.
fn survives_reboot(code: &EventCode) -> bool {
    !matches!(
        code,
        EventCode::Boot
            | EventCode::Periodic
            | EventCode::ValueChange
            | EventCode::ConnectionRequest
            | EventCode::DiagnosticsComplete
    )
}

/// Order of events in an Inform: numbered codes ascending, then method events, then others.
pub(crate) fn rank(code: &EventCode) -> u32 {
    let text = code.as_str();
    match text.split_once(' ') {
        Some((n, _)) if n.bytes().all(|b| b.is_ascii_digit()) => n.parse().unwrap_or(99),
        Some(("M", _)) => 100,
        _ => 200,
    }
}

/// Undelivered events and TransferComplete messages; persist it with [`EventQueue::save`]
/// after every change.
///
/// ```
/// use cwmp::session::EventQueue;
/// use cwmp::soap::{Event, EventCode};
///
/// let mut queue = EventQueue::new();
/// queue.booted();
/// queue.push(Event { code: EventCode::MReboot, command_key: "r1".into() });
/// queue.push(Event::new(EventCode::Boot));
/// assert_eq!(queue.events().len(), 2);
/// queue.push(Event::new(EventCode::Bootstrap));
/// let codes: Vec<_> = queue.events().iter().map(|e| e.code.as_str()).collect();
/// assert_eq!(codes, ["1 BOOT", "0 BOOTSTRAP"]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQueue {
    events: Vec<Event>,
    transfers: Vec<TransferComplete>,
}

/// Why a saved queue could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// The text does not start with the `cwmp-events 1` header.
    #[error("not a saved event queue")]
    NotAQueue,
    /// A record is malformed.
    #[error("malformed record on line {0}")]
    Malformed(usize),
}

const HEADER: &str = "cwmp-events 1";

impl EventQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues an event under the single/multiple and BOOTSTRAP rules.
    pub fn push(&mut self, event: Event) {
        if event.code == EventCode::Bootstrap {
            self.events.retain(|e| e.code == EventCode::Boot);
            self.transfers.clear();
        }
        let present = self.events.iter().any(|e| {
            e.code == event.code && (is_single(&e.code) || e.command_key == event.command_key)
        });
        if !present {
            self.events.push(event);
        }
    }

    /// Records the start of the agent after a device boot: drops the events that do not
    /// survive a reboot (see the table above) and queues `1 BOOT`.
    pub fn booted(&mut self) {
        self.events.retain(|e| survives_reboot(&e.code));
        self.push(Event::new(EventCode::Boot));
    }

    /// Queues a TransferComplete (a finished Download); it is sent in every session until the
    /// ACS acknowledges it, with `7 TRANSFER COMPLETE` and `M Download` in the Inform.
    pub fn transfer_complete(&mut self, message: TransferComplete) {
        if !self.transfers.contains(&message) {
            self.transfers.push(message);
        }
    }

    /// The queued events, in the order queued.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The TransferComplete messages not yet acknowledged.
    pub fn transfers(&self) -> &[TransferComplete] {
        &self.transfers
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.transfers.is_empty()
    }

    /// The events an Inform carries now: the queue, the transfer events, and
    /// `4 VALUE CHANGE` if `value_change`; ordered, deduplicated, at most [`MAX_EVENTS`].
    pub(crate) fn inform_events(&self, value_change: bool) -> Vec<Event> {
        let mut all = self.clone();
        if value_change {
            all.push(Event::new(EventCode::ValueChange));
        }
        for t in &self.transfers {
            all.push(Event::new(EventCode::TransferComplete));
            all.push(Event {
                code: EventCode::MDownload,
                command_key: t.command_key.clone(),
            });
        }
        let mut events = all.events;
        events.sort_by_key(|e| rank(&e.code));
        events.truncate(MAX_EVENTS);
        events
    }

    /// Removes the events an acknowledged Inform carried.
    pub(crate) fn delivered(&mut self, events: &[Event]) {
        self.events.retain(|e| !events.contains(e));
    }

    /// Removes an acknowledged TransferComplete.
    pub(crate) fn transfer_delivered(&mut self, message: &TransferComplete) {
        if let Some(i) = self.transfers.iter().position(|t| t == message) {
            self.transfers.remove(i);
        }
    }

    /// The queue as text, for storage.
    pub fn save(&self) -> String {
        let mut out = format!("{HEADER}\n");
        for e in &self.events {
            out.push_str(&format!(
                "E\t{}\t{}\n",
                escape(e.code.as_str()),
                escape(&e.command_key)
            ));
        }
        for t in &self.transfers {
            let (code, string) = t
                .fault
                .as_ref()
                .map_or((0, ""), |f| (f.code.code(), f.string.as_str()));
            out.push_str(&format!(
                "T\t{}\t{code}\t{}\t{}\t{}\n",
                escape(&t.command_key),
                escape(string),
                escape(&t.start_time),
                escape(&t.complete_time)
            ));
        }
        out
    }

    /// Reads a queue written by [`EventQueue::save`].
    pub fn restore(text: &str) -> Result<Self, QueueError> {
        let mut lines = text.lines().enumerate();
        match lines.next() {
            Some((_, header)) if header.trim_end() == HEADER => {}
            _ => return Err(QueueError::NotAQueue),
        }
        let mut queue = Self::new();
        for (index, line) in lines {
            if line.is_empty() {
                continue;
            }
            let bad = || QueueError::Malformed(index + 1);
            let fields: Vec<String> = line
                .split('\t')
                .map(unescape)
                .collect::<Option<_>>()
                .ok_or_else(bad)?;
            match fields.as_slice() {
                [tag, code, key] if tag == "E" => queue.push(Event {
                    code: EventCode::parse(code),
                    command_key: key.clone(),
                }),
                [tag, key, code, string, start, complete] if tag == "T" => {
                    let code: u32 = code.parse().map_err(|_| bad())?;
                    queue.transfer_complete(TransferComplete {
                        command_key: key.clone(),
                        fault: (code != 0).then(|| TransferFault {
                            code: FaultCode::from_code(code),
                            string: string.clone(),
                        }),
                        start_time: start.clone(),
                        complete_time: complete.clone(),
                    });
                }
                _ => return Err(bad()),
            }
        }
        Ok(queue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(code: EventCode, key: &str) -> Event {
        Event {
            code,
            command_key: key.to_owned(),
        }
    }

    fn codes(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .map(|e| format!("{}/{}", e.code, e.command_key))
            .collect()
    }

    fn transfer(key: &str, fault: Option<u32>) -> TransferComplete {
        TransferComplete {
            command_key: key.to_owned(),
            fault: fault.map(|c| TransferFault {
                code: FaultCode::from_code(c),
                string: "tab\there\nnewline".into(),
            }),
            start_time: "2024-01-01T00:00:00Z".into(),
            complete_time: "2024-01-01T00:01:00Z".into(),
        }
    }

    #[test]
    fn single_and_multiple_events() {
        let mut q = EventQueue::new();
        q.push(Event::new(EventCode::Periodic));
        q.push(Event::new(EventCode::Periodic));
        q.push(ev(EventCode::MReboot, "a"));
        q.push(ev(EventCode::MReboot, "a"));
        q.push(ev(EventCode::MReboot, "b"));
        q.push(ev(EventCode::Other("M X_VENDOR_Op".into()), "1"));
        q.push(ev(EventCode::Other("M X_VENDOR_Op".into()), "2"));
        q.push(ev(EventCode::Other("X VENDOR".into()), ""));
        q.push(ev(EventCode::Other("X VENDOR".into()), ""));
        assert_eq!(
            codes(q.events()),
            [
                "2 PERIODIC/",
                "M Reboot/a",
                "M Reboot/b",
                "M X_VENDOR_Op/1",
                "M X_VENDOR_Op/2",
                "X VENDOR/"
            ]
        );
    }

    #[test]
    fn bootstrap_discards_what_was_meant_for_the_old_acs() {
        let mut q = EventQueue::new();
        q.booted();
        q.push(ev(EventCode::MReboot, "r"));
        q.push(Event::new(EventCode::ValueChange));
        q.push(ev(EventCode::MScheduleInform, "s"));
        q.transfer_complete(transfer("d", None));
        q.push(Event::new(EventCode::Bootstrap));
        assert_eq!(codes(q.events()), ["1 BOOT/", "0 BOOTSTRAP/"]);
        assert!(q.transfers().is_empty());
        assert_eq!(
            codes(&q.inform_events(false)),
            ["0 BOOTSTRAP/", "1 BOOT/"],
            "Inform order"
        );
    }

    #[test]
    fn reboot_keeps_command_events_and_drops_transient_ones() {
        let mut q = EventQueue::new();
        for code in [
            EventCode::Bootstrap,
            EventCode::Boot,
            EventCode::Periodic,
            EventCode::Scheduled,
            EventCode::ValueChange,
            EventCode::Kicked,
            EventCode::ConnectionRequest,
            EventCode::DiagnosticsComplete,
            EventCode::RequestDownload,
        ] {
            q.push(Event::new(code));
        }
        q.push(ev(EventCode::MReboot, "r"));
        q.push(ev(EventCode::MScheduleInform, "s"));
        q.booted();
        assert_eq!(
            codes(q.events()),
            [
                "0 BOOTSTRAP/",
                "3 SCHEDULED/",
                "5 KICKED/",
                "9 REQUEST DOWNLOAD/",
                "M Reboot/r",
                "M ScheduleInform/s",
                "1 BOOT/"
            ]
        );
    }

    #[test]
    fn inform_events_add_transfer_and_value_change_events() {
        let mut q = EventQueue::new();
        q.push(ev(EventCode::MReboot, "r"));
        q.push(Event::new(EventCode::Boot));
        q.transfer_complete(transfer("fw-1", None));
        q.transfer_complete(transfer("fw-2", Some(9010)));
        q.transfer_complete(transfer("fw-2", Some(9010)));
        assert_eq!(q.transfers().len(), 2);
        assert_eq!(
            codes(&q.inform_events(true)),
            [
                "1 BOOT/",
                "4 VALUE CHANGE/",
                "7 TRANSFER COMPLETE/",
                "M Reboot/r",
                "M Download/fw-1",
                "M Download/fw-2"
            ]
        );
        // Delivery removes what the Inform carried; transfers wait for their own response.
        let informed = q.inform_events(true);
        q.push(ev(EventCode::MScheduleInform, "late"));
        q.delivered(&informed);
        assert_eq!(codes(q.events()), ["M ScheduleInform/late"]);
        assert_eq!(q.transfers().len(), 2);
        q.transfer_delivered(&transfer("fw-1", None));
        assert_eq!(q.transfers(), [transfer("fw-2", Some(9010))]);
        q.transfer_delivered(&transfer("fw-2", None));
        assert_eq!(q.transfers().len(), 1, "only the exact message is removed");
    }

    #[test]
    fn inform_events_are_capped() {
        let mut q = EventQueue::new();
        for i in 0..100 {
            q.push(ev(EventCode::MScheduleInform, &i.to_string()));
        }
        q.push(ev(EventCode::MReboot, "x"));
        q.push(Event::new(EventCode::Periodic));
        let events = q.inform_events(false);
        assert_eq!(events.len(), MAX_EVENTS);
        assert_eq!(events[0].code, EventCode::Periodic, "numbered events first");
    }

    #[test]
    fn save_and_restore() {
        let mut q = EventQueue::new();
        q.push(ev(EventCode::MReboot, "key\twith\ttabs"));
        q.push(Event::new(EventCode::Boot));
        q.push(ev(EventCode::Other("X ACME Thing".into()), "\\"));
        q.transfer_complete(transfer("fw", Some(9018)));
        q.transfer_complete(transfer("ok", None));
        let text = q.save();
        assert_eq!(EventQueue::restore(&text), Ok(q.clone()));
        assert_eq!(EventQueue::restore(""), Err(QueueError::NotAQueue));
        assert_eq!(
            EventQueue::restore("cwmp-events 1\nE\tonly-code\n"),
            Err(QueueError::Malformed(2))
        );
        assert_eq!(
            EventQueue::restore("cwmp-events 1\n\nT\tk\tx\t\t\t\n"),
            Err(QueueError::Malformed(3))
        );
        assert_eq!(
            EventQueue::restore("cwmp-events 1\nE\t1 BOOT\tbad\\q\n"),
            Err(QueueError::Malformed(2))
        );
        assert!(EventQueue::restore("cwmp-events 1\n").is_ok_and(|q| q.is_empty()));
    }
}
