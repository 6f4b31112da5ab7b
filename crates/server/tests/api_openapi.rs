//! The OpenAPI document and the router agree: every operation in the document is served
//! (not the fallback's 404, not 405), every API route in the code is registered through
//! `routes!` (so it carries its documentation), and the document declares the two ways to
//! log in and the error shape.

mod api_support;

use api_support::*;
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn every_documented_operation_is_served() {
    let api = api().await;
    let (s, doc) = api.get("/api/v1/openapi.json", As::Nobody).await;
    assert_eq!(s, StatusCode::OK, "the document needs no login");
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 40, "only {} paths documented", paths.len());
    let mut checked = 0;
    for (path, item) in paths {
        assert!(path.starts_with("/api/v1/"), "{path}");
        let concrete = path
            .replace("{id}", "999999")
            .replace("plugins/999999", "plugins/no.such.plugin");
        for (method, op) in item.as_object().unwrap() {
            let method: Method = method.to_uppercase().parse().unwrap();
            assert!(op["responses"].is_object(), "{method} {path}: no responses");
            let body = matches!(method, Method::POST | Method::PUT).then(|| json!({}));
            let (status, answer) =
                call(&api.app, method.clone(), &concrete, api.admin(), body).await;
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert!(
                answer["error"]["message"] != "no such page or API route",
                "{method} {path} is documented but not routed"
            );
            assert!(status.as_u16() < 500, "{method} {path}: {status} {answer}");
            checked += 1;
        }
    }
    assert!(checked >= 60, "only {checked} operations");
}

#[tokio::test]
async fn undocumented_routes_do_not_exist() {
    // A route added with axum's `.route("/api…")` would be served without documentation;
    // every API route must go through utoipa_axum's `routes!`.
    let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/web");
    let mut files = vec![web.clone()];
    let mut offenders = Vec::new();
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else if p.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&p).unwrap();
            for (i, line) in text.lines().enumerate() {
                let l = line.replace(' ', "");
                if l.contains(".route(\"/api")
                    || l.contains(".route_service(\"/api")
                    || l.contains(".nest(\"/api")
                {
                    offenders.push(format!("{}:{}: {}", p.display(), i + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "API routes without documentation:\n{}",
        offenders.join("\n")
    );
    // And what is not routed falls back to the API's 404 shape.
    let api = api().await;
    let (s, body) = api.get("/api/v1/no-such-thing", api.admin()).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test]
async fn document_declares_security_and_the_error_shape() {
    let api = api().await;
    let (_, doc) = api.get("/api/v1/openapi.json", As::Nobody).await;
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer", "{schemes}");
    assert_eq!(schemes["basic"]["scheme"], "basic", "{schemes}");
    let error = &doc["components"]["schemas"]["ErrorBody"];
    assert!(error["properties"]["error"].is_object(), "{error}");
    let detail = &doc["components"]["schemas"]["ErrorDetail"];
    let required: Vec<&str> = detail["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        required.contains(&"code") && required.contains(&"message"),
        "{detail}"
    );
    // Write-only secrets are marked so, and no response schema of a host has the key.
    let host_view = &doc["components"]["schemas"]["HostView"];
    assert!(
        host_view["properties"].get("auth_key").is_none(),
        "{host_view}"
    );
    assert_eq!(
        doc["components"]["schemas"]["HostInput"]["properties"]["auth_key"]["writeOnly"],
        true
    );
    // The contract routes are there.
    for p in [
        "/api/v1/health/hosts",
        "/api/v1/health/services",
        "/api/v1/classifiers/dry-run",
        "/api/v1/alert-modules",
        "/api/v1/openapi.json",
        "/api/v1/tokens",
        "/api/v1/results",
    ] {
        assert!(doc["paths"].get(p).is_some(), "{p} missing");
    }
    let _: &Value =
        &doc["paths"]["/api/v1/plugins"]["post"]["requestBody"]["content"]["multipart/form-data"];
    assert!(
        doc["paths"]["/api/v1/plugins"]["post"]["requestBody"]["content"]["multipart/form-data"]
            .is_object()
    );
}

#[tokio::test]
async fn every_schema_reference_resolves() {
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|x| refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let api = api().await;
    let (_, doc) = api.get("/api/v1/openapi.json", As::Nobody).await;
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(!found.is_empty());
    for r in found {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{r}"));
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "{r} does not resolve"
        );
    }
}
