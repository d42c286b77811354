//! Trace recording: every input a node's tracker is fed, as the JSON Lines
//! trace of `rollcall_core::trace`, and optionally the output of each step,
//! so `rollcall replay` can reproduce (and check) what the node did.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use rollcall_core::trace::{Header, input_line, step_line};
use rollcall_core::{Input, InputError, Millis, Step, Tracker};

use crate::error::Error;

/// Where to record: the trace, and optionally the live output beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracePaths {
    /// The trace: a header, then one line per input.
    pub trace: PathBuf,
    /// The output of each step, as a replay of the trace prints it.
    pub output: Option<PathBuf>,
}

/// Open trace files. Writes are buffered and flushed after every burst; a
/// write that fails stops the recording (once, with a message on stderr)
/// but never the node.
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
    /// Creates the files and writes the trace's header.
    pub fn start(paths: &TracePaths, tracker: &Tracker) -> Result<Recording, Error> {
        let mut trace = create(&paths.trace)?;
        let output = paths.output.as_deref().map(create).transpose()?;
        writeln!(trace, "{}", Header::of(tracker).to_line()).map_err(|e| Error::Trace {
            path: paths.trace.clone(),
            message: e.to_string(),
        })?;
        Ok(Recording {
            trace,
            output,
            failed: false,
        })
    }

    /// Records an input fed to the tracker at `at`.
    pub fn input(&mut self, at: Millis, input: &Input) {
        let line = input_line(at, input);
        let result = writeln!(self.trace, "{line}");
        self.check(result);
    }

    /// Records what the tracker did with the last input.
    pub fn output(&mut self, result: &Result<Step, InputError>) {
        if let Some(out) = &mut self.output {
            let written = writeln!(out, "{}", step_line(result));
            self.check(written);
        }
    }

    /// Writes out what is buffered (after every burst).
    pub fn flush(&mut self) {
        let mut result = self.trace.flush();
        if let Some(out) = &mut self.output {
            result = result.and(out.flush());
        }
        self.check(result);
    }

    fn check(&mut self, result: std::io::Result<()>) {
        if let Err(e) = result
            && !self.failed
        {
            self.failed = true;
            eprintln!("rollcall: trace recording failed, the trace is incomplete: {e}");
        }
    }
}
