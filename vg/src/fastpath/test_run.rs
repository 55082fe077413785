//! Running a loaded XDP program on given bytes with `BPF_PROG_TEST_RUN`: for fixture tests
//! and benchmarks. The kernel runs the program `repeat` times on a copy of the input and
//! reports the verdict of the last run, the (possibly rewritten) frame and the mean time.
//!
//! aya 0.14 wraps the syscall (`aya::programs::TestRun`), so this is the one small place that
//! turns it into a typed result; no `unsafe` is needed here.

use std::time::Duration;

use aya::programs::{ProgramError, TestRun, TestRunOptions, Xdp};

/// Headroom for programs that grow the frame (pushing an encapsulation).
const OUTPUT_HEADROOM: usize = 256;

/// The XDP verdict (`enum xdp_action`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpVerdict {
    /// `XDP_ABORTED`: a program error.
    Aborted,
    /// `XDP_DROP`.
    Drop,
    /// `XDP_PASS`: to the kernel stack.
    Pass,
    /// `XDP_TX`: back out of the receiving interface.
    Tx,
    /// `XDP_REDIRECT`.
    Redirect,
    /// A value the kernel does not define.
    Unknown(u32),
}

impl From<u32> for XdpVerdict {
    fn from(v: u32) -> Self {
        match v {
            0 => Self::Aborted,
            1 => Self::Drop,
            2 => Self::Pass,
            3 => Self::Tx,
            4 => Self::Redirect,
            other => Self::Unknown(other),
        }
    }
}

/// What one `BPF_PROG_TEST_RUN` returned.
#[derive(Clone, Debug)]
pub struct TestRunOutput {
    /// The verdict.
    pub verdict: XdpVerdict,
    /// The frame as the program left it.
    pub output: Vec<u8>,
    /// Mean time of one run, as the kernel measured it.
    pub duration: Duration,
}

/// Runs `prog` on `input` `repeat` times (at least once).
pub fn run_xdp(prog: &Xdp, input: &[u8], repeat: u32) -> Result<TestRunOutput, ProgramError> {
    let mut output = vec![0u8; input.len() + OUTPUT_HEADROOM];
    let result = prog.test_run(TestRunOptions {
        data_in: Some(input),
        data_out: Some(&mut output),
        repeat: repeat.max(1),
        ..TestRunOptions::default()
    })?;
    output.truncate(result.data_size_out as usize);
    Ok(TestRunOutput {
        verdict: XdpVerdict::from(result.return_value),
        output,
        duration: result.duration,
    })
}
