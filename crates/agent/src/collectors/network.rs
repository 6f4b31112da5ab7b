//! `network`: throughput of one interface (bytes/s in + out) since the previous call.
//!
//! Counters come from /sys/class/net/<if>/statistics; the previous reading per interface
//! is kept in the collectors' state, so the first run has no rate yet.

use std::path::Path;
use std::time::Instant;

use super::{
    arg_str_req, human_bytes, ok, with_file, ArgDef, ArgKind, Args, CollectorError, CollectorInfo,
    Ctx,
};
use prophasis_protocol::api::RunResponse;

pub const INFO: CollectorInfo = CollectorInfo {
    name: "network",
    description: "Network throughput of one interface since the previous run",
    value: "bytes per second received plus sent since the previous run (null on the first run)",
    args: &[ArgDef {
        name: "interface",
        kind: ArgKind::String,
        required: true,
        default: None,
        description: "interface name, e.g. eth0",
    }],
};

pub fn run(ctx: &Ctx<'_>, args: &Args) -> Result<RunResponse, CollectorError> {
    let iface = arg_str_req(args, "interface")?;
    if iface.contains('/') || iface.starts_with('.') || iface.len() > 64 {
        return Err(CollectorError::bad_args(format!(
            "argument interface {iface:?} is not an interface name"
        )));
    }
    let mut path = ctx.sys_root.join("class/net");
    path.push(iface);
    path.push("statistics/rx_bytes");
    // The interface's existence is checked only when its counter cannot be read: one
    // system call fewer on every run.
    let rx = match counter(&path) {
        Err(_) if !ctx.sys_root.join("class/net").join(iface).exists() => {
            return Err(no_such_interface(ctx, iface))
        }
        r => r?,
    };
    path.set_file_name("tx_bytes");
    let tx = counter(&path)?;
    let now = Instant::now();
    let previous = {
        let mut st = ctx.state.lock().unwrap_or_else(|p| p.into_inner());
        match st.net.get_mut(iface) {
            Some(e) => Some(std::mem::replace(e, (now, rx, tx))),
            None => st.net.insert(iface.to_string(), (now, rx, tx)),
        }
    };
    match previous {
        Some((then, prx, ptx)) if rx >= prx && tx >= ptx && now > then => {
            let secs = now.duration_since(then).as_secs_f64();
            let (rxs, txs) = ((rx - prx) as f64 / secs, (tx - ptx) as f64 / secs);
            ok(
                Some(((rxs + txs) * 10.0).round() / 10.0),
                format!(
                    "{iface}: in {}/s, out {}/s over the last {secs:.0} s",
                    human_bytes(rxs),
                    human_bytes(txs)
                ),
            )
        }
        Some(_) => ok(
            None,
            format!("{iface}: counters were reset; rates from the next run on"),
        ),
        None => ok(
            None,
            format!(
                "{iface}: {} received, {} sent in total; rates from the next run on",
                human_bytes(rx as f64),
                human_bytes(tx as f64)
            ),
        ),
    }
}

fn counter(path: &Path) -> Result<u64, CollectorError> {
    with_file(path, |text| {
        text.trim().parse().map_err(|_| {
            CollectorError::failed(format!("unexpected content in {}", path.display()))
        })
    })
}

fn no_such_interface(ctx: &Ctx<'_>, iface: &str) -> CollectorError {
    let mut names: Vec<String> = std::fs::read_dir(ctx.sys_root.join("class/net"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    CollectorError::bad_args(format!(
        "no network interface {iface:?} on this host; it has: {}",
        names.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use crate::collectors::{testutil::lay, Args, Collectors};
    use prophasis_protocol::api::ErrorCode;

    #[test]
    fn rate_since_previous_call() {
        let d = tempfile::tempdir().unwrap();
        lay(
            d.path(),
            &[
                ("class/net/eth0/statistics/rx_bytes", "1000\n"),
                ("class/net/eth0/statistics/tx_bytes", "500\n"),
            ],
        );
        let c = Collectors::with_root(d.path(), d.path());
        let args = |i: &str| Args::from([("interface".to_string(), serde_json::json!(i))]);
        let r = c.run("network", &args("eth0")).unwrap();
        assert_eq!(r.value, None);
        assert!(r.message.contains("next run"), "{}", r.message);
        std::thread::sleep(std::time::Duration::from_millis(50));
        lay(
            d.path(),
            &[
                ("class/net/eth0/statistics/rx_bytes", "2000\n"),
                ("class/net/eth0/statistics/tx_bytes", "1500\n"),
            ],
        );
        let r = c.run("network", &args("eth0")).unwrap();
        let v = r.value.unwrap();
        // 2000 bytes over a bit more than 50 ms.
        assert!(v > 1000.0 && v <= 40_000.0, "{v}");
        let e = c.run("network", &args("wlan9")).unwrap_err();
        assert_eq!(e.code(), ErrorCode::BadRequest);
        assert!(e.message.contains("eth0"), "{e}");
        let e = c.run("network", &args("../../etc")).unwrap_err();
        assert_eq!(e.code(), ErrorCode::BadRequest);
    }

    #[test]
    fn loopback_on_this_machine() {
        let c = Collectors::new();
        let args = Args::from([("interface".to_string(), serde_json::json!("lo"))]);
        c.run("network", &args).unwrap();
        assert!(c.run("network", &args).unwrap().value.is_some());
    }
}
