//! The CPE side of a CWMP session (TR-069 3.7) as an I/O-free state machine: HTTP response
//! bodies in, HTTP request bodies and actions out.
//!
//! ```text
//!  start() -> POST Inform ------------------------> InformResponse   (events acknowledged)
//!          -> POST TransferComplete (unless held) -> TransferCompleteResponse
//!          -> POST (empty)  ----------------------> ACS request   -> POST its response -> ...
//!                                                   204 / empty   -> Done (or send held requests)
//! ```
//!
//! The embedding transport owns HTTP: cookies, authentication, TLS, timeouts. For each step
//! it POSTs the bytes of [`Step::Post`] (an empty vector is the empty POST) and passes the
//! body of the ACS's answer to [`Session::receive`] (an empty slice for `204 No Content`).
//! On a transport failure it drops the session and retries after
//! [`RetryPolicy::wait`]; on [`Step::Failed`] likewise.
//!
//! Rules implemented:
//! - The Inform carries the [`EventQueue`]'s events, `4 VALUE CHANGE` when the model has
//!   pending changes, `7 TRANSFER COMPLETE` + `M Download` per pending TransferComplete,
//!   `MaxEnvelopes` 1, `RetryCount`, and the model's forced-inform and changed parameters.
//!   The InformResponse acknowledges them: they leave the queue and the model.
//! - A fault in answer to the Inform (e.g. 8005 "retry request") fails the session.
//! - Pending TransferCompletes are sent one per POST, never while the ACS holds requests
//!   (`HoldRequests` in its last envelope); a fault 8005 resends the request (up to
//!   [`MAX_REQUEST_RETRIES`] times), another fault leaves it for the next session.
//! - Each ACS request is answered in its own namespace with its `cwmp:ID` echoed; model
//!   faults become SOAP faults; unknown methods get 9000; malformed arguments 9003.
//! - A message the CPE cannot decode where an ACS request is due is answered with a fault
//!   too (its `cwmp:ID` unknown): 9004 when it exceeds a [`Limits`] bound (size, depth,
//!   elements), 9003 otherwise; the session goes on. A second one in a row fails the
//!   session: a broken ACS (a proxy answering every POST with an error page) gets no
//!   ping-pong of faults. An undecodable InformResponse or TransferCompleteResponse fails
//!   the session (nothing to answer: the CPE asked).
//! - The session ends when the ACS sends an empty response and the CPE has nothing left to
//!   send. Reboot and FactoryReset are returned as [`Action`]s to run after the session.
//!
//! ```
//! use cwmp::model::{Model, NoBackend};
//! use cwmp::session::{EventQueue, Session, SessionConfig, Step};
//! use cwmp::soap::{self, Body, Event, EventCode};
//!
//! let mut model = Model::new(cwmp::tr181::brg()?, NoBackend);
//! let mut queue = EventQueue::new();
//! queue.push(Event::new(EventCode::Bootstrap));
//! let (mut session, inform) = Session::start(&SessionConfig::default(), &model, &queue, 0, 0);
//! let sent = soap::decode(&inform, &soap::Limits::default()).expect("our Inform decodes");
//! assert!(matches!(sent.body, Body::Inform(_)));
//!
//! let reply = br#"<Envelope xmlns:cwmp="urn:dslforum-org:cwmp-1-0"><Body>
//!     <cwmp:InformResponse><MaxEnvelopes>1</MaxEnvelopes></cwmp:InformResponse></Body></Envelope>"#;
//! assert_eq!(session.receive(reply, &mut model, &mut queue), Step::Post(Vec::new()));
//! assert!(queue.is_empty(), "BOOTSTRAP delivered");
//! assert_eq!(session.receive(b"", &mut model, &mut queue), Step::Done);
//! # Ok::<(), cwmp::model::SchemaError>(())
//! ```

mod backoff;
mod events;
mod periodic;

#[cfg(test)]
mod tests;

pub use backoff::{MAX_REPORTED_CAUSES, Retries, Retry, RetryPolicy};
pub use events::{EventQueue, MAX_EVENTS, QueueError};
pub use periodic::{next_periodic_inform, next_periodic_inform_of};

