//! The `rollcall` command line: `rollcall demo`, `rollcall inspect`.

fn main() -> std::process::ExitCode {
    rollcall_host::cli::main()
}
