//! The command line as an operator uses it: tokens and imports against the
//! same database a server then serves.

mod common;

use std::process::Command;

use common::{Backend, TestApp, TestDb};
use serde_json::{Value, json};

on_both_backends!(
    token_and_imports_from_the_command_line,
    a_sign_in_link_signs_one_device_in_once
);

fn anpi(db: &TestDb, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_anpi"))
        .args(args)
        .env("DATABASE_URL", &db.url)
        .env_remove("ANPI_SECRET")
        .output()
        .expect("run anpi");
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

async fn token_and_imports_from_the_command_line(backend: Backend) {
    let db = TestDb::new(backend).await;
    let geodata = common::geodata();
    let reference = geodata.join("reference_data.csv");
    let (ok, out, err) = anpi(&db, &["import", "shelters", reference.to_str().unwrap()]);
    assert!(ok, "{err}");
    let outcome: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(outcome["inserted"], 112);
    // Idempotent.
    let (_, out, _) = anpi(&db, &["import", "shelters", reference.to_str().unwrap()]);
    let outcome: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (outcome["inserted"].as_u64(), outcome["unchanged"].as_u64()),
        (Some(0), Some(112))
    );

    // The municipality is inferred from the listed shelters.
    let snapshot = geodata.join("history/open_shelter_Nanao-shi_2024-01-09-1800.csv");
    let (ok, out, err) = anpi(
        &db,
        &["import", "shelter-status", snapshot.to_str().unwrap()],
    );
    assert!(ok, "{err}");
    let outcome: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(outcome["as_of"], "2024-01-09T09:00:00Z");
    assert!(outcome["open"].as_u64().unwrap() > 10);

    // The token is printed once, alone on stdout.
    let (ok, out, err) = anpi(
        &db,
        &[
            "token",
            "create",
            "--municipality",
            "17202",
            "--name",
            "Nanao HQ",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 1);
    let token = out.trim().to_owned();
    assert!(token.starts_with("anpi_") && token.len() > 40);
    let (ok, _, err) = anpi(
        &db,
        &["token", "create", "--municipality", "172023", "--name", "x"],
    );
    assert!(!ok && err.contains("check digit"), "{err}");

    // A server on the same database honours it and shows the imported state.
    let app = TestApp::on(db, true).await;
    let (_, body) = app
        .get_json("/v1/shelters?status=open,full&limit=1000")
        .await;
    assert_eq!(
        body["shelters"].as_array().unwrap().len() as u64,
        outcome["open"].as_u64().unwrap()
    );
    let r = app
        .patch_as(
            &token,
            "/v1/shelters/CC0000000518",
            json!({"occupancy": 200}),
        )
        .await;
    assert_eq!(r.status(), 200);
    app.stop().await;
}

async fn a_sign_in_link_signs_one_device_in_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (ok, out, err) = anpi(
        &db,
        &[
            "token",
            "create",
            "--role",
            "coordinator",
            "--org",
            "七尾市社会福祉協議会",
            "--municipality",
            "172022",
            "--link",
            "--public-url",
            "https://anpi.example.jp",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 1, "the link alone on stdout");
    let link = out.trim().to_owned();
    assert!(
        link.starts_with("https://anpi.example.jp/office#code=anpi_code_"),
        "{link}"
    );
    assert!(
        err.contains('█') || err.contains('▀'),
        "a QR code on stderr"
    );
    let code = link.split("#code=").nth(1).unwrap().to_owned();

    let app = TestApp::on(db, false).await;
    let sign_in = |code: String| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/v1/sign-in"))
                .json(&json!({ "code": code }))
                .send()
                .await
                .unwrap()
        }
    };
    let r = sign_in(code.clone()).await;
    assert_eq!(r.status(), 200);
    let signed: Value = r.json().await.unwrap();
    assert_eq!(signed["account"]["role"], "coordinator");
    let token = signed["token"].as_str().unwrap().to_owned();
    let me = app.get_as(&token, "/v1/me").await;
    assert_eq!(me.status(), 200);
    // Once only: a photo of the QR code signs nobody else in.
    let again = common::expect_problem(sign_in(code).await, 401).await;
    assert!(again["detail"].as_str().unwrap().contains("already used"));
    // Signing out forgets this device's token only.
    let r = app.post_as(&token, "/v1/sign-out", json!({})).await;
    assert_eq!(r.status(), 204);
    assert_eq!(app.get_as(&token, "/v1/me").await.status(), 401);
    let id = signed["account"]["id"].as_i64().unwrap().to_string();
    let (ok, out, err) = anpi(&app.db, &["token", "link", &id]);
    assert!(ok, "{err}");
    let code = out.trim().split("#code=").nth(1).unwrap().to_owned();
    assert_eq!(
        sign_in(code).await.status(),
        200,
        "a new link for the next device"
    );
    app.stop().await;
}
