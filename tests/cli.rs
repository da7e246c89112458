//! The command line as an operator uses it: tokens and imports against the
//! same database a server then serves.

mod common;

use std::process::Command;

use common::{Backend, TestApp, TestDb};
use serde_json::{Value, json};

on_both_backends!(token_and_imports_from_the_command_line);

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
