//! Official alerts in CAP 1.2 on both backends: an office relays a
//! prefecture's alert, residents hear it live naming place and issuer, it
//! reads back as CAP that validates against the schema and in an Atom feed;
//! an update replaces it, a cancellation retires it, an expired one is no
//! longer shown; malformed alerts and other municipalities are refused.

mod common;

use chrono::{Duration, Utc};
use common::ws::Ws;
use common::xml::xmllint;
use common::{Backend, TestApp, expect_problem, problem_fields};
use serde_json::{Value, json};

on_both_backends!(
    an_alert_is_relayed_heard_exported_updated_and_cancelled,
    bad_alerts_and_other_municipalities_are_refused,
);

const NANAO: &str = "172022";
const WAJIMA: &str = "172049";
const SENDER: &str = "pref.ishikawa.lg.jp";

/// A CAP 1.2 alert from Ishikawa prefecture for `codes`, in Japanese and English.
fn alert(
    identifier: &str,
    msg_type: &str,
    references: &str,
    codes: &[&str],
    expires: &str,
) -> String {
    let geocodes: String = codes
        .iter()
        .map(|c| format!("<geocode><valueName>JIS X0402</valueName><value>{c}</value></geocode>"))
        .collect();
    let references = if references.is_empty() {
        String::new()
    } else {
        format!("<references>{references}</references>")
    };
    let info = |lang: &str, event: &str, headline: &str| {
        format!(
            "<info><language>{lang}</language><category>Safety</category><event>{event}</event>\
             <urgency>Immediate</urgency><severity>Severe</severity><certainty>Observed</certainty>\
             <expires>{expires}</expires><senderName>石川県危機対策課</senderName>\
             <headline>{headline}</headline><instruction>高台へ避難してください</instruction>\
             <area><areaDesc>石川県七尾市</areaDesc>{geocodes}</area></info>"
        )
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <alert xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\">\
         <identifier>{identifier}</identifier><sender>{SENDER}</sender>\
         <sent>2024-01-01T16:22:00+09:00</sent><status>Actual</status><msgType>{msg_type}</msgType>\
         <scope>Public</scope>{references}{}{}</alert>",
        info("ja-JP", "避難指示", "七尾市に避難指示"),
        info("en-US", "Evacuation order", "Evacuation order for Nanao"),
    )
}

fn in_an_hour() -> String {
    (Utc::now() + Duration::hours(1))
        .with_timezone(&chrono::FixedOffset::east_opt(9 * 3600).unwrap())
        .format("%Y-%m-%dT%H:%M:%S+09:00")
        .to_string()
}

async fn relay(app: &TestApp, token: &str, xml: String) -> reqwest::Response {
    app.client
        .post(app.url("/v1/alerts"))
        .bearer_auth(token)
        .header("content-type", "application/cap+xml")
        .body(xml)
        .send()
        .await
        .unwrap()
}

async fn in_force(app: &TestApp) -> Vec<Value> {
    let (_, list) = app
        .get_json(&format!("/v1/municipalities/{NANAO}/announcements"))
        .await;
    list["announcements"].as_array().unwrap().clone()
}

async fn text_of(app: &TestApp, path: &str) -> (String, String) {
    let r = app.client.get(app.url(path)).send().await.unwrap();
    assert_eq!(r.status(), 200, "{path}");
    let kind = r.headers()["content-type"].to_str().unwrap().to_owned();
    (kind, r.text().await.unwrap())
}

