//! The front-end files, embedded in the binary so a user installs nothing else: our CSS
//! and JS, and vendored uPlot (charts) and CodeMirror 5 (the classifier editor), each
//! with its licence beside it in `crates/server/assets/vendor/`.
//!
//! URLs carry a hash of the content (`/static/app.css?v=1a2b3c4d`), so the files can be
//! cached for a year and a new binary still reaches every browser at once.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// (URL name, content type, bytes).
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/app.js"),
    ),
    (
        "rows.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/rows.js"),
    ),
    (
        "uPlot.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/vendor/uplot/uPlot.iife.min.js"),
    ),
    (
        "uPlot.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/vendor/uplot/uPlot.min.css"),
    ),
    (
        "codemirror.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/vendor/codemirror/codemirror.js"),
    ),
    (
        "codemirror.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/vendor/codemirror/codemirror.css"),
    ),
    (
        "codemirror-lua.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/vendor/codemirror/mode/lua/lua.js"),
    ),
];

fn versions() -> &'static Vec<String> {
    static V: OnceLock<Vec<String>> = OnceLock::new();
    V.get_or_init(|| {
        FILES
            .iter()
            .map(|(_, _, bytes)| hex::encode(&Sha256::digest(bytes)[..4]))
            .collect()
    })
}

/// The URL of an embedded file, with its content hash; an unknown name is a template bug,
/// made visible as a URL that answers 404.
pub fn url(name: &str) -> String {
    match FILES.iter().position(|(n, _, _)| *n == name) {
        Some(i) => format!("/static/{name}?v={}", versions()[i]),
        None => format!("/static/missing-{name}"),
    }
}

pub async fn serve(Path(name): Path<String>) -> Response {
    match FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            *bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}
