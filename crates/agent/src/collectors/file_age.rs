//! `file_age`: seconds since a file was last modified — stale backups, dead cron jobs,
//! log files that stopped growing.

use std::time::SystemTime;

use super::{arg_str_req, ok, ArgDef, ArgKind, Args, CollectorError, CollectorInfo, Ctx};
use prophasis_protocol::api::RunResponse;

pub const INFO: CollectorInfo = CollectorInfo {
    name: "file_age",
    description: "Time since a file was last modified",
    value: "seconds since the last modification (negative when the file's time is in the future)",
    args: &[ArgDef {
        name: "path",
        kind: ArgKind::String,
        required: true,
        default: None,
        description: "absolute path of the file or folder",
    }],
};

pub fn run(_: &Ctx<'_>, args: &Args) -> Result<RunResponse, CollectorError> {
    let path = arg_str_req(args, "path")?;
    if !path.starts_with('/') {
        return Err(CollectorError::bad_args(format!(
            "argument path must be absolute, got {path:?}"
        )));
    }
    let meta = std::fs::metadata(path)
        .map_err(|e| CollectorError::failed(format!("cannot read {path}: {e}")))?;
    let modified = meta
        .modified()
        .map_err(|e| CollectorError::failed(format!("no modification time for {path}: {e}")))?;
    let age = match SystemTime::now().duration_since(modified) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    };
    let age = age.round();
    ok(Some(age), format!("{path} modified {age:.0} s ago"))
}

#[cfg(test)]
mod tests {
    use crate::collectors::{Args, Collectors};
    use prophasis_protocol::api::ErrorCode;

    #[test]
    fn age_of_a_fresh_and_a_missing_file() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("x");
        std::fs::write(&f, "x").unwrap();
        let c = Collectors::new();
        let args = |p: &str| Args::from([("path".to_string(), serde_json::json!(p))]);
        let r = c.run("file_age", &args(f.to_str().unwrap())).unwrap();
        assert!(r.value.unwrap() < 60.0, "{:?}", r.value);
        let e = c.run("file_age", &args("/no/such/file")).unwrap_err();
        assert_eq!(e.code(), ErrorCode::PluginFailed);
        let e = c.run("file_age", &Args::new()).unwrap_err();
        assert_eq!(e.code(), ErrorCode::BadRequest);
        assert!(e.message.contains("required"));
    }
}
