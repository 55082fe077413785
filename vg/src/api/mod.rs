//! The REST API (JSON over HTTP) for runtime subscriber management, on top of
//! [`crate::control::Control`].
//!
//! | method and path | what |
//! |---|---|
//! | `GET /api/v1/subscribers` | every home |
//! | `POST /api/v1/subscribers` | create a home (body: the `[[subscriber]]` fields as JSON) -> 201 |
//! | `POST /api/v1/subscribers/bulk` | create many homes in one transaction (body: `{"subscribers": [..]}`) -> 201 |
//! | `GET /api/v1/subscribers/{id}` | one home |
//! | `PUT /api/v1/subscribers/{id}` | replace a home (LSL, LAN, DHCP, NAT policy, forwards, MSS) |
//! | `PATCH /api/v1/subscribers/{id}` | change some fields (RFC 7396 JSON merge patch, e.g. `{"lsl": "vlan:202"}`) |
//! | `DELETE /api/v1/subscribers/{id}` | delete a home -> 204 |
//! | `GET /api/v1/subscribers/{id}/port-forwards` | its port forwards |
//! | `POST /api/v1/subscribers/{id}/port-forwards` | add one (`{"proto","public_port","private_ip","private_port"}`) -> 201 |
//! | `DELETE /api/v1/subscribers/{id}/port-forwards/{proto}/{port}` | remove one -> 204 |
//! | `GET /api/v1/subscribers/{id}/hosts` | its hosts (fast-path host table) |
//! | `GET /api/v1/subscribers/{id}/leases` | its DHCP leases |
//! | `GET /api/v1/subscribers/{id}/nat-blocks` | its public address and port blocks |
//! | `GET /api/v1/nat/blocks` | every home's public address and port blocks |
//! | `GET /api/v1/nat/pool` | pool usage per public address |
//! | `GET /api/v1/ipv6/pool` | the IPv6 prefix pools: prefixes assigned, held, capacity |
//!
//! Every call needs `Authorization: Bearer <token>` (compared in constant time); without it
//! or with a wrong one: 401. Errors are `{"error": "..."}` with 400 (malformed JSON, unknown
//! field: the serde message), 401, 404, 409 (duplicate id or LSL, pool exhausted, a port in
//! use), 413 (body over [`BODY_LIMIT`], or [`BULK_BODY_LIMIT`] for bulk), 422 (invalid
//! value: the key, the value and why) or 500.

use std::sync::{Arc, Mutex, PoisonError};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, Path, Request, State, rejection::BytesRejection},
    http::{HeaderMap, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{delete, get, post},
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::{
    config::{PortForwardFile, Proto, SubscriberFile},
    control::{Control, ControlError},
    nat::UnixTime,
};

/// Largest body of a single-item call.
pub const BODY_LIMIT: usize = 1 << 20;
/// Largest body of a bulk call (about 200,000 small homes).
pub const BULK_BODY_LIMIT: usize = 64 << 20;
/// Most homes in one bulk call.
pub const BULK_MAX: usize = 200_000;

/// What the handlers share.
pub struct ApiState {
    /// The runtime state.
    pub control: Arc<Mutex<Control>>,
    /// The bearer token.
    token: Vec<u8>,
}

/// The body of `POST /api/v1/subscribers/bulk`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkCreate {
    /// The homes to create.
    pub subscribers: Vec<SubscriberFile>,
}

/// The answer of a bulk create.
#[derive(Debug, Serialize, Deserialize)]
pub struct BulkCreated {
    /// Homes created.
    pub created: usize,
}

/// An error answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct ApiError {
    /// What went wrong.
    pub error: String,
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(ApiError { error: msg.into() })).into_response()
}

/// A refused call: status and message (small, unlike a built [`Response`]).
struct Fail(StatusCode, String);

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        error(self.0, self.1)
    }
}

