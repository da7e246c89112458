//! Who may call what, for every operation the OpenAPI document lists — the
//! matrix is generated from the router's own document, so a new endpoint is
//! checked the day it is added: an operation that declares a token refuses
//! none (401), an unknown one (401) and a suspended one (403); one that
//! declares none answers without a token; an office-only operation refuses a
//! volunteer's token (403).

mod common;

use common::{Backend, TestApp};
use serde_json::{Value, json};

on_both_backends!(every_operation_checks_who_is_calling);

/// A value for a path parameter: a real municipality, else any id.
fn fill(path: &str) -> String {
    path.replace("{code}", "172022")
        .replace("{kind}", "requests")
        .split('/')
        .map(|part| {
            if part.starts_with('{') {
                "1".to_owned()
            } else {
                part.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

async fn call(app: &TestApp, method: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let url = app.url(&fill(path));
    let mut request = match method {
        "get" => app.client.get(url),
        "post" => app.client.post(url),
        "patch" => app.client.patch(url),
        "put" => app.client.put(url),
        "delete" => app.client.delete(url),
        other => panic!("method {other}"),
    };
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if method != "get" {
        request = request.json(&json!({}));
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn every_operation_checks_who_is_calling(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (_, doc) = app.get_json("/v1/openapi.json").await;
    let centre = app.coordinator("七尾市社会福祉協議会", &["172022"]).await;
    let volunteer = app.volunteer(&centre, "山田 花子").await;
    let suspended = app.volunteer(&centre, "停止中").await;
    let id = app
        .get_as(&suspended, "/v1/me")
        .await
        .json::<Value>()
        .await
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    app.store().set_suspended(id, true).await.unwrap();

    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            let what = format!("{} {path}", method.to_uppercase());
            if path == "/v1/live" || path == "/metrics" {
                continue; // a WebSocket upgrade; the metrics token has its own test
            }
            let (anonymous, body) = call(&app, method, path, None).await;
            if secured {
                // Sign-out needs the device's token; the rest any holder's.
                assert_eq!(anonymous, 401, "{what} without a token: {body}");
                let (unknown, _) = call(&app, method, path, Some("anpi_nobody")).await;
                assert_eq!(unknown, 401, "{what} with an unknown token");
                if path != "/v1/sign-out" {
                    let (status, body) = call(&app, method, path, Some(&suspended)).await;
                    assert_eq!(status, 403, "{what} with a suspended token: {body}");
                }
            } else {
                assert_ne!(anonymous, 401, "{what} is public but asked for a token");
            }
            // Office-only operations (shelters, incidents, announcements,
            // PFIF) and those of offices and centres (supply points) refuse
            // a volunteer.
            let office_only = secured
                && !path.starts_with("/v1/aid")
                && !path.starts_with("/v1/volunteers")
                && !["/v1/me", "/v1/sign-out"].contains(&path.as_str());
            if office_only {
                let (status, body) = call(&app, method, path, Some(&volunteer)).await;
                assert_eq!(status, 403, "{what} with a volunteer's token: {body}");
            }
            checked += 1;
        }
    }
    assert!(checked > 40, "only {checked} operations in the document");
}
