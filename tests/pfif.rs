//! PFIF 1.4 interchange: an incident's people and check-ins go out as a file
//! that validates against the schema, come back in (into another incident,
//! or from Person Finder) and can then be looked up; bad files say which
//! record and field and store nothing.

mod common;

use common::ws::Ws;
use common::{Backend, TestApp, expect_problem, problem_fields};
use serde_json::{Value, json};

on_both_backends!(
    an_export_validates_and_imports_back_the_same,
    a_person_finder_file_can_be_looked_up,
    bad_files_say_which_record_and_store_nothing
);

const NANAO: &str = "172022";

/// Validates `xml` against the PFIF 1.4 schema with xmllint (libxml2).
fn assert_valid_pfif(xml: &str) {
    if let Err(why) = common::xml::xmllint(Some("pfif/pfif-1.4.xsd"), xml) {
        panic!("not valid PFIF 1.4: {why}\n{xml}");
    }
}

async fn export(app: &TestApp, token: &str, incident: &str) -> String {
    let r = app
        .get_as(token, &format!("/v1/incidents/{incident}/pfif"))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "application/xml; charset=utf-8"
    );
    r.text().await.unwrap()
}

async fn import(app: &TestApp, token: &str, incident: &str, xml: &str) -> reqwest::Response {
    app.upload_as(
        token,
        &format!("/v1/incidents/{incident}/pfif"),
        "application/xml",
        xml.to_owned(),
    )
    .await
}

async fn look_up(app: &TestApp, incident: &str, name: &str) -> Vec<Value> {
    let (status, body) = app
        .get_json(&format!(
            "/v1/incidents/{incident}/people?name={}",
            urlencode(name)
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    body["people"].as_array().cloned().unwrap_or_default()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The records of a document, comparable across repositories: ids, names,
/// and each note's id, author, status and text.
/// (note id, author, status, text).
type Note = (String, String, String, String);

fn records(xml: &str) -> Vec<(String, String, Vec<Note>)> {
    let doc = anpi::pfif::read(xml).expect("readable PFIF");
    let mut people: Vec<_> = doc
        .persons
        .into_iter()
        .map(|p| {
            let mut notes: Vec<_> = p
                .notes
                .into_iter()
                .map(|n| {
                    (
                        n.note_record_id,
                        n.author_name,
                        n.status.map(|s| s.as_str().to_owned()).unwrap_or_default(),
                        n.text,
                    )
                })
                .collect();
            notes.sort();
            (p.person_record_id, p.full_name, notes)
        })
        .collect();
    people.sort();
    people
}

async fn an_export_validates_and_imports_back_the_same(backend: Backend) {
    let app = TestApp::start(backend).await;
    let office = app.token("Nanao HQ", &[NANAO]).await;
    let first = app.open_nanao_incident(&office).await;
    let r = app
        .client
        .post(app.url(&format!("/v1/incidents/{first}/checkins")))
        .json(&json!({
            "phone": "090-1234-5678", "name": "山田 太郎",
            "statuses": ["safe", "at_shelter"], "shelter_id": "CC0000000518",
            "message": "山王小学校にいます <無事>",
            "household": [{"name": "山田 花子", "statuses": ["injured", "at_home"]}]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    // Offices of other municipalities, and residents, get no one's data.
    let elsewhere = app.token("Wajima HQ", &["172049"]).await;
    let r = app
        .get_as(&elsewhere, &format!("/v1/incidents/{first}/pfif"))
        .await;
    expect_problem(r, 403).await;
    let r = app
        .client
        .get(app.url(&format!("/v1/incidents/{first}/pfif")))
        .send()
        .await
        .unwrap();
    expect_problem(r, 401).await;

    let xml = export(&app, &office, &first).await;
    assert_valid_pfif(&xml);
    assert!(!xml.contains("5678"), "no phone number goes out: {xml}");
    let exported = records(&xml);
    assert_eq!(exported.len(), 2);
    let taro = exported.iter().find(|p| p.1 == "山田 太郎").unwrap();
    assert!(taro.0.starts_with("anpi.local/person."));
    let (_, author, status, text) = &taro.2[0];
    assert_eq!(
        (author.as_str(), status.as_str()),
        ("山田 太郎", "is_note_author")
    );
    assert!(
        text.contains("safe, at_shelter") && text.contains("<無事>"),
        "{text}"
    );
    let hanako = exported.iter().find(|p| p.1 == "山田 花子").unwrap();
    let (_, author, status, _) = &hanako.2[0];
    assert_eq!(
        (author.as_str(), status.as_str()),
        ("山田 太郎", "believed_alive"),
        "a member is reported by whoever checked the household in"
    );

    // Into another incident: the same records, looked up by name there.
    let second = app.open_nanao_incident(&office).await;
    let r = import(&app, &office, &second, &xml).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"persons_added": 2, "persons_known": 0, "notes_added": 2, "notes_known": 0})
    );
    let again = export(&app, &office, &second).await;
    assert_valid_pfif(&again);
    assert_eq!(records(&again), exported, "the same records, ids kept");
    let found = look_up(&app, &second, "山田太郎").await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["phone_last4"], Value::Null);
    assert_eq!(found[0]["checkins"][0]["pfif_status"], "is_note_author");
    assert_eq!(found[0]["checkins"][0]["statuses"], json!([]));

    // The same file again adds nothing.
    let r = import(&app, &office, &second, &xml).await;
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"persons_added": 0, "persons_known": 2, "notes_added": 0, "notes_known": 2})
    );
    assert_eq!(records(&export(&app, &office, &second).await), exported);

    // Pages: one person each, the next one linked.
    let r = app
        .get_as(
            &office,
            &format!("/v1/incidents/{first}/pfif?max_results=1"),
        )
        .await;
    let next = r.headers()["link"].to_str().unwrap().to_owned();
    assert_eq!(
        next,
        format!("</v1/incidents/{first}/pfif?skip=1&max_results=1>; rel=\"next\"")
    );
    let page1 = records(&r.text().await.unwrap());
    let r = app
        .get_as(
            &office,
            &format!("/v1/incidents/{first}/pfif?skip=1&max_results=1"),
        )
        .await;
    let page2 = records(&r.text().await.unwrap());
    let mut both = [page1, page2].concat();
    both.sort();
    assert_eq!(both, exported);
    let r = app
        .get_as(
            &office,
            &format!("/v1/incidents/{first}/pfif?max_results=lots"),
        )
        .await;
    assert_eq!(
        problem_fields(&expect_problem(r, 400).await),
        ["max_results"]
    );
    app.stop().await;
}