impl From<ControlError> for Fail {
    fn from(e: ControlError) -> Self {
        let status = match &e {
            ControlError::Invalid(_) | ControlError::Unprocessable(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ControlError::Conflict(_) => StatusCode::CONFLICT,
            ControlError::NotFound(_) => StatusCode::NOT_FOUND,
            ControlError::Store(_) | ControlError::FastPath(_) => {
                tracing::error!(error = %anyhow_like(&e), "API call failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        Fail(status, anyhow_like(&e))
    }
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        let status = match &self {
            ControlError::Invalid(_) | ControlError::Unprocessable(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ControlError::Conflict(_) => StatusCode::CONFLICT,
            ControlError::NotFound(_) => StatusCode::NOT_FOUND,
            ControlError::Store(_) | ControlError::FastPath(_) => {
                tracing::error!(error = %format!("{:#}", anyhow_like(&self)), "API call failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        error(status, anyhow_like(&self))
    }
}

/// The error with its sources, `a: b: c`.
fn anyhow_like(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(src) = cur {
        s.push_str(": ");
        s.push_str(&src.to_string());
        cur = src.source();
    }
    s
}

/// The API's router (paths under `/api/v1`), answering only calls with `token`.
pub fn router(control: Arc<Mutex<Control>>, token: Vec<u8>) -> Router {
    let state = Arc::new(ApiState { control, token });
    let bulk = Router::new()
        .route("/api/v1/subscribers/bulk", post(bulk_create))
        .layer(DefaultBodyLimit::max(BULK_BODY_LIMIT));
    Router::new()
        .route("/api/v1/subscribers", get(list).post(create))
        .route(
            "/api/v1/subscribers/{id}",
            get(get_one).put(replace).patch(patch).delete(remove),
        )
        .route(
            "/api/v1/subscribers/{id}/port-forwards",
            get(forwards).post(add_forward),
        )
        .route(
            "/api/v1/subscribers/{id}/port-forwards/{proto}/{port}",
            delete(remove_forward),
        )
        .route("/api/v1/subscribers/{id}/hosts", get(hosts))
        .route("/api/v1/subscribers/{id}/leases", get(leases))
        .route("/api/v1/subscribers/{id}/nat-blocks", get(nat_blocks_of))
        .route("/api/v1/nat/blocks", get(nat_blocks))
        .route("/api/v1/nat/pool", get(pool))
        .route("/api/v1/ipv6/pool", get(prefix_pool))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .merge(bulk)
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such API path") })
        .layer(middleware::from_fn_with_state(Arc::clone(&state), auth))
        .with_state(state)
}

/// Bearer-token check, constant time in the token's bytes.
async fn auth(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    req: Request,
    next: Next,
) -> Response {
    use subtle::ConstantTimeEq as _;
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let ok = given.is_some_and(|t| bool::from(t.as_bytes().ct_eq(&state.token)));
    if !ok {
        let mut resp = error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token (Authorization: Bearer <token>)",
        );
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        return resp;
    }
    next.run(req).await
}

fn now() -> UnixTime {
    UnixTime::from_system_time(std::time::SystemTime::now())
}

/// Runs `f` on the control state on a blocking thread (map syscalls, store commits).
async fn with_control<T: Send + 'static>(
    state: &Arc<ApiState>,
    f: impl FnOnce(&mut Control) -> Result<T, ControlError> + Send + 'static,
) -> Result<T, Fail> {
    let control = Arc::clone(&state.control);
    let joined = tokio::task::spawn_blocking(move || {
        let mut c = control.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut c)
    })
    .await;
    match joined {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.into()),
        Err(e) => Err(Fail(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the operation failed: {e}"),
        )),
    }
}

/// Parses a JSON body: 413 past the limit, 400 with serde's message otherwise.
fn parse<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, Fail> {
    let bytes = body.map_err(|r| {
        let status = r.status();
        let msg = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "request body too large".to_owned()
        } else {
            r.body_text()
        };
        Fail(status, msg)
    })?;
    // serde's message may quote the offending value whole: cut it short.
    serde_json::from_slice(&bytes).map_err(|e| {
        Fail(
            StatusCode::BAD_REQUEST,
            format!(
                "malformed JSON body: {}",
                lsl::model::excerpt_to(&e.to_string(), 240)
            ),
        )
    })
}

fn id_of(raw: &str) -> Result<u32, Fail> {
    raw.parse().map_err(|_| {
        Fail(
            StatusCode::BAD_REQUEST,
            format!("subscriber id {raw:?} is not a number"),
        )
    })
}

fn ok<T: Serialize>(status: StatusCode, v: T) -> Response {
    (status, Json(v)).into_response()
}

async fn list(State(s): State<Arc<ApiState>>) -> Response {
    match with_control(&s, |c| Ok(c.list())).await {
        Ok(v) => ok(StatusCode::OK, v),
        Err(r) => r.into_response(),
    }
}

async fn create(State(s): State<Arc<ApiState>>, body: Result<Bytes, BytesRejection>) -> Response {
    let file: SubscriberFile = match parse(body) {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    match with_control(&s, move |c| c.create(file, now())).await {
        Ok(v) => ok(StatusCode::CREATED, v),
        Err(r) => r.into_response(),
    }
}

async fn bulk_create(
    State(s): State<Arc<ApiState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let bulk: BulkCreate = match parse(body) {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    if bulk.subscribers.len() > BULK_MAX {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("at most {BULK_MAX} homes per bulk call"),
        );
    }
    match with_control(&s, move |c| c.create_many(bulk.subscribers, now())).await {
        Ok(created) => ok(StatusCode::CREATED, BulkCreated { created }),
        Err(r) => r.into_response(),
    }
}

async fn get_one(State(s): State<Arc<ApiState>>, Path(id): Path<String>) -> Response {
    let id = match id_of(&id) {
        Ok(i) => i,
        Err(r) => return r.into_response(),
    };
    match with_control(&s, move |c| c.get(id)).await {
        Ok(v) => ok(StatusCode::OK, v),
        Err(r) => r.into_response(),
    }
}

async fn replace(
    State(s): State<Arc<ApiState>>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let id = match id_of(&id) {
        Ok(i) => i,
        Err(r) => return r.into_response(),
    };
    let file: SubscriberFile = match parse(body) {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    match with_control(&s, move |c| c.update(id, file, now())).await {
        Ok(v) => ok(StatusCode::OK, v),
        Err(r) => r.into_response(),
    }
}

/// RFC 7396: objects merge key by key, `null` removes a key, anything else replaces.
fn merge_patch(target: &mut serde_json::Value, patch: serde_json::Value) {
    use serde_json::Value;
    match patch {
        Value::Object(fields) => {
            if !target.is_object() {
                *target = Value::Object(serde_json::Map::new());
            }
            if let Value::Object(t) = target {
                for (k, v) in fields {
                    if v.is_null() {
                        t.remove(&k);
                    } else {
                        merge_patch(t.entry(k).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other,
    }
}

async fn patch(
    State(s): State<Arc<ApiState>>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let id = match id_of(&id) {
        Ok(i) => i,
        Err(r) => return r.into_response(),
    };
    let patch: serde_json::Value = match parse(body) {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    if !patch.is_object() {
        return error(StatusCode::BAD_REQUEST, "a merge patch is a JSON object");
    }
    let result = with_control(&s, move |c| {
        let current = c.get(id)?.subscriber;
        let mut doc = serde_json::to_value(current)
            .map_err(|e| ControlError::Unprocessable(e.to_string()))?;
        merge_patch(&mut doc, patch);
        let file: SubscriberFile = serde_json::from_value(doc).map_err(|e| {
            let e = lsl::model::excerpt_to(&e.to_string(), 240);
            ControlError::Unprocessable(format!("the patched home: {e}"))
        })?;
        c.update(id, file, now())
    })
    .await;
    match result {
        Ok(v) => ok(StatusCode::OK, v),
        Err(r) => r.into_response(),
    }
}

async fn remove(State(s): State<Arc<ApiState>>, Path(id): Path<String>) -> Response {
    let id = match id_of(&id) {
        Ok(i) => i,
        Err(r) => return r.into_response(),
    };
    match with_control(&s, move |c| c.delete(id, now())).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r.into_response(),
    }
}

async fn forwards(State(s): State<Arc<ApiState>>, Path(id): Path<String>) -> Response {
    let id = match id_of(&id) {
        Ok(i) => i,
        Err(r) => return r.into_response(),
    };
    match with_control(&s, move |c| c.forwards(id)).await {
        Ok(v) => ok(StatusCode::OK, v),
        Err(r) => r.into_response(),
    }
}

async fn add_forward(
    State(s): State<Arc<ApiState>>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let id = match id_of(&id) {
        Ok(i) => i,
        Err(r) => return r.into_response(),
    };
    let pf: PortForwardFile = match parse(body) {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    match with_control(&s, move |c| c.add_forward(id, pf, now())).await {
        Ok(_) => ok(StatusCode::CREATED, pf),
        Err(r) => r.into_response(),
    }
}

async fn remove_forward(
    State(s): State<Arc<ApiState>>,
    Path((id, proto, port)): Path<(String, String, String)>,
) -> Response {
    let id = match id_of(&id) {
        Ok(i) => i,
        Err(r) => return r.into_response(),
    };
    let proto: Proto = match proto.parse() {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let Ok(port) = port.parse::<u16>() else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("port {port:?} is not a port number"),
        );
    };
    match with_control(&s, move |c| c.remove_forward(id, proto, port, now())).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r.into_response(),
    }
}

async fn hosts(State(s): State<Arc<ApiState>>, Path(id): Path<String>) -> Response {
    let id = match id_of(&id) {
        Ok(i) => i,
        Err(r) => return r.into_response(),
    };
    match with_control(&s, move |c| c.hosts(id)).await {
        Ok(v) => ok(StatusCode::OK, v),
        Err(r) => r.into_response(),
    }
}

async fn leases(State(s): State<Arc<ApiState>>, Path(id): Path<String>) -> Response {
    let id = match id_of(&id) {
        Ok(i) => i,
        Err(r) => return r.into_response(),
    };
    match with_control(&s, move |c| c.leases(id)).await {
        Ok(v) => ok(StatusCode::OK, v),
        Err(r) => r.into_response(),
    }
}

async fn nat_blocks_of(State(s): State<Arc<ApiState>>, Path(id): Path<String>) -> Response {
    let id = match id_of(&id) {
        Ok(i) => i,
        Err(r) => return r.into_response(),
    };
    match with_control(&s, move |c| c.nat_blocks_of(id)).await {
        Ok(v) => ok(StatusCode::OK, v),
        Err(r) => r.into_response(),
    }
}

async fn nat_blocks(State(s): State<Arc<ApiState>>) -> Response {
    match with_control(&s, |c| Ok(c.nat_blocks())).await {
        Ok(v) => ok(StatusCode::OK, v),
        Err(r) => r.into_response(),
    }
}

async fn pool(State(s): State<Arc<ApiState>>) -> Response {
    match with_control(&s, |c| {
        c.pool()
            .ok_or_else(|| ControlError::NotFound("NAT is not configured".into()))
    })
    .await
    {
        Ok(v) => ok(StatusCode::OK, v),
        Err(r) => r.into_response(),
    }
}

async fn prefix_pool(State(s): State<Arc<ApiState>>) -> Response {
    match with_control(&s, |c| {
        c.prefix_pool_view()
            .ok_or_else(|| ControlError::NotFound("IPv6 is not configured".into()))
    })
    .await
    {
        Ok(v) => ok(StatusCode::OK, v),
        Err(r) => r.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut doc = serde_json::json!({"id": 1, "lsl": "vlan:1", "nat": {"blocks": 2, "session_limit": 9}, "tcp_mss": 1400});
        merge_patch(
            &mut doc,
            serde_json::json!({"lsl": "vlan:2", "nat": {"session_limit": null, "filtering": "endpoint-independent"}, "tcp_mss": null}),
        );
        assert_eq!(
            doc,
            serde_json::json!({"id": 1, "lsl": "vlan:2", "nat": {"blocks": 2, "filtering": "endpoint-independent"}})
        );
    }
}
