//! Trace recording to files: the core's session records every input its
//! tracker is fed (and optionally the output of each step) as the JSON
//! Lines trace of `rollcall_core::trace`; this writes those lines out, so
//! `rollcall replay` can reproduce (and check) what the node did.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use rollcall_core::Session;

use crate::error::Error;

/// Where to record: the trace, and optionally the live output beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracePaths {
    /// The trace: a header, then one line per input.
    pub trace: PathBuf,
    /// The output of each step, as a replay of the trace prints it.
    pub output: Option<PathBuf>,
}

/// Open trace files. Lines are written after every burst; a write that
/// fails stops the recording (once, with a message on stderr) but never
/// the node.
#[derive(Debug)]
pub struct Recording {
    trace: BufWriter<File>,
    output: Option<BufWriter<File>>,
    failed: bool,
}

fn create(path: &Path) -> Result<BufWriter<File>, Error> {
    File::create(path)
        .map(BufWriter::new)
        .map_err(|e| Error::Trace {
            path: path.to_owned(),
            message: e.to_string(),
        })
}

impl Recording {
    /// Creates the files, and starts the session's recording (before its
    /// first input).
    pub fn start(paths: &TracePaths, session: &mut Session) -> Result<Recording, Error> {
        let trace = create(&paths.trace)?;
        let output = paths.output.as_deref().map(create).transpose()?;
        session.record(output.is_some()).map_err(|e| Error::Trace {
            path: paths.trace.clone(),
            message: e.to_string(),
        })?;
        Ok(Recording {
            trace,
            output,
            failed: false,
        })
    }

    /// Writes out the lines the session recorded since the last time.
    pub fn write(&mut self, session: &mut Session) {
        if self.failed {
            // Drop the lines: a trace with a hole would not replay.
            let _ = (session.take_trace(), session.take_trace_output());
            return;
        }
        let mut result = Ok(());
        if let Some(lines) = session.take_trace() {
            result = self
                .trace
                .write_all(lines.as_bytes())
                .and(self.trace.flush());
        }
        if let (Some(lines), Some(out)) = (session.take_trace_output(), &mut self.output) {
            result = result.and(out.write_all(lines.as_bytes())).and(out.flush());
        }
        if let Err(e) = result {
            self.failed = true;
            eprintln!("rollcall: trace recording failed, the trace is incomplete: {e}");
        }
    }
}