use crate::fault::{Fault, FaultCode};
use crate::model::{Backend, InformedChanges, Model};
use crate::soap::{
    self, AddObjectResponse, Body, CwmpVersion, DecodeError, DeleteObjectResponse, DeviceId,
    Download, DownloadResponse, Envelope, Event, GetParameterAttributesResponse,
    GetParameterNamesResponse, GetParameterValuesResponse, GetRpcMethodsResponse, Inform, Limits,
    SetParameterValuesResponse, Status, TransferComplete,
};

/// How often one CPE request is resent in a session after fault 8005.
pub const MAX_REQUEST_RETRIES: u32 = 3;

/// The RPCs a CPE using this engine answers (GetRPCMethodsResponse).
pub const SUPPORTED_METHODS: &[&str] = &[
    "GetRPCMethods",
    "SetParameterValues",
    "GetParameterValues",
    "GetParameterNames",
    "SetParameterAttributes",
    "GetParameterAttributes",
    "AddObject",
    "DeleteObject",
    "Reboot",
    "Download",
    "FactoryReset",
    "ScheduleInform",
];

/// Session settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// The namespace of the Inform; later messages use the ACS's. Default `cwmp-1-2`, the
    /// namespace of CWMP 1.2 to 1.4.
    pub ns: CwmpVersion,
    /// Bounds on the ACS's documents.
    pub limits: Limits,
    /// Download `FileType`s accepted; others are refused with 9003.
    pub download_file_types: Vec<String>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            ns: CwmpVersion::V1_2,
            limits: Limits::default(),
            download_file_types: vec!["1 Firmware Upgrade Image".to_owned()],
        }
    }
}

/// What the transport does next.
#[derive(Debug, PartialEq, Eq)]
#[must_use]
pub enum Step {
    /// POST this body to the ACS (empty: the empty POST).
    Post(Vec<u8>),
    /// The session ended well: reset the retry count, then run [`Session::take_actions`].
    Done,
    /// The session failed: close the connection and retry after the backoff.
    Failed(SessionError),
}

/// Something the ACS asked for that the application carries out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Reboot after the session; queue `M Reboot` with this CommandKey first (it is
    /// delivered with `1 BOOT` after the reboot).
    Reboot {
        /// The Reboot's CommandKey.
        command_key: String,
    },
    /// Reset to factory defaults after the session (then `0 BOOTSTRAP`).
    FactoryReset,
    /// Open a session in `delay_seconds` with `3 SCHEDULED` and `M ScheduleInform`.
    ScheduleInform {
        /// Seconds from the request.
        delay_seconds: u32,
        /// Reported with `M ScheduleInform`.
        command_key: String,
    },
    /// Fetch and apply a file, then queue its TransferComplete
    /// ([`EventQueue::transfer_complete`]).
    Download(Download),
}

/// Why a session failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The ACS answered the Inform or a CPE request with a fault (8005 asks for a retry).
    #[error("ACS fault: {0}")]
    AcsFault(#[source] Fault),
    /// The ACS's document could not be decoded.
    #[error("undecodable message from the ACS")]
    Decode(#[source] DecodeError),
    /// The ACS sent something the session state does not allow.
    #[error("unexpected {got} from the ACS while {state}")]
    Unexpected {
        /// What arrived (a method name, or `empty response`).
        got: String,
        /// What the session was waiting for.
        state: &'static str,
    },
    /// The session already ended.
    #[error("the session has ended")]
    Ended,
}

impl PartialEq for SessionError {
    /// Compares by kind and fault; decode errors compare equal to each other.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::AcsFault(a), Self::AcsFault(b)) => a == b,
            (Self::Decode(_), Self::Decode(_)) | (Self::Ended, Self::Ended) => true,
            (Self::Unexpected { got: a, state: s }, Self::Unexpected { got: b, state: t }) => {
                a == b && s == t
            }
            _ => false,
        }
    }
}

impl Eq for SessionError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The Inform is out.
    Informing,
    /// A CPE request (index into `transfers`) is out.
    Requesting(usize),
    /// The CPE has sent an empty POST or a response; the ACS sends requests or ends.
    Serving,
    /// Over.
    Ended,
}

impl State {
    fn describe(self) -> &'static str {
        match self {
            Self::Informing => "waiting for InformResponse",
            Self::Requesting(_) => "waiting for TransferCompleteResponse",
            Self::Serving => "serving ACS requests",
            Self::Ended => "ended",
        }
    }
}

