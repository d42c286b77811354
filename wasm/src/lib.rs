//! WASM bindings of rollcall-core (built by the npm package issue).
