//! A real Redis Cluster on loopback: `masters` redis-servers started with
//! `--cluster-enabled yes` on free ports (client and bus), joined by
//! `redis-cli --cluster create ... --cluster-yes`. Every server is killed
//! on drop and with the test process.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::process::run_with_deadline;
use crate::redis_server::{RedisServer, free_port};

pub struct RedisCluster {
    servers: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts `masters` primaries (no replicas) and waits until every one
    /// reports `cluster_state:ok` with all slots assigned.
    pub fn start(masters: usize) -> RedisCluster {
        assert!(masters >= 3, "redis-cli --cluster create needs 3 masters");
        let servers: Vec<RedisServer> = (0..masters)
            .map(|_| {
                let bus = free_port().to_string();
                RedisServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    // Relative to the server's own temp dir.
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-port",
                    &bus,
                    "--cluster-node-timeout",
                    "3000",
                ])
            })
            .collect();
        let cli = std::env::var("ROLLCALL_REDIS_CLI").unwrap_or_else(|_| "redis-cli".into());
        let mut cmd = Command::new(cli);
        cmd.arg("--cluster").arg("create");
        for s in &servers {
            cmd.arg(format!("127.0.0.1:{}", s.port()));
        }
        cmd.args(["--cluster-replicas", "0", "--cluster-yes"]);
        let out = run_with_deadline(&mut cmd, Duration::from_secs(60));
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = RedisCluster { servers };
        let end = Instant::now() + Duration::from_secs(60);
        while !cluster.is_ok() {
            assert!(Instant::now() < end, "the cluster never reached state ok");
            std::thread::sleep(Duration::from_millis(50));
        }
        cluster
    }

    fn is_ok(&self) -> bool {
        let n = self.servers.len();
        self.servers.iter().all(|s| {
            let info = s.command_string(&["CLUSTER", "INFO"]).unwrap_or_default();
            info.contains("cluster_state:ok")
                && info.contains("cluster_slots_assigned:16384")
                && info.contains(&format!("cluster_known_nodes:{n}"))
        })
    }

    /// The URL of every primary (any of them is a seed).
    pub fn urls(&self) -> Vec<String> {
        self.servers.iter().map(RedisServer::url).collect()
    }

    pub fn servers(&self) -> &[RedisServer] {
        &self.servers
    }

    /// The URL of the primary that owns the hash slot of `{tag}`.
    pub fn owner_of(&self, tag: &str) -> String {
        let slot = hash_slot(tag);
        // Ask one node for the slot map and find the owner.
        let slots = redis::Client::open(self.servers[0].url())
            .and_then(|c| c.get_connection())
            .and_then(|mut c| {
                redis::cmd("CLUSTER")
                    .arg("SLOTS")
                    .query::<redis::Value>(&mut c)
            })
            .expect("CLUSTER SLOTS");
        if let redis::Value::Array(ranges) = slots {
            for r in ranges {
                if let redis::Value::Array(parts) = r
                    && let (Some(redis::Value::Int(lo)), Some(redis::Value::Int(hi))) =
                        (parts.first(), parts.get(1))
                    && (*lo..=*hi).contains(&i64::from(slot))
                    && let Some(redis::Value::Array(node)) = parts.get(2)
                    && let Some(redis::Value::Int(port)) = node.get(1)
                {
                    return format!("redis://127.0.0.1:{port}");
                }
            }
        }
        panic!("no primary owns slot {slot}");
    }
}

/// The Redis Cluster hash slot of a key whose hash tag is `tag`
/// (CRC16/XMODEM mod 16384).
pub fn hash_slot(tag: &str) -> u16 {
    let mut crc: u16 = 0;
    for &b in tag.as_bytes() {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16384
}