/// One CWMP session; see the module docs.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    state: State,
    /// The namespace for CPE requests: the Inform's, then the InformResponse's.
    ns: CwmpVersion,
    /// `HoldRequests` of the ACS's last envelope.
    hold: bool,
    informed_events: Vec<Event>,
    informed_changes: InformedChanges,
    /// The TransferCompletes pending when the session started, and whether each is done
    /// with for this session (delivered, or refused by the ACS).
    transfers: Vec<(TransferComplete, bool)>,
    retries: u32,
    /// Undecodable messages in a row while serving.
    malformed: u32,
    next_id: u32,
    actions: Vec<Action>,
}

impl Session {
    /// Opens a session: the Inform to POST first. `now` is Unix seconds (the Inform's
    /// `CurrentTime`); `retry_count` is the number of failed attempts since the last
    /// successful session.
    pub fn start<B: Backend>(
        config: &SessionConfig,
        model: &Model<B>,
        queue: &EventQueue,
        now: i64,
        retry_count: u32,
    ) -> (Self, Vec<u8>) {
        let events = queue.inform_events(model.has_value_changes());
        let (parameter_list, informed_changes) = model.inform_parameters();
        let inform = Inform {
            device_id: DeviceId {
                manufacturer: model.device_info("Manufacturer"),
                oui: model.device_info("ManufacturerOUI"),
                product_class: model.device_info("ProductClass"),
                serial_number: model.device_info("SerialNumber"),
            },
            events: events.clone(),
            max_envelopes: 1,
            current_time: crate::time::format(now),
            retry_count,
            parameter_list,
        };
        let mut session = Self {
            config: config.clone(),
            state: State::Informing,
            ns: config.ns,
            hold: false,
            informed_events: events,
            informed_changes,
            transfers: queue
                .transfers()
                .iter()
                .map(|t| (t.clone(), false))
                .collect(),
            retries: 0,
            malformed: 0,
            next_id: 1,
            actions: Vec::new(),
        };
        let bytes = session.request(Body::Inform(inform));
        (session, bytes)
    }

    /// The events the session's Inform carries (not the whole queue: a TransferComplete
    /// waits in the queue's transfers, and `4 VALUE CHANGE` is added for pending changes).
    pub fn informed_events(&self) -> &[Event] {
        &self.informed_events
    }

    /// Feeds the body of the ACS's HTTP response (empty for 204) and says what to do next.
    pub fn receive<B: Backend>(
        &mut self,
        body: &[u8],
        model: &mut Model<B>,
        queue: &mut EventQueue,
    ) -> Step {
        if self.state == State::Ended {
            return Step::Failed(SessionError::Ended);
        }
        // Over the size limit is too large, whatever it holds (whitespace too).
        if body.len() <= self.config.limits.max_bytes && soap::is_empty_post(body) {
            return self.on_empty();
        }
        let env = match soap::decode(body, &self.config.limits) {
            Ok(env) => env,
            Err(DecodeError::InvalidArguments { method, id, ns, .. })
                if self.state == State::Serving && is_acs_request(&method) =>
            {
                self.malformed = 0;
                let fault = Fault::with_string(
                    FaultCode::InvalidArguments,
                    format!("invalid arguments in {method}"),
                );
                return self.respond(id, ns, Body::Fault(fault));
            }
            Err(e) if self.state == State::Serving && self.malformed == 0 => {
                self.malformed += 1;
                let id = match &e {
                    DecodeError::UnsupportedNamespace { id, .. } => id.clone(),
                    _ => None,
                };
                return self.respond(id, self.ns, Body::Fault(undecodable_fault(&e)));
            }
            Err(e) => return self.fail(SessionError::Decode(e)),
        };
        self.malformed = 0;
        if env.body == Body::Empty {
            return self.on_empty();
        }
        self.hold = env.hold_requests;
        match (self.state, env.body) {
            (State::Informing, Body::InformResponse(_)) => {
                self.ns = env.ns;
                queue.delivered(&self.informed_events);
                model.inform_delivered(&self.informed_changes);
                self.next_cpe_message()
            }
            (State::Informing, Body::Fault(fault)) => self.fail(SessionError::AcsFault(fault)),
            (State::Requesting(i), Body::TransferCompleteResponse) => {
                if let Some((message, done)) = self.transfers.get_mut(i) {
                    queue.transfer_delivered(message);
                    *done = true;
                }
                self.retries = 0;
                self.next_cpe_message()
            }
            (State::Requesting(i), Body::Fault(fault)) => {
                if fault.code == FaultCode::AcsRetryRequest && self.retries < MAX_REQUEST_RETRIES {
                    self.retries += 1;
                    return self.send_transfer(i);
                }
                // Refused: keep it queued for a later session, go on without it.
                if let Some((_, done)) = self.transfers.get_mut(i) {
                    *done = true;
                }
                self.retries = 0;
                self.next_cpe_message()
            }
            (State::Serving, Body::Fault(fault)) => self.fail(SessionError::AcsFault(fault)),
            (State::Serving | State::Requesting(_), body) if is_acs_request(body_name(&body)) => {
                // An ACS that answers our request with one of its own leaves ours
                // unacknowledged; it is sent again once the ACS is done.
                self.state = State::Serving;
                let answer = self.serve(body, model);
                self.respond(env.id, env.ns, answer)
            }
            (State::Serving, Body::Unknown { name }) => {
                let fault = Fault::with_string(
                    FaultCode::MethodNotSupported,
                    format!("{} is not supported", cut(&name)),
                );
                self.respond(env.id, env.ns, Body::Fault(fault))
            }
            (state, body) => self.fail(SessionError::Unexpected {
                got: body_name(&body).to_owned(),
                state: state.describe(),
            }),
        }
    }

