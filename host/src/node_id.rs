//! Default node ids: `<hostname>-<pid>-<random hex>`, unique among live
//! processes even when a process restarts with the same pid.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

/// A fresh node id.
pub fn random_node_id() -> String {
    let host = hostname();
    format!("{host}-{}-{:08x}", std::process::id(), random_u32())
}

/// 32 random bits from the standard library's per-process random hash keys
/// mixed with the time (no extra dependency).
pub fn random_u32() -> u32 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    (h.finish() >> 16) as u32
}

fn hostname() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_else(|| "host".to_owned());
    let clean: String = raw
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if clean.is_empty() {
        "host".to_owned()
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_differ_and_fit() {
        let a = random_node_id();
        let b = random_node_id();
        assert_ne!(a, b);
        assert!(a.len() <= rollcall_core::MAX_ID_LEN);
        assert!(a.contains(&std::process::id().to_string()));
    }
}
