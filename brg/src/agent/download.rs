//! Download (TR-069 A.3.2.8): fetch the file, check it, hand it to the firmware command, and
//! say how it went in a TransferComplete.
//!
//! | outcome                                          | FaultCode |
//! |--------------------------------------------------|-----------|
//! | URL unusable                                     | 9010 download failure |
//! | file server unreachable (TCP, TLS)               | 9015 |
//! | file server refuses the credentials (401)        | 9012 |
//! | any other non-2xx status                         | 9016 unable to access file |
//! | transfer broken off, or shorter than `FileSize`  | 9017 unable to complete download |
//! | longer than `FileSize` (or the size limit)       | 9018 file corrupted |
//! | the firmware command rejects the file            | 9018 file corrupted |
//! | no firmware command configured, or it cannot run | 9010 download failure |

use std::path::PathBuf;
use std::time::Duration;

use cwmp::fault::FaultCode;
use cwmp::soap::{Download, TransferComplete, TransferFault};
use rand::RngExt as _;

use super::http::{ClientConfig, Credentials, HttpError, HttpSession};

/// How long the firmware command may run.
const FIRMWARE_COMMAND_TIMEOUT: Duration = Duration::from_secs(600);

/// One accepted Download.
#[derive(Debug)]
pub(super) struct Job {
    pub(super) request: Download,
    pub(super) client: ClientConfig,
    pub(super) dir: PathBuf,
    pub(super) firmware_command: Option<PathBuf>,
    pub(super) max_bytes: u64,
}

impl Job {
    /// Runs the download after its `DelaySeconds`; the TransferComplete to queue.
    pub(super) async fn run(self) -> TransferComplete {
        tokio::time::sleep(Duration::from_secs(u64::from(self.request.delay_seconds))).await;
        let start = super::unix_now();
        let result = self.fetch_and_apply().await;
        let complete = super::unix_now();
        let fault = result.err().map(|(code, string)| {
            tracing::warn!(code = code.code(), "download failed: {string}");
            TransferFault { code, string }
        });
        if fault.is_none() {
            tracing::info!(url = %self.request.url, "download applied");
        }
        TransferComplete {
            command_key: self.request.command_key.clone(),
            fault,
            start_time: cwmp::time::format(start),
            complete_time: cwmp::time::format(complete),
        }
    }

    async fn fetch_and_apply(&self) -> Result<(), (FaultCode, String)> {
        let d = &self.request;
        let credentials = (!d.username.is_empty()).then(|| Credentials {
            username: d.username.clone(),
            password: d.password.clone(),
        });
        let mut http = HttpSession::new(&d.url, credentials, self.client.clone())
            .map_err(|e| (FaultCode::DownloadFailure, e.to_string()))?;
        // Never a name from the ACS: TargetFileName could climb out of the directory.
        let file = self.dir.join(format!(
            "download-{}",
            super::digest::hex(&rand::rng().random::<[u8; 8]>())
        ));
        let limit = if d.file_size > 0 {
            u64::from(d.file_size).min(self.max_bytes)
        } else {
            self.max_bytes
        };
        let result = http.download(&file, limit).await;
        let outcome = match result {
            Ok((status, len)) if status.is_success() => {
                if d.file_size > 0 && len < u64::from(d.file_size) {
                    Err((
                        FaultCode::DownloadIncomplete,
                        format!("received {len} of {} bytes", d.file_size),
                    ))
                } else {
                    self.apply(&file).await
                }
            }
            Ok((status, _)) => Err((FaultCode::FileAccessFailure, format!("HTTP {status}"))),
            Err(HttpError::Unauthorized) => Err((
                FaultCode::TransferAuthenticationFailure,
                "the file server refused the credentials".to_owned(),
            )),
            Err(e @ (HttpError::Connect { .. } | HttpError::Tls { .. })) => {
                Err((FaultCode::FileServerUnreachable, error_chain(&e)))
            }
            Err(HttpError::BodyTooLarge(_)) => Err((
                FaultCode::FileCorrupted,
                format!("the file is larger than {limit} bytes"),
            )),
            Err(e) => Err((FaultCode::DownloadIncomplete, error_chain(&e))),
        };
        let _ = tokio::fs::remove_file(&file).await;
        outcome
    }

    async fn apply(&self, file: &std::path::Path) -> Result<(), (FaultCode, String)> {
        let Some(cmd) = &self.firmware_command else {
            return Err((
                FaultCode::DownloadFailure,
                "no firmware command is configured".to_owned(),
            ));
        };
        let output = tokio::time::timeout(
            FIRMWARE_COMMAND_TIMEOUT,
            tokio::process::Command::new(cmd)
                .arg(file)
                .env("BRGD_FILE_TYPE", &self.request.file_type)
                .env("BRGD_COMMAND_KEY", &self.request.command_key)
                .kill_on_drop(true)
                .output(),
        )
        .await
        .map_err(|_| {
            (
                FaultCode::DownloadFailure,
                "the firmware command timed out".to_owned(),
            )
        })?
        .map_err(|e| {
            (
                FaultCode::DownloadFailure,
                format!("cannot run {}: {e}", cmd.display()),
            )
        })?;
        if output.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let detail: String = stderr.trim().chars().take(200).collect();
        Err((
            FaultCode::FileCorrupted,
            format!(
                "the firmware command refused the file ({}): {detail}",
                output.status
            ),
        ))
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
