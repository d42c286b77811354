//! The `rollcall` command line: `rollcall demo`, `rollcall inspect`,
//! `rollcall replay`.

fn main() -> std::process::ExitCode {
    rollcall_cli::main()
}