    /// The actions accepted so far (drained). Reboot and FactoryReset are for after the
    /// session; ScheduleInform and Download may start at once.
    pub fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    /// Whether the session has ended (well or not).
    pub fn is_ended(&self) -> bool {
        self.state == State::Ended
    }

    fn on_empty(&mut self) -> Step {
        self.hold = false;
        match self.state {
            State::Serving => match self.next_transfer() {
                Some(i) => self.send_transfer(i),
                None => {
                    self.state = State::Ended;
                    Step::Done
                }
            },
            state => self.fail(SessionError::Unexpected {
                got: "empty response".to_owned(),
                state: state.describe(),
            }),
        }
    }

    fn fail(&mut self, error: SessionError) -> Step {
        self.state = State::Ended;
        Step::Failed(error)
    }

    fn next_transfer(&self) -> Option<usize> {
        self.transfers.iter().position(|(_, done)| !done)
    }

    /// After InformResponse or a CPE request's response: the next CPE request, or the empty
    /// POST.
    fn next_cpe_message(&mut self) -> Step {
        match self.next_transfer() {
            Some(i) if !self.hold => self.send_transfer(i),
            _ => {
                self.state = State::Serving;
                Step::Post(Vec::new())
            }
        }
    }

    fn send_transfer(&mut self, i: usize) -> Step {
        let Some((message, _)) = self.transfers.get(i) else {
            self.state = State::Serving;
            return Step::Post(Vec::new());
        };
        let body = Body::TransferComplete(message.clone());
        self.state = State::Requesting(i);
        Step::Post(self.request(body))
    }

    /// A CPE request envelope with a fresh `cwmp:ID`.
    fn request(&mut self, body: Body) -> Vec<u8> {
        let id = format!("cpe-{}", self.next_id);
        self.next_id = self.next_id.wrapping_add(1);
        Envelope::new(self.ns, body).with_id(id).encode()
    }

    /// An answer to an ACS request: its `cwmp:ID` and namespace.
    fn respond(&mut self, id: Option<String>, ns: CwmpVersion, body: Body) -> Step {
        self.state = State::Serving;
        let env = Envelope {
            id,
            ..Envelope::new(ns, body)
        };
        Step::Post(env.encode())
    }