async fn a_person_finder_file_can_be_looked_up(backend: Backend) {
    let app = TestApp::start(backend).await;
    let office = app.token("Nanao HQ", &[NANAO]).await;
    let id = app.open_nanao_incident(&office).await;
    let sample =
        std::fs::read_to_string(common::xml::schema("pfif/person-finder-sample.xml")).unwrap();
    assert_valid_pfif(&sample);

    // A daughter looked for her father before anyone had news of him here.
    let (status, asked) = app
        .get_json(&format!(
            "/v1/incidents/{id}/people?name={}",
            urlencode("能登一郎")
        ))
        .await;
    assert_eq!(
        (status, asked["people"].as_array().unwrap().len()),
        (200, 0)
    );
    let mut daughter = Ws::connect(&app.base).await;
    daughter
        .subscribe(
            json!({"channels": [format!("person:{}", asked["watch_token"].as_str().unwrap())]}),
        )
        .await;
    daughter.expect("snapshot").await;

    let r = import(&app, &office, &id, &sample).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"persons_added": 2, "persons_known": 0, "notes_added": 2, "notes_known": 0})
    );
    // Found as a family would type the name; both notes, newest first.
    let found = look_up(&app, &id, "能登 一郎").await;
    assert_eq!(found.len(), 1, "{found:?}");
    let notes = found[0]["checkins"].as_array().unwrap();
    assert_eq!(notes.len(), 2);
    assert_eq!(notes[0]["pfif_status"], "believed_alive");
    assert_eq!(notes[0]["author_name"], "七尾市 避難所担当");
    assert_eq!(notes[0]["recorded_at"], "2024-01-02T03:25:00Z");
    assert_eq!(notes[1]["pfif_status"], "information_sought");
    assert_eq!(look_up(&app, &id, "maria santos").await.len(), 1);

    // She hears of both notes the import brought.
    let mut heard = Vec::new();
    for _ in 0..2 {
        let event = daughter.expect("event").await;
        assert_eq!(event["kind"], "checkin");
        assert_eq!(event["data"]["name"], "能登 一郎");
        heard.push(event["data"]["pfif_status"].as_str().unwrap().to_owned());
    }
    heard.sort();
    assert_eq!(heard, ["believed_alive", "information_sought"]);

    // And out again with the ids it came with.
    let xml = export(&app, &office, &id).await;
    assert_valid_pfif(&xml);
    let ids: Vec<String> = records(&xml).into_iter().map(|p| p.0).collect();
    assert_eq!(
        ids,
        [
            "japan.personfinder.google.org/person.4040",
            "japan.personfinder.google.org/person.4041"
        ]
    );
    app.stop().await;
}

async fn bad_files_say_which_record_and_store_nothing(backend: Backend) {
    let app = TestApp::start(backend).await;
    let office = app.token("Nanao HQ", &[NANAO]).await;
    let id = app.open_nanao_incident(&office).await;

    let r = import(&app, &office, &id, "名前,電話\n").await;
    assert_eq!(problem_fields(&expect_problem(r, 400).await), ["body"]);

    let missing_name = r#"<pfif xmlns="http://zesty.ca/pfif/1.4">
        <person><person_record_id>pf.example/p.1</person_record_id><full_name>石川 一</full_name></person>
        <person><person_record_id>pf.example/p.2</person_record_id></person>
      </pfif>"#;
    let r = import(&app, &office, &id, missing_name).await;
    assert_eq!(
        problem_fields(&expect_problem(r, 400).await),
        ["person[1].full_name"]
    );

    // A note about someone nobody has heard of refuses the whole file.
    let stranger = r#"<pfif xmlns="http://zesty.ca/pfif/1.4">
        <person><person_record_id>pf.example/p.1</person_record_id><full_name>石川 一</full_name></person>
        <note><note_record_id>pf.example/n.1</note_record_id><person_record_id>pf.example/p.9</person_record_id>
          <author_name>誰か</author_name><source_date>2024-01-02T00:00:00Z</source_date><text>見かけた</text></note>
      </pfif>"#;
    let r = import(&app, &office, &id, stranger).await;
    let problem = expect_problem(r, 400).await;
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("pf.example/p.9"),
        "{problem}"
    );
    assert!(
        look_up(&app, &id, "石川 一").await.is_empty(),
        "nothing of a refused file is stored"
    );
    app.stop().await;
}
