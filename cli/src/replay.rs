//! `rollcall replay`: a trace through one of the engines. Native runs the
//! core directly; wasm runs the npm package's own `.wasm` (the wasm-bindgen
//! output, the very bytes npm ships) under wasmtime through its plain
//! bytes-in/bytes-out exports, with no JS. Both wrap the core's `Replayer`,
//! so they can only differ in how they run it.

use std::path::Path;

use rollcall_core::trace::Replayer;
use wasmtime::{Engine as Runtime, Instance, Linker, Memory, Module, Store, TypedFunc};

/// A way to run a trace: open with the header line, then one input line at
/// a time. Errors are the messages the trace error gives.
pub trait Engine {
    /// Starts a replay from the trace's header line (format, core version,
    /// node id, options).
    fn open(&mut self, header: &str) -> Result<(), String>;
    /// Feeds one input line; what the core did at that step, as one line
    /// of the canonical output (without the `\n`).
    fn step(&mut self, line: &str) -> Result<String, String>;
}

/// Replays a whole trace; the output lines, each ending in `\n`.
pub fn replay(engine: &mut dyn Engine, trace: &str) -> Result<String, String> {
    let mut lines = trace.lines();
    let header = lines.next().ok_or("trace line 1: the trace is empty")?;
    engine.open(header)?;
    let mut out = String::with_capacity(trace.len());
    for line in lines {
        out.push_str(&engine.step(line)?);
        out.push('\n');
    }
    Ok(out)
}

/// The core, natively.
#[derive(Default)]
pub struct Native(Option<Replayer>);

impl Engine for Native {
    fn open(&mut self, header: &str) -> Result<(), String> {
        self.0 = Some(Replayer::new(header).map_err(|e| e.to_string())?);
        Ok(())
    }

    fn step(&mut self, line: &str) -> Result<String, String> {
        let r = self.0.as_mut().ok_or("replay not opened")?;
        r.step(line).map_err(|e| e.to_string())
    }
}

/// The shipped `.wasm` under wasmtime.
pub struct Wasm {
    store: Store<()>,
    memory: Memory,
    alloc: TypedFunc<u32, u32>,
    open: TypedFunc<(u32, u32), i32>,
    step: TypedFunc<(u32, u32), i32>,
    out_ptr: TypedFunc<(), u32>,
    out_len: TypedFunc<(), u32>,
}

impl Wasm {
    /// Loads a `.wasm` file: the wasm-bindgen output needs the GC and
    /// reference-types proposals; its JS imports are never called by the
    /// replay exports, so they are defined as traps.
    pub fn load(path: &Path) -> Result<Wasm, String> {
        let fail = |what: &str, e: wasmtime::Error| format!("{}: {what}: {e:#}", path.display());
        let mut config = wasmtime::Config::new();
        config.wasm_gc(true).wasm_reference_types(true);
        let runtime = Runtime::new(&config).map_err(|e| fail("engine", e))?;
        let module = Module::from_file(&runtime, path).map_err(|e| fail("cannot load", e))?;
        let mut linker = Linker::new(&runtime);
        linker
            .define_unknown_imports_as_traps(&module)
            .map_err(|e| fail("imports", e))?;
        let mut store = Store::new(&runtime, ());
        let instance: Instance = linker
            .instantiate(&mut store, &module)
            .map_err(|e| fail("cannot instantiate", e))?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| format!("{}: exports no memory", path.display()))?;
        macro_rules! func {
            ($name:literal) => {
                instance
                    .get_typed_func(&mut store, $name)
                    .map_err(|e| fail(concat!("missing export ", $name), e))?
            };
        }
        Ok(Wasm {
            alloc: func!("rollcall_alloc"),
            open: func!("rollcall_replay_open"),
            step: func!("rollcall_replay_step"),
            out_ptr: func!("rollcall_out_ptr"),
            out_len: func!("rollcall_out_len"),
            memory,
            store,
        })
    }

    fn call(&mut self, f: TypedFunc<(u32, u32), i32>, input: &str) -> Result<String, String> {
        let trap = |e: wasmtime::Error| format!("wasm trapped: {e:#}");
        let len = u32::try_from(input.len()).map_err(|_| "line too long".to_owned())?;
        let ptr = self.alloc.call(&mut self.store, len).map_err(trap)?;
        self.memory
            .write(&mut self.store, ptr as usize, input.as_bytes())
            .map_err(|e| format!("wasm memory: {e}"))?;
        let status = f.call(&mut self.store, (ptr, len)).map_err(trap)?;
        let out_ptr = self.out_ptr.call(&mut self.store, ()).map_err(trap)? as usize;
        let out_len = self.out_len.call(&mut self.store, ()).map_err(trap)? as usize;
        let bytes = self
            .memory
            .data(&self.store)
            .get(out_ptr..out_ptr + out_len)
            .ok_or("wasm result out of bounds")?;
        let text = String::from_utf8(bytes.to_vec()).map_err(|_| "wasm result is not UTF-8")?;
        if status == 0 { Ok(text) } else { Err(text) }
    }
}

impl Engine for Wasm {
    fn open(&mut self, header: &str) -> Result<(), String> {
        let f = self.open.clone();
        self.call(f, header).map(drop)
    }

    fn step(&mut self, line: &str) -> Result<String, String> {
        let f = self.step.clone();
        self.call(f, line)
    }
}
