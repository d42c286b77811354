//! `rollcall inspect`: the registered nodes, the counts per scope and the
//! invariant check of a live keyspace.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use rollcall_core::model::{DumpEntry, DumpValue};
use rollcall_core::{Config, Schema, Scope, invariants};
use serde::Serialize;

use super::table;
use rollcall_host::dump;
use rollcall_host::store::RedisStore;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The Redis to inspect, e.g. redis://127.0.0.1:6379
    #[arg(long, value_name = "URL")]
    redis: String,
    /// The application's key prefix (keys are `{prefix}:...`).
    #[arg(long, default_value = "rollcall")]
    prefix: String,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct Report {
    prefix: String,
    nodes: Vec<NodeRow>,
    /// Incarnations retired or found dead, whose reap is under way.
    reaping: Vec<String>,
    clients: i64,
    scopes: Vec<ScopeRow>,
    violations: Vec<String>,
    ok: bool,
}

#[derive(Debug, Serialize)]
struct NodeRow {
    incarnation: String,
    /// Milliseconds left on the lease (negative: expired, not yet reaped).
    ttl_ms: i64,
    /// This incarnation's own fields.
    fields: usize,
}

#[derive(Debug, Serialize)]
struct ScopeRow {
    scope: Scope,
    sockets: i64,
    users: usize,
}

pub async fn run(args: Args) -> ExitCode {
    let check = Config {
        prefix: args.prefix.clone(),
        ..Config::default()
    };
    if let Err(e) = check.validate() {
        eprintln!("rollcall inspect: invalid --prefix: {e}");
        return ExitCode::from(2);
    }
    let store = match RedisStore::open(&args.redis, Duration::from_secs(5)).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rollcall inspect: {e}");
            return ExitCode::from(2);
        }
    };
    let schema = Schema::new(&args.prefix);
    let (entries, now) = match async {
        let entries = dump::dump(&store, &schema).await?;
        let now = dump::redis_time_ms(&store).await?;
        Ok::<_, rollcall_host::Error>((entries, now))
    }
    .await
    {
        Ok(x) => x,
        Err(e) => {
            eprintln!("rollcall inspect: {e}");
            return ExitCode::from(2);
        }
    };
    let report = report(&args.prefix, &schema, &entries, now);
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("rollcall inspect: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        print_text(&report);
    }
    if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn report(prefix: &str, schema: &Schema, entries: &[DumpEntry], now: i64) -> Report {
    let base = schema.base();
    let mut nodes = Vec::new();
    let mut reaping = Vec::new();
    let mut own_sizes: BTreeMap<String, usize> = BTreeMap::new();
    let mut clients = 0;
    let mut sockets: BTreeMap<Scope, i64> = BTreeMap::new();
    let mut users: BTreeMap<Scope, usize> = BTreeMap::new();
    let mut violations = Vec::new();
    for entry in entries {
        let name = entry.key.strip_prefix(base).unwrap_or(&entry.key);
        match (name, &entry.value) {
            ("live", DumpValue::Zset(members)) => {
                for (inc, deadline) in members {
                    nodes.push(NodeRow {
                        incarnation: inc.clone(),
                        ttl_ms: deadline - now,
                        fields: 0,
                    });
                }
            }
            ("dead", DumpValue::Zset(members)) => {
                reaping.extend(members.iter().map(|(m, _)| m.clone()));
            }
            ("count", DumpValue::Hash(fields)) => {
                for (f, v) in fields {
                    let v: i64 = v.parse().unwrap_or(0);
                    if f == "c" {
                        clients = v;
                    } else if let Some(scope) = f.strip_prefix('s').and_then(Scope::decode) {
                        sockets.insert(scope, v);
                    }
                }
            }
            (n, DumpValue::Hash(fields)) if n.starts_with("u:") => {
                if let Some(scope) = Scope::decode(&n[2..]) {
                    users.insert(scope, fields.len());
                }
            }
            (n, DumpValue::Zset(members)) if n.starts_with("i:") => {
                own_sizes.insert(n[2..].to_owned(), members.len());
            }
            (_, DumpValue::String(s)) if s.starts_with('<') && s.ends_with('>') => {
                violations.push(format!(
                    "key {:?} is a {}, a type rollcall never writes",
                    entry.key,
                    &s[1..s.len() - 1]
                ));
            }
            _ => {}
        }
    }
    for node in &mut nodes {
        node.fields = own_sizes.get(&node.incarnation).copied().unwrap_or(0);
    }
    violations.extend(invariants::check(entries, schema));
    let mut scopes: BTreeMap<Scope, ScopeRow> = BTreeMap::new();
    for (scope, n) in sockets {
        scopes
            .entry(scope.clone())
            .or_insert(ScopeRow {
                scope,
                sockets: 0,
                users: 0,
            })
            .sockets = n;
    }
    for (scope, n) in users {
        scopes
            .entry(scope.clone())
            .or_insert(ScopeRow {
                scope,
                sockets: 0,
                users: 0,
            })
            .users = n;
    }
    Report {
        prefix: prefix.to_owned(),
        nodes,
        reaping,
        clients,
        scopes: scopes.into_values().collect(),
        ok: violations.is_empty(),
        violations,
    }
}

/// How a scope reads in a table.
pub fn scope_label(scope: &Scope) -> String {
    match scope {
        Scope::Global => "global".to_owned(),
        Scope::Namespace { namespace } => format!("namespace {namespace}"),
        Scope::Room { namespace, room } => format!("room {namespace} {room}"),
    }
}

fn print_text(r: &Report) {
    println!("prefix {:?}", r.prefix);
    println!();
    if r.nodes.is_empty() {
        println!("no registered nodes");
    } else {
        let rows: Vec<Vec<String>> = r
            .nodes
            .iter()
            .map(|n| {
                vec![
                    n.incarnation.clone(),
                    if n.ttl_ms >= 0 {
                        format!("{} ms", n.ttl_ms)
                    } else {
                        format!("expired {} ms ago", -n.ttl_ms)
                    },
                    n.fields.to_string(),
                ]
            })
            .collect();
        print!(
            "{}",
            table::render(&["node (incarnation)", "lease left", "own fields"], &rows)
        );
    }
    if !r.reaping.is_empty() {
        println!("being reaped: {}", r.reaping.join(", "));
    }
    println!();
    println!("clients (engine connections): {}", r.clients);
    let rows: Vec<Vec<String>> = r
        .scopes
        .iter()
        .map(|s| {
            vec![
                scope_label(&s.scope),
                s.sockets.to_string(),
                s.users.to_string(),
            ]
        })
        .collect();
    print!("{}", table::render(&["scope", "sockets", "users"], &rows));
    println!();
    if r.ok {
        println!("invariants: ok");
    } else {
        println!("invariants: {} violation(s)", r.violations.len());
        for v in &r.violations {
            println!("  - {v}");
        }
    }
}
