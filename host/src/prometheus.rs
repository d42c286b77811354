//! Metrics in the OpenMetrics text format through `prometheus-client`
//! (feature `prometheus`): the catalogue is the core's
//! [`rollcall_core::METRICS`], so the names and help texts are those of the
//! Node package.
//!
//! Counters are named without `_total` here because the encoder appends it;
//! what a scraper sees is the catalogue's name.

use std::fmt;
use std::sync::{Arc, Mutex, Weak};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use rollcall_core::{METRICS, MetricKind, Scope};

use crate::driver::Status;
use crate::error::Error;
use crate::metrics::NodeStats;
use crate::presence::{Inner, Presence};

/// Everything one scrape reports.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    /// This node's numbers.
    pub node: NodeStats,
    /// Sockets cluster-wide; `None` when the store could not be read.
    pub cluster_sockets: Option<u64>,
    /// Distinct users cluster-wide; `None` when the store could not be read.
    pub cluster_users: Option<u64>,
}

impl Scrape {
    fn gauge(&self, name: &str) -> Option<u64> {
        match name {
            "rollcall_local_sockets" => Some(self.node.local_sockets),
            "rollcall_local_users" => Some(self.node.local_users),
            "rollcall_cluster_sockets" => self.cluster_sockets,
            "rollcall_cluster_users" => self.cluster_users,
            _ => None,
        }
    }

    /// Writes every metric of the catalogue, in its order. A gauge without
    /// a value (a failed read) is left out, not reported as 0.
    pub fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let stats = &self.node.stats;
        for m in METRICS {
            match m.kind {
                MetricKind::Gauge => {
                    if let Some(v) = self.gauge(m.name) {
                        let mut e =
                            encoder.encode_descriptor(m.name, m.help, None, MetricType::Gauge)?;
                        e.encode_gauge(&(v as i64))?;
                    }
                }
                MetricKind::Counter => {
                    let base = m.name.strip_suffix("_total").unwrap_or(m.name);
                    let mut e =
                        encoder.encode_descriptor(base, m.help, None, MetricType::Counter)?;
                    for (kind, v) in stats.counter_samples(m.name).unwrap_or_default() {
                        match kind {
                            None => e.encode_counter::<NoLabelSet, _, u64>(&v, None)?,
                            Some(kind) => e
                                .encode_family(&[("type", kind)])?
                                .encode_counter::<NoLabelSet, _, u64>(&v, None)?,
                        }
                    }
                }
                MetricKind::Histogram => {
                    let w = &self.node.write_seconds;
                    let mut e =
                        encoder.encode_descriptor(m.name, m.help, None, MetricType::Histogram)?;
                    e.encode_histogram::<NoLabelSet>(
                        w.sum_seconds(),
                        w.count(),
                        &w.buckets(),
                        None,
                    )?;
                }
            }
        }
        Ok(())
    }
}

/// The latest scrape of a node, kept for a registry (whose collectors
/// cannot wait for the store).
#[derive(Debug)]
struct Cached(Arc<Mutex<Scrape>>);

impl Collector for Cached {
    fn encode(&self, encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let scrape = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        scrape.encode(encoder)
    }
}

/// A registry holding one scrape, to encode it on its own.
#[derive(Debug)]
struct Once(Scrape);

impl Collector for Once {
    fn encode(&self, encoder: DescriptorEncoder<'_>) -> fmt::Result {
        self.0.encode(encoder)
    }
}

async fn scrape(presence: &Presence) -> Result<Scrape, Error> {
    let node = presence.stats().await?;
    let reader = presence.reader();
    let (sockets, users) = tokio::join!(
        reader.sockets_count(Scope::Global),
        reader.users_count(Scope::Global)
    );
    Ok(Scrape {
        node,
        cluster_sockets: sockets.ok(),
        cluster_users: users.ok(),
    })
}

impl Presence {
    /// This node's metrics now, in the OpenMetrics text format (what a
    /// `/metrics` endpoint serves): every metric of
    /// [`rollcall_core::METRICS`]; a cluster gauge whose read failed is
    /// left out. [`Error::Closed`] once the node has stopped.
    pub async fn metrics(&self) -> Result<String, Error> {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Once(scrape(self).await?)));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).map_err(|e| {
            Error::Store {
                message: format!("rollcall: metrics did not encode: {e}"),
            }
        })?;
        Ok(text)
    }

    /// Registers this node's metrics in the application's registry. A
    /// registry encodes without waiting, so the numbers it reports are
    /// refreshed in the background every heartbeat (two reads of the
    /// store), until the node closes or every handle is dropped.
    pub fn register_metrics(&self, registry: &mut Registry) {
        let latest = Arc::new(Mutex::new(Scrape::default()));
        registry.register_collector(Box::new(Cached(latest.clone())));
        let every = std::time::Duration::from_millis(self.config().heartbeat_ms.max(1));
        let weak: Weak<Inner> = self.downgrade();
        tokio::spawn(async move {
            loop {
                let Some(presence) = Presence::upgrade(&weak) else {
                    break;
                };
                if matches!(presence.status(), Status::Closed | Status::Stopped) {
                    break;
                }
                if let Ok(s) = scrape(&presence).await {
                    *latest.lock().unwrap_or_else(|p| p.into_inner()) = s;
                }
                // No handle is held while waiting: dropping the app's last
                // handle still shuts the node down.
                drop(presence);
                tokio::time::sleep(every).await;
            }
        });
    }
}
