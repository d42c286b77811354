//! Runs rollcall-core against Redis (built by the host issue).
