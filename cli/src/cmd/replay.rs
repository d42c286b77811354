//! `rollcall replay`: re-runs a recorded trace and prints what the core did
//! at each step, natively or with the npm package's own `.wasm`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args as ClapArgs, ValueEnum};

use crate::replay::{Engine, Native, Wasm, replay};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineKind {
    /// rollcall-core compiled into this binary.
    Native,
    /// The npm package's replay module `rollcall_tools_bg.wasm` under wasmtime, no JS.
    Wasm,
}

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// The trace: JSON Lines, a header then one input per line.
    trace: PathBuf,
    /// Which engine runs it.
    #[arg(long, value_enum, default_value = "native")]
    engine: EngineKind,
    /// The `.wasm` to load with `--engine wasm` [default: the first of
    /// pkg/rollcall_tools_bg.wasm and node_modules/rollcall/rollcall_tools_bg.wasm]
    #[arg(long, value_name = "PATH")]
    wasm: Option<PathBuf>,
    /// Write the output here instead of standard output.
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
    /// Compare the output with this file; exit 1 if they differ.
    #[arg(long, value_name = "PATH")]
    expect: Option<PathBuf>,
}

const WASM_CANDIDATES: [&str; 2] = [
    "pkg/rollcall_tools_bg.wasm",
    "node_modules/rollcall/rollcall_tools_bg.wasm",
];

fn default_wasm() -> Option<PathBuf> {
    WASM_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

pub fn run(args: Args) -> ExitCode {
    match run_inner(&args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("rollcall replay: {message}");
            ExitCode::from(2)
        }
    }
}

fn run_inner(args: &Args) -> Result<ExitCode, String> {
    let trace = read(&args.trace)?;
    let mut engine: Box<dyn Engine> = match args.engine {
        EngineKind::Native => Box::new(Native::default()),
        EngineKind::Wasm => {
            let path = args.wasm.clone().or_else(default_wasm).ok_or_else(|| {
                format!(
                    "no .wasm found at {}; build the package (npm --prefix pkg run build) or pass --wasm PATH",
                    WASM_CANDIDATES.join(" or ")
                )
            })?;
            Box::new(Wasm::load(&path)?)
        }
    };
    let output = match replay(engine.as_mut(), &trace) {
        Ok(output) => output,
        Err(message) => {
            // A bad trace line: the error names the line and the field.
            eprintln!("rollcall replay: {}: {message}", args.trace.display());
            return Ok(ExitCode::from(1));
        }
    };
    match &args.out {
        Some(path) => std::fs::write(path, &output)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?,
        None => print!("{output}"),
    }
    if let Some(path) = &args.expect {
        let expected = read(path)?;
        if expected != output {
            let line = expected
                .lines()
                .zip(output.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| expected.lines().count().min(output.lines().count()));
            eprintln!(
                "rollcall replay: output differs from {} at output line {}",
                path.display(),
                line + 1
            );
            return Ok(ExitCode::from(1));
        }
    }
    Ok(ExitCode::SUCCESS)
}