    /// Runs one ACS request against the model; the response body or a fault.
    fn serve<B: Backend>(&mut self, request: Body, model: &mut Model<B>) -> Body {
        let result = match request {
            Body::GetRpcMethods => Ok(Body::GetRpcMethodsResponse(GetRpcMethodsResponse {
                method_list: SUPPORTED_METHODS.iter().map(|m| (*m).to_owned()).collect(),
            })),
            Body::GetParameterNames(r) => model
                .get_parameter_names(&r.parameter_path, r.next_level)
                .map(|parameter_list| {
                    Body::GetParameterNamesResponse(GetParameterNamesResponse { parameter_list })
                }),
            Body::GetParameterValues(r) => {
                model
                    .get_parameter_values(&r.parameter_names)
                    .map(|parameter_list| {
                        Body::GetParameterValuesResponse(GetParameterValuesResponse {
                            parameter_list,
                        })
                    })
            }
            Body::SetParameterValues(r) => model
                .set_parameter_values(&r.parameter_list, &r.parameter_key)
                .map(|status| {
                    Body::SetParameterValuesResponse(SetParameterValuesResponse { status })
                }),
            Body::GetParameterAttributes(r) => model
                .get_parameter_attributes(&r.parameter_names)
                .map(|parameter_list| {
                    Body::GetParameterAttributesResponse(GetParameterAttributesResponse {
                        parameter_list,
                    })
                }),
            Body::SetParameterAttributes(r) => model
                .set_parameter_attributes(&r.parameter_list)
                .map(|()| Body::SetParameterAttributesResponse),
            Body::AddObject(r) => model.add_object(&r.object_name, &r.parameter_key).map(
                |(instance_number, status)| {
                    Body::AddObjectResponse(AddObjectResponse {
                        instance_number,
                        status,
                    })
                },
            ),
            Body::DeleteObject(r) => model
                .delete_object(&r.object_name, &r.parameter_key)
                .map(|status| Body::DeleteObjectResponse(DeleteObjectResponse { status })),
            Body::Reboot(r) => {
                self.actions.push(Action::Reboot {
                    command_key: r.command_key,
                });
                Ok(Body::RebootResponse)
            }
            Body::FactoryReset => {
                self.actions.push(Action::FactoryReset);
                Ok(Body::FactoryResetResponse)
            }
            Body::ScheduleInform(r) => {
                if r.delay_seconds == 0 {
                    Err(Fault::with_string(
                        FaultCode::InvalidArguments,
                        "DelaySeconds must be greater than zero",
                    ))
                } else {
                    self.actions.push(Action::ScheduleInform {
                        delay_seconds: r.delay_seconds,
                        command_key: r.command_key,
                    });
                    Ok(Body::ScheduleInformResponse)
                }
            }
            Body::Download(r) => self.accept_download(r),
            other => Err(Fault::with_string(
                FaultCode::MethodNotSupported,
                format!("{} is not supported", body_name(&other)),
            )),
        };
        result.unwrap_or_else(Body::Fault)
    }

    fn accept_download(&mut self, download: Download) -> Result<Body, Fault> {
        let scheme = download
            .url
            .split_once("://")
            .map(|(s, _)| s.to_ascii_lowercase());
        if !matches!(scheme.as_deref(), Some("http" | "https")) {
            return Err(Fault::with_string(
                FaultCode::UnsupportedTransferProtocol,
                "only http and https downloads are supported",
            ));
        }
        if !self
            .config
            .download_file_types
            .contains(&download.file_type)
        {
            return Err(Fault::with_string(
                FaultCode::InvalidArguments,
                format!("FileType {:?} is not supported", cut(&download.file_type)),
            ));
        }
        self.actions.push(Action::Download(download));
        Ok(Body::DownloadResponse(DownloadResponse {
            status: Status::Pending,
            start_time: crate::time::UNKNOWN_TIME.to_owned(),
            complete_time: crate::time::UNKNOWN_TIME.to_owned(),
        }))
    }
}

/// The fault answering an ACS message that could not be decoded.
fn undecodable_fault(error: &DecodeError) -> Fault {
    let code = match error {
        DecodeError::TooLarge { .. }
        | DecodeError::TooDeep { .. }
        | DecodeError::TooManyEntries { .. }
        | DecodeError::TooManyElements { .. } => FaultCode::ResourcesExceeded,
        _ => FaultCode::InvalidArguments,
    };
    let text = format!("undecodable request: {error}");
    Fault::with_string(code, text.chars().take(200).collect::<String>())
}

/// The wire name of a body (`Empty` for an empty Body).
fn body_name(body: &Body) -> &str {
    body.method_name().unwrap_or("Empty")
}

/// Whether a method name is one the ACS sends to a CPE as a request (answered by
/// [`Session::receive`], with a fault when unsupported).
fn is_acs_request(method: &str) -> bool {
    !method.ends_with("Response")
        && !matches!(
            method,
            "Fault" | "Empty" | "Inform" | "TransferComplete" | "AutonomousTransferComplete"
        )
}

fn cut(text: &str) -> String {
    text.chars().take(64).collect()
}
