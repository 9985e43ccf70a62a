//! Serves the metrics module with made-up kills, until the daemon serves it
//! itself (`oomrecorder run --metrics-listen`); tests/metrics/run scrapes it
//! with a real Prometheus. Delete it once the daemon is wired.
//!
//! ```text
//! cargo run --example metrics_demo -- [--listen 127.0.0.1:9977] [--every SECS] [--textfile PATH]
//! ```
//!
//! At start: kills "in the store" (seeded: a pod killed twice 5 minutes ago,
//! one killed a day ago, which stays hidden), then a container, a systemd
//! unit and a node-wide kill. Then exactly one kill, of a brand-new pod
//! (`batch-N`), on each SIGUSR1 (tests/metrics/run counts them); and with
//! `--every SECS`, every SECS seconds a new pod's kill and, every other
//! time, another kill of `shop/cart-…`, so repeated kills show too. It
//! prints the address it serves on, then one line per kill.

// A demo binary, not a runtime path: printing is its output (one line per
// kill, read by tests/metrics/run), and its constants are known to parse.
#![allow(clippy::print_stdout, clippy::expect_used, clippy::unwrap_used)]

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use oomrecorder::metrics::{
    textfile_loop, write_textfile, Clock, Constraint, KillLabels, LossStage, Metrics, MetricsOptions,
    MetricsServer, Scope, SystemClock,
};

fn pod(namespace: &str, pod: &str, container: &str, scope: Scope) -> KillLabels {
    KillLabels {
        namespace: namespace.into(),
        pod: pod.into(),
        container: container.into(),
        unit: String::new(),
        scope,
        constraint: Constraint::Memcg,
        comm: String::new(),
    }
}

struct Args {
    listen: SocketAddr,
    every: Duration,
    textfile: Option<PathBuf>,
}

fn args() -> Result<Args, String> {
    let mut args = Args {
        listen: "127.0.0.1:9977".parse().expect("a valid default"),
        every: Duration::ZERO,
        textfile: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => args.listen = value()?.parse().map_err(|e| format!("--listen: {e}"))?,
            "--every" => {
                let secs: f64 = value()?.parse().map_err(|e| format!("--every: {e}"))?;
                args.every = Duration::try_from_secs_f64(secs).map_err(|e| format!("--every: {e}"))?;
            }
            "--textfile" => args.textfile = Some(PathBuf::from(value()?)),
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    Ok(args)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = args()?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(run(args))
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let metrics = Metrics::new(MetricsOptions {
        version: env!("CARGO_PKG_VERSION").into(),
        attach: "demo".into(),
        comm_label: false,
    });
    let now = SystemClock.now_unix_seconds();
    metrics.seed(&pod("shop", "cart-6c9f8-x2x7q", "app", Scope::Container), 2, now - 300.0);
    metrics.seed(&pod("shop", "cart-6c9f8-old01", "app", Scope::Container), 4, now - 86_400.0);
    let mut recorded = 0u64;
    let unit = KillLabels {
        unit: "backup.service".into(),
        scope: Scope::Unit,
        constraint: Constraint::Memcg,
        ..KillLabels::default()
    };
    let node = KillLabels { scope: Scope::Node, constraint: Constraint::None, ..KillLabels::default() };
    for (labels, rss) in [
        (pod("shop", "cart-6c9f8-x2x7q", "app", Scope::Container), 255u64 << 20),
        (pod("search", "indexer-0", "java", Scope::Pod), 3 << 30),
        (unit, 700 << 20),
        (node, 12 << 30),
    ] {
        metrics.record_kill(&labels, now, Some(rss));
        recorded += 1;
    }
    metrics.set_kernel_oom_kills(recorded);
    metrics.set_audit_unrecorded_kills(0);
    for stage in LossStage::ALL {
        metrics.set_events_lost(stage, 0);
    }

    let server = MetricsServer::bind(args.listen).await?;
    println!("listening on {}", server.local_addr());
    let (stop, _) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let serving = tokio::spawn(server.serve(metrics.clone(), stopped(stop.subscribe())));
    let textfile = args.textfile.clone().map(|path| {
        tokio::spawn(textfile_loop(metrics.clone(), path, Duration::from_secs(5), stopped(stop.subscribe())))
    });

    use tokio::signal::unix::{signal, SignalKind};
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigusr1 = signal(SignalKind::user_defined1())?;
    let timed = !args.every.is_zero();
    let mut n = 0u64;
    loop {
        let on_timer = tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = sigterm.recv() => break,
            _ = sigusr1.recv() => false,
            () = tokio::time::sleep(args.every), if timed => true,
        };
        n += 1;
        let now = SystemClock.now_unix_seconds();
        let new_pod = pod("batch", &format!("batch-{n}"), "job", Scope::Container);
        metrics.record_kill(&new_pod, now, Some((40 + n % 20) << 20));
        recorded += 1;
        println!("kill: batch/batch-{n}");
        if on_timer && n.is_multiple_of(2) {
            let again = pod("shop", "cart-6c9f8-x2x7q", "app", Scope::Container);
            metrics.record_kill(&again, now, Some(250 << 20));
            recorded += 1;
            println!("kill: shop/cart-6c9f8-x2x7q");
        }
        metrics.set_kernel_oom_kills(recorded);
        if let Some(path) = &args.textfile {
            write_textfile(&metrics, path)?;
        }
    }
    let _ = stop.send(true);
    serving.await?;
    if let Some(t) = textfile {
        t.await?;
    }
    Ok(())
}