async fn an_alert_is_relayed_heard_exported_updated_and_cancelled(backend: Backend) {
    let app = TestApp::start(backend).await;
    let office = app.token("七尾市災害対策本部", &[NANAO]).await;
    let mut resident = Ws::connect(&app.base).await;
    resident
        .subscribe(json!({"channels": [format!("notices:{NANAO}")]}))
        .await;

    let r = relay(
        &app,
        &office,
        alert("ISK-1", "Alert", "", &[NANAO], &in_an_hour()),
    )
    .await;
    assert_eq!(r.status(), 201);
    let relayed: Value = r.json().await.unwrap();
    let posted = &relayed["posted"][0];
    assert_eq!(posted["issuer"], "石川県危機対策課");
    assert_eq!(posted["area_desc"], "石川県七尾市");
    assert_eq!(posted["posted_by"], "七尾市災害対策本部");
    assert_eq!(posted["severity"], "urgent");
    assert_eq!(posted["event"], "避難指示");
    assert!(
        posted["text"]
            .as_str()
            .unwrap()
            .starts_with("七尾市に避難指示")
    );
    assert!(
        posted["text_en"]
            .as_str()
            .unwrap()
            .starts_with("Evacuation order for Nanao")
    );
    let id = posted["id"].as_str().unwrap().to_owned();

    // Heard live, naming where and who says so.
    let heard = loop {
        let frame = resident.next().await;
        if frame["op"] == "event" && frame["kind"] == "announcement" {
            break frame;
        }
    };
    assert_eq!(heard["data"]["id"], id.as_str());
    assert_eq!(heard["data"]["issuer"], "石川県危機対策課");
    assert_eq!(heard["data"]["area_desc"], "石川県七尾市");

    // Read back as CAP (as received) and as Atom; both validate.
    let (kind, cap) = text_of(&app, &format!("/v1/announcements/{id}/cap")).await;
    assert_eq!(kind, "application/cap+xml");
    xmllint(Some("cap/cap-1.2.xsd"), &cap).unwrap_or_else(|e| panic!("{e}\n{cap}"));
    assert!(cap.contains("<identifier>ISK-1</identifier>") && cap.contains("石川県危機対策課"));
    // An announcement composed on the board reads as CAP too.
    let composed = app
        .post_as(
            &office,
            &format!("/v1/municipalities/{NANAO}/announcements"),
            json!({"text": "給水は市役所で10時から", "text_en": "Water at the city hall from 10:00"}),
        )
        .await;
    let composed: Value = composed.json().await.unwrap();
    let (_, cap2) = text_of(
        &app,
        &format!("/v1/announcements/{}/cap", composed["id"].as_str().unwrap()),
    )
    .await;
    xmllint(Some("cap/cap-1.2.xsd"), &cap2).unwrap_or_else(|e| panic!("{e}\n{cap2}"));
    assert!(cap2.contains("七尾市災害対策本部") && cap2.contains("<value>172022</value>"));
    let (kind, feed) = text_of(&app, &format!("/v1/municipalities/{NANAO}/alerts.atom")).await;
    assert_eq!(kind, "application/atom+xml");
    xmllint(None, &feed).unwrap_or_else(|e| panic!("{e}\n{feed}"));
    assert_eq!(feed.matches("<entry").count(), 2, "{feed}");
    assert!(
        feed.contains("石川県七尾市") && feed.contains("石川県危機対策課"),
        "{feed}"
    );
    assert!(feed.contains(&format!("/v1/announcements/{id}/cap")));

    // An update replaces it: the old one is retired, the new one in force.
    let update = alert(
        "ISK-2",
        "Update",
        &format!("{SENDER},ISK-1,2024-01-01T16:22:00+09:00"),
        &[NANAO],
        &in_an_hour(),
    );
    let r = relay(&app, &office, update).await;
    assert_eq!(r.status(), 201);
    let updated: Value = r.json().await.unwrap();
    assert_eq!(updated["retired"][0]["id"], id.as_str());
    let ids: Vec<String> = in_force(&app)
        .await
        .iter()
        .map(|a| a["cap_identifier"].as_str().unwrap_or("").to_owned())
        .collect();
    assert!(
        ids.contains(&"ISK-2".to_owned()) && !ids.contains(&"ISK-1".to_owned()),
        "{ids:?}"
    );
    // A cancellation retires it; the record stays readable.
    let cancel = format!(
        "<alert xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\"><identifier>ISK-3</identifier>\
         <sender>{SENDER}</sender><sent>2024-01-01T18:00:00+09:00</sent><status>Actual</status>\
         <msgType>Cancel</msgType><scope>Public</scope>\
         <references>{SENDER},ISK-2,2024-01-01T16:22:00+09:00</references></alert>"
    );
    let r = relay(&app, &office, cancel).await;
    assert_eq!(r.status(), 201);
    let cancelled: Value = r.json().await.unwrap();
    assert_eq!(cancelled["retired"].as_array().unwrap().len(), 1);
    assert_eq!(
        in_force(&app).await.len(),
        1,
        "only the composed announcement is left"
    );
    text_of(&app, &format!("/v1/announcements/{id}/cap")).await;

    // An alert already expired is kept but not shown.
    let old = alert("ISK-4", "Alert", "", &[NANAO], "2024-01-02T00:00:00+09:00");
    assert_eq!(relay(&app, &office, old).await.status(), 201);
    assert_eq!(in_force(&app).await.len(), 1);
    app.stop().await;
}

async fn bad_alerts_and_other_municipalities_are_refused(backend: Backend) {
    let app = TestApp::start(backend).await;
    let office = app.token("七尾市災害対策本部", &[NANAO]).await;
    let good = alert("ISK-9", "Alert", "", &[NANAO], &in_an_hour());

    // Naming Wajima: not this office's.
    let wajima = alert("ISK-10", "Alert", "", &[NANAO, WAJIMA], &in_an_hour());
    expect_problem(relay(&app, &office, wajima).await, 403).await;
    for (xml, field) in [
        (
            good.replace("2024-01-01T16:22:00+09:00", "2024-01-01 16:22"),
            "sent",
        ),
        (good.replace("cap:1.2", "cap:1.1"), "alert"),
        (
            format!(
                "<alert xmlns=\"urn:oasis:names:tc:emergency:cap:1.2\"><identifier>X</identifier>\
                 <sender>{SENDER}</sender><sent>2024-01-01T16:22:00+09:00</sent><status>Actual</status>\
                 <msgType>Alert</msgType><scope>Public</scope></alert>"
            ),
            "info",
        ),
        (
            good.replace(
                "<severity>Severe</severity>",
                "<severity>Terrible</severity>",
            ),
            "info[0].severity",
        ),
        (
            good.replace(
                "<valueName>JIS X0402</valueName>",
                "<valueName>ZIP</valueName>",
            ),
            "info[0].area[0].geocode",
        ),
    ] {
        let problem = expect_problem(relay(&app, &office, xml).await, 400).await;
        assert!(
            problem_fields(&problem).contains(&field.to_owned()),
            "{field}: {problem}"
        );
    }
    // Only an office relays; nothing refused was stored.
    let r = app
        .client
        .post(app.url("/v1/alerts"))
        .header("content-type", "application/cap+xml")
        .body(good)
        .send()
        .await
        .unwrap();
    expect_problem(r, 401).await;
    assert!(in_force(&app).await.is_empty());
    app.stop().await;
}
