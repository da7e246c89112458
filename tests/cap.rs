//! CAP 1.2 documents as a whole: hand-written documents read (and refused,
//! each problem naming its field), round trips, and every written document
//! checked by xmllint against tests/cap/cap-1.2.xsd (Atom: well-formedness
//! plus the RFC 4287 elements).

// Only the xmllint runner of the shared test helpers: these tests need no server.
#[path = "common/xml.rs"]
mod xml;

use anpi::cap::{
    Alert, Area, CAP_NS, Category, Certainty, FeedMeta, Info, JIS_CODE, MsgType, NamedValue,
    Reference, ResponseType, Scope, Severity, Status, Urgency, atom, parse_time, read, validate,
    write,
};
use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use xml::xmllint;

/// Validates `xml` against the CAP 1.2 schema.
fn schema_valid(xml: &str) -> Result<(), String> {
    xmllint(Some("cap/cap-1.2.xsd"), xml)
}

// ---------------------------------------------------------------- reading

/// A hand-written document, as another system would send it.
const NANAO: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>anpi-172022-0001</identifier>
  <sender>bousai@city.nanao.example.jp</sender>
  <sent>2024-01-01T16:10:00+09:00</sent>
  <status>Actual</status>
  <msgType>Alert</msgType>
  <scope>Public</scope>
  <info>
    <language>ja-JP</language>
    <category>Safety</category>
    <event>避難指示</event>
    <responseType>Evacuate</responseType>
    <urgency>Immediate</urgency>
    <severity>Extreme</severity>
    <certainty>Observed</certainty>
    <expires>2024-01-02T16:10:00+09:00</expires>
    <senderName>七尾市災害対策本部</senderName>
    <headline>避難指示</headline>
    <area>
      <areaDesc>石川県七尾市</areaDesc>
      <polygon>37.1,136.9 37.1,137.05 37.0,137.05 37.1,136.9</polygon>
      <circle>37.0431,136.9672 5</circle>
      <geocode><valueName>JIS X0402</valueName><value>172022</value></geocode>
    </area>
  </info>
</alert>"#;

fn edited(find: &str, replace: &str) -> String {
    assert!(NANAO.contains(find), "test edit '{find}' does not apply");
    NANAO.replacen(find, replace, 1)
}

/// The fields named by the errors of a refused document.
fn refused(xml: &str) -> Vec<String> {
    let errors = read(xml).expect_err("document should be refused");
    errors.iter().for_each(|e| assert!(!e.message.is_empty()));
    errors.into_iter().map(|e| e.field).collect()
}

#[test]
fn reads_a_hand_written_alert() {
    let alert = read(NANAO).unwrap();
    assert_eq!(alert.sent.to_rfc3339(), "2024-01-01T16:10:00+09:00");
    assert_eq!(alert.sent.offset().local_minus_utc(), 9 * 3600);
    assert_eq!(alert.infos[0].category, [Category::Safety]);
    assert_eq!(alert.geocode_values(JIS_CODE), ["172022"]);
    assert_eq!(alert.title(), "[石川県七尾市] 七尾市災害対策本部: 避難指示");
    schema_valid(NANAO).unwrap();
    let xml = write(&alert);
    schema_valid(&xml).unwrap();
    assert_eq!(read(&xml), Ok(alert));
}

#[test]
fn tolerates_what_it_does_not_model() {
    let xml = edited(
        "<language>ja-JP</language>",
        "<x:note xmlns:x='urn:x'>?</x:note>",
    )
    .replace(
        "<headline>",
        "<resource><resourceDesc>map</resourceDesc></resource><headline>",
    )
    .replace("<status>Actual</status>", "<status> Actual </status>");
    let alert = read(&xml).unwrap();
    assert_eq!(alert.infos[0].language, "en-US", "CAP's default language");
    assert_eq!(alert.status, Status::Actual);
}

#[test]
fn refuses_other_roots_and_namespaces() {
    let cap11 = NANAO.replace("cap:1.2", "cap:1.1");
    let no_ns = NANAO.replace(r#" xmlns="urn:oasis:names:tc:emergency:cap:1.2""#, "");
    for xml in [
        cap11.as_str(),
        no_ns.as_str(),
        "<feed xmlns='urn:oasis:names:tc:emergency:cap:1.2'/>",
    ] {
        let errors = read(xml).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "alert");
        assert!(errors[0].message.contains(CAP_NS), "{:?}", errors[0]);
    }
}

#[test]
fn names_missing_required_fields() {
    assert_eq!(
        refused(&edited("<event>避難指示</event>", "")),
        ["info[0].event"]
    );
    assert_eq!(
        refused(&edited("<areaDesc>石川県七尾市</areaDesc>", "")),
        ["info[0].area[0].areaDesc"]
    );
    assert_eq!(
        refused(&edited("<category>Safety</category>", "")),
        ["info[0].category"]
    );
    let bare = "<alert xmlns='urn:oasis:names:tc:emergency:cap:1.2'/>";
    let fields = ["sent", "identifier", "sender", "status", "msgType", "scope"];
    assert_eq!(refused(bare), fields);
    let errors = read(bare).unwrap_err();
    assert_eq!(errors[0].field, "sent");
    assert_eq!(errors[0].message, "is required but missing");
    let twice = edited(
        "<scope>Public</scope>",
        "<scope>Public</scope><scope>Public</scope>",
    );
    assert_eq!(refused(&twice), ["scope"]);
}

#[test]
fn refuses_dates_without_an_explicit_offset() {
    for bad in [
        "2024-01-01T16:10:00Z",
        "2024-01-01 16:10",
        "2024-01-01T16:10:00.5+09:00",
        "2024-02-30T16:10:00+09:00",
    ] {
        let errors = read(&edited("2024-01-01T16:10:00+09:00", bad)).unwrap_err();
        assert_eq!(errors.len(), 1, "{bad}");
        assert_eq!(errors[0].field, "sent");
        assert!(errors[0].message.contains(bad), "{:?}", errors[0]);
    }
    let expires = edited("2024-01-02T16:10:00+09:00", "2024-01-02T16:10:00Z");
    assert_eq!(refused(&expires), ["info[0].expires"]);
}

#[test]
fn refuses_unknown_words() {
    let errors = read(&edited(">Extreme<", ">Catastrophic<")).unwrap_err();
    assert_eq!(errors[0].field, "info[0].severity");
    assert_eq!(
        errors[0].message,
        "'Catastrophic' is not one of: Extreme, Severe, Moderate, Minor, Unknown"
    );
    assert_eq!(
        refused(&edited(">Evacuate<", ">Run<")),
        ["info[0].responseType[0]"]
    );
    assert_eq!(refused(&edited(">Actual<", ">actual<")), ["status"]);
}

#[test]
fn refuses_bad_shapes() {
    let polygon = "37.1,136.9 37.1,137.05 37.0,137.05 37.1,136.9";
    for bad in [
        "37.1,136.9 37.1,137.05 37.0,137.05 37.0,136.9", // not closed
        "37.1,136.9 37.1,137.05 37.1,136.9",             // 3 points
        "91,136.9 37.1,137.05 37.0,137.05 91,136.9",     // latitude out of range
        "37.1 136.9 37.1 137.05 37.0 137.05 37.1 136.9", // not pairs
        "",
    ] {
        assert_eq!(
            refused(&edited(polygon, bad)),
            ["info[0].area[0].polygon[0]"],
            "{bad}"
        );
    }
    for bad in [
        "37.0431,136.9672",
        "37.0431,136.9672 -5",
        "37.0431,200 5",
        "5km",
    ] {
        let xml = edited("37.0431,136.9672 5", bad);
        assert_eq!(refused(&xml), ["info[0].area[0].circle[0]"], "{bad}");
    }
}

#[test]
fn refuses_dtds_and_entities() {
    // DTD before the root, entity use inside <event>.
    let with_dtd = |dtd: &str, entity: &str| {
        let xml = NANAO.replacen("<alert", &format!("{dtd}\n<alert"), 1);
        xml.replacen("<event>避難指示", &format!("<event>{entity}"), 1)
    };
    // "Billion laughs": each entity expands to ten of the previous one.
    let mut bomb = String::from(r#"<!ENTITY l0 "lol">"#);
    for i in 1..10 {
        let refs = format!("&l{};", i - 1).repeat(10);
        bomb.push_str(&format!(r#"<!ENTITY l{i} "{refs}">"#));
    }
    let cases = [
        with_dtd(r#"<!DOCTYPE alert [<!ENTITY who "七尾市">]>"#, "&who;"),
        with_dtd(&format!("<!DOCTYPE alert [{bomb}]>"), "&l9;"),
        with_dtd(
            r#"<!DOCTYPE alert [<!ENTITY x SYSTEM "file:///etc/passwd">]>"#,
            "&x;",
        ),
        with_dtd(
            r#"<!DOCTYPE alert SYSTEM "http://example.com/cap.dtd">"#,
            "",
        ),
    ];
    for xml in cases {
        let errors = read(&xml).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "document");
        assert!(errors[0].message.contains("DTD"), "{:?}", errors[0]);
    }
    // An undeclared entity without a DTD is plain malformed XML.
    let undeclared = edited("<event>避難指示", "<event>&who;");
    assert_eq!(refused(&undeclared), ["document"]);
}

#[test]
fn reads_and_checks_references() {
    let refs = "<references>a@x,id-1,2024-01-01T16:00:00+09:00\n  \
                b@y,id-2,2024-01-01T07:00:00-00:00</references>";
    let alert = read(&edited("<info>", &format!("{refs}<info>"))).unwrap();
    assert_eq!(alert.references.len(), 2);
    assert_eq!(alert.references[1].identifier, "id-2");
    assert_eq!(alert.references[1].sent, alert.references[0].sent);
    let bad = "<references>a@x,id-1 b@y,id-2,2024-01-01T07:00:00Z</references><info>";
    let errors = read(&edited("<info>", bad)).unwrap_err();
    assert_eq!(errors.len(), 2);
    assert!(errors.iter().all(|e| e.field == "references"));
    assert!(errors[0].message.starts_with("entry 1 'a@x,id-1'"));
}

#[test]
fn validate_catches_models_built_in_code() {
    let mut alert = read(NANAO).unwrap();
    alert.identifier = "anpi 1".into();
    alert.scope = Scope::Private;
    alert.infos[0].language = "日本語".into();
    alert.infos[0].areas[0].ceiling = Some(100.0);
    alert.infos[0].areas[0].altitude = None;
    alert.infos[0].areas[0].polygons.push("1,2 3,4".into());
    let fields: Vec<_> = validate(&alert).into_iter().map(|e| e.field).collect();
    let expected = [
        "identifier",
        "addresses",
        "info[0].language",
        "info[0].area[0].polygon[1]",
        "info[0].area[0].ceiling",
    ];
    assert_eq!(fields, expected);
}

// ---------------------------------------------------------------- writing

fn jst(s: &str) -> DateTime<FixedOffset> {
    parse_time(s).unwrap()
}

fn nanao_area() -> Area {
    Area {
        area_desc: "石川県七尾市".into(),
        polygons: vec!["37.10,136.90 37.10,137.05 37.00,137.05 37.00,136.90 37.10,136.90".into()],
        circles: vec!["37.0431,136.9672 5.5".into()],
        geocodes: vec![NamedValue::new(JIS_CODE, "172022")],
        altitude: Some(0.0),
        ceiling: Some(1500.5),
    }
}

/// An Update to an earlier evacuation order, in Japanese and English, plus
/// a water-supply notice.
fn rich() -> Alert {
    let evacuation = Info {
        language: "ja-JP".into(),
        category: vec![Category::Geo, Category::Safety],
        event: "避難指示".into(),
        response_type: vec![ResponseType::Evacuate, ResponseType::Monitor],
        urgency: Urgency::Immediate,
        severity: Severity::Extreme,
        certainty: Certainty::Observed,
        audience: Some("七尾市内の全住民".into()),
        event_code: vec![NamedValue::new("anpi", "evacuation-order")],
        effective: Some(jst("2024-01-01T16:10:00+09:00")),
        onset: Some(jst("2024-01-01T16:10:00+09:00")),
        expires: Some(jst("2024-01-02T16:10:00+09:00")),
        sender_name: Some("七尾市災害対策本部".into()),
        headline: Some("避難指示（緊急）".into()),
        description: Some(
            "津波のおそれがあります。\n沿岸部の方は直ちに高台へ避難してください。".into(),
        ),
        instruction: Some("直ちに避難 & 安全確保 <高台へ>".into()),
        web: Some("https://anpi.example.jp/alerts/172022-0002".into()),
        contact: Some("七尾市役所 0767-53-1111".into()),
        parameters: vec![NamedValue::new("shelter", "七尾市立小丸山小学校")],
        areas: vec![nanao_area()],
    };
    let english = Info {
        language: "en-US".into(),
        event: "Evacuation order".into(),
        audience: Some("All residents of Nanao".into()),
        sender_name: Some("Nanao City Disaster Response Headquarters".into()),
        headline: Some("Evacuation order (emergency)".into()),
        description: Some("Tsunami expected. Move to high ground now.".into()),
        instruction: Some("Evacuate immediately".into()),
        contact: Some("Nanao City Hall +81-767-53-1111".into()),
        areas: vec![Area {
            area_desc: "Nanao, Ishikawa".into(),
            ..nanao_area()
        }],
        ..evacuation.clone()
    };
    let water = Info {
        language: "ja-JP".into(),
        category: vec![Category::Infra],
        event: "給水のお知らせ".into(),
        response_type: vec![],
        urgency: Urgency::Expected,
        severity: Severity::Minor,
        certainty: Certainty::Likely,
        audience: None,
        event_code: vec![],
        effective: None,
        onset: Some(jst("2024-01-02T09:00:00+09:00")),
        expires: Some(jst("2024-01-05T18:00:00+09:00")),
        sender_name: Some("七尾市上下水道部".into()),
        headline: Some("給水のお知らせ".into()),
        description: Some("七尾市役所駐車場で給水を行います。容器をお持ちください。".into()),
        instruction: None,
        web: None,
        contact: None,
        parameters: vec![],
        areas: vec![Area {
            area_desc: "石川県七尾市 袖ケ江町".into(),
            circles: vec!["37.0431,136.9672 1".into()],
            geocodes: vec![NamedValue::new(JIS_CODE, "172022")],
            ..Area::default()
        }],
    };
    Alert {
        identifier: "anpi-172022-0002".into(),
        sender: "bousai@city.nanao.example.jp".into(),
        sent: jst("2024-01-01T16:40:00+09:00"),
        status: Status::Actual,
        msg_type: MsgType::Update,
        source: Some("七尾市災害対策本部".into()),
        scope: Scope::Public,
        restriction: None,
        addresses: vec![],
        code: vec!["anpi".into(), "JP".into()],
        note: Some("Updates the 16:10 order".into()),
        references: vec![
            Reference {
                sender: "bousai@city.nanao.example.jp".into(),
                identifier: "anpi-172022-0001".into(),
                sent: jst("2024-01-01T16:10:00+09:00"),
            },
            Reference {
                sender: "jma@example.jp".into(),
                identifier: "tsunami-42".into(),
                sent: jst("2024-01-01T07:10:00-00:00"),
            },
        ],
        incidents: vec!["令和6年能登半島地震".into(), "Noto 2024".into()],
        infos: vec![evacuation, english, water],
    }
}

#[test]
fn rich_alert_round_trips() {
    let alert = rich();
    assert_eq!(validate(&alert), vec![]);
    let xml = write(&alert);
    schema_valid(&xml).unwrap();
    assert_eq!(read(&xml), Ok(alert));
}

#[test]
fn rich_alert_is_schema_valid_and_keeps_order_and_offsets() {
    let xml = write(&rich());
    schema_valid(&xml).unwrap();
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
    assert!(xml.contains("<sent>2024-01-01T16:40:00+09:00</sent>"));
    // UTC is spelled -00:00 inside references, as CAP asks.
    assert!(xml.contains("tsunami-42,2024-01-01T07:10:00-00:00"));
    assert!(xml.contains("<incidents>令和6年能登半島地震 \"Noto 2024\"</incidents>"));
    assert!(xml.contains("直ちに避難 &amp; 安全確保 &lt;高台へ&gt;"));
}

#[test]
fn minimal_and_private_alerts_are_schema_valid() {
    let mut cancel = rich();
    cancel.msg_type = MsgType::Cancel;
    cancel.infos.clear();
    cancel.source = None;
    cancel.note = None;
    cancel.incidents.clear();
    cancel.code.clear();
    cancel.sent = Utc
        .with_ymd_and_hms(2024, 1, 1, 8, 0, 0)
        .unwrap()
        .fixed_offset();
    let xml = write(&cancel);
    schema_valid(&xml).unwrap();
    assert!(xml.contains("<sent>2024-01-01T08:00:00-00:00</sent>"));
    assert_eq!(read(&xml), Ok(cancel.clone()));

    let mut private = cancel;
    private.scope = Scope::Private;
    private.addresses = vec!["ops@anpi.example.jp".into(), "Nanao Fire Dept".into()];
    let xml = write(&private);
    schema_valid(&xml).unwrap();
    assert!(xml.contains("<addresses>ops@anpi.example.jp \"Nanao Fire Dept\"</addresses>"));
    assert_eq!(read(&xml), Ok(private));
}

#[test]
fn control_characters_never_break_the_output() {
    let mut alert = rich();
    alert.infos[0].description = Some("bell\u{7} tab\t cr\r\n end\u{FFFF}".into());
    let xml = write(&alert);
    schema_valid(&xml).unwrap();
    let back = read(&xml).unwrap();
    // \r survives because quick-xml writes it as a character reference.
    assert_eq!(
        back.infos[0].description.as_deref(),
        Some("bell tab\t cr\r\n end")
    );
}

/// `good` with sender written before identifier.
fn sender_before_identifier(good: &str) -> String {
    let id = "<identifier>anpi-172022-0002</identifier>";
    let sender = "<sender>bousai@city.nanao.example.jp</sender>";
    let swapped = good.replacen(sender, id, 1).replacen(id, sender, 1);
    assert!(swapped.find(sender) < swapped.find(id));
    swapped
}

#[test]
fn schema_rejects_what_cap_forbids() {
    let good = write(&rich());
    schema_valid(&good).unwrap();
    let cases = [
        ("elements out of order", sender_before_identifier(&good)),
        (
            "Z date",
            good.replacen("16:40:00+09:00</sent>", "07:40:00Z</sent>", 1),
        ),
        (
            "space date",
            good.replacen("2024-01-01T16:40:00+09:00<", "2024-01-01 16:40<", 1),
        ),
        (
            "fractional seconds",
            good.replacen("16:40:00+09:00<", "16:40:00.5+09:00<", 1),
        ),
        (
            "unknown severity",
            good.replacen(">Extreme<", ">Catastrophic<", 1),
        ),
        ("lower-case word", good.replacen(">Actual<", ">actual<", 1)),
        (
            "3-point polygon",
            good.replacen(
                "37.10,137.05 37.00,137.05 37.00,136.90 ",
                "37.00,137.05 ",
                1,
            ),
        ),
        (
            "circle without radius",
            good.replacen("37.0431,136.9672 5.5", "37.0431,136.9672", 1),
        ),
        (
            "identifier with space",
            good.replacen("anpi-172022-0002<", "anpi 172022<", 1),
        ),
        (
            "missing event",
            good.replacen("<event>避難指示</event>", "", 1),
        ),
        (
            "ceiling alone",
            good.replacen("<altitude>0</altitude>", "", 1),
        ),
        (
            "bad reference",
            good.replacen(",tsunami-42,", ",tsunami-42;", 1),
        ),
    ];
    for (what, xml) in cases {
        assert_ne!(xml, good, "{what}: the test edit did not apply");
        assert!(schema_valid(&xml).is_err(), "schema accepted {what}");
        // read() checks everything but element order, which it tolerates.
        if what != "elements out of order" {
            assert!(read(&xml).is_err(), "read accepted {what}");
        }
    }
    assert_eq!(read(&sender_before_identifier(&good)), Ok(rich()));
}

#[test]
fn schema_and_reader_accept_resource_and_signature() {
    let xml = write(&rich())
        .replacen(
            "<area>",
            "<resource><resourceDesc>map</resourceDesc><mimeType>image/png</mimeType>\
             <size>1024</size><uri>https://anpi.example.jp/map.png</uri></resource><area>",
            1,
        )
        .replacen(
            "</alert>",
            "<Signature xmlns=\"http://www.w3.org/2000/09/xmldsig#\"/></alert>",
            1,
        );
    schema_valid(&xml).unwrap();
    assert_eq!(read(&xml), Ok(rich()), "resource and signature are skipped");
}

fn feed_meta(url: &dyn Fn(&Alert) -> String) -> FeedMeta<'_> {
    FeedMeta {
        id: "urn:uuid:7f1b3c1e-0f5a-4d8e-9a57-2b0e6c9d1a00",
        title: "anpi 公式発表",
        author: "anpi",
        self_url: "https://anpi.example.jp/feeds/official.atom",
        updated: jst("2024-01-01T16:45:00+09:00"),
        alert_url: url,
    }
}

const ATOM_NS: &str = "http://www.w3.org/2005/Atom";

/// The first Atom child element called `name`.
fn child<'a, 'i>(n: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    let is_atom = |c: &roxmltree::Node| c.tag_name().namespace() == Some(ATOM_NS);
    n.children()
        .find(|c| c.tag_name().name() == name && is_atom(c))
}

fn text(n: roxmltree::Node, name: &str) -> String {
    child(n, name)
        .and_then(|c| c.text())
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn atom_feed_is_well_formed_and_has_rfc4287_elements() {
    let url = |a: &Alert| {
        format!(
            "https://anpi.example.jp/cap/{}.xml?lang=ja&v=1",
            a.identifier
        )
    };
    let mut bare = rich();
    bare.identifier = "anpi-172022-0003".into();
    bare.infos.clear();
    let feed = atom(&feed_meta(&url), &[rich(), bare]);
    xmllint(None, &feed).unwrap();

    let doc = roxmltree::Document::parse(&feed).unwrap();
    let root = doc.root_element();
    assert_eq!(root.tag_name().namespace(), Some(ATOM_NS));
    assert_eq!(root.tag_name().name(), "feed");
    for name in ["id", "title", "updated"] {
        assert!(!text(root, name).is_empty(), "feed needs {name}");
    }
    assert_eq!(text(root, "updated"), "2024-01-01T16:45:00+09:00");
    assert_eq!(text(child(root, "author").unwrap(), "name"), "anpi");
    let self_link = child(root, "link").unwrap();
    assert_eq!(self_link.attribute("rel"), Some("self"));

    let entries: Vec<_> = root
        .children()
        .filter(|c| c.tag_name().name() == "entry")
        .collect();
    assert_eq!(entries.len(), 2);
    let e = entries[0];
    assert_eq!(
        text(e, "id"),
        "https://anpi.example.jp/cap/anpi-172022-0002.xml?lang=ja&v=1"
    );
    assert_eq!(
        text(e, "title"),
        "[石川県七尾市] 七尾市災害対策本部: 避難指示（緊急）"
    );
    assert_eq!(text(e, "updated"), "2024-01-01T16:40:00+09:00");
    assert_eq!(
        text(child(e, "author").unwrap(), "name"),
        "七尾市災害対策本部"
    );
    assert!(text(e, "summary").starts_with("津波のおそれがあります。"));
    assert_eq!(
        e.attribute(("http://www.w3.org/XML/1998/namespace", "lang")),
        Some("ja-JP")
    );
    let link = child(e, "link").unwrap();
    assert_eq!(link.attribute("rel"), Some("alternate"));
    assert_eq!(link.attribute("type"), Some("application/cap+xml"));
    assert_eq!(link.attribute("href"), Some(text(e, "id").as_str()));
    let terms: Vec<_> = e.children().filter_map(|c| c.attribute("term")).collect();
    assert_eq!(terms, ["Geo", "Safety", "Infra"]);
    // An alert without info still has id, title, updated and an author.
    let c = entries[1];
    assert_eq!(
        text(c, "title"),
        "Update anpi-172022-0003 (bousai@city.nanao.example.jp)"
    );
    assert_eq!(
        text(child(c, "author").unwrap(), "name"),
        "bousai@city.nanao.example.jp"
    );
    assert_eq!(text(c, "summary"), "Updates the 16:10 order");
}

#[test]
fn json_uses_snake_case_and_round_trips() {
    let alert = rich();
    let json = serde_json::to_value(&alert).unwrap();
    assert_eq!(json["status"], "actual");
    assert_eq!(json["msg_type"], "update");
    assert_eq!(json["sent"], "2024-01-01T16:40:00+09:00");
    assert_eq!(json["infos"][0]["response_type"][0], "evacuate");
    assert_eq!(
        json["infos"][0]["areas"][0]["geocodes"][0]["value_name"],
        "JIS X0402"
    );
    assert_eq!(serde_json::to_value(Category::Cbrne).unwrap(), "cbrne");
    assert_eq!(
        serde_json::to_value(ResponseType::AllClear).unwrap(),
        "all_clear"
    );
    let back: Alert = serde_json::from_value(json).unwrap();
    assert_eq!(back, alert);
}

#[test]
fn helpers_answer_where_and_when() {
    let alert = rich();
    assert_eq!(alert.geocode_values(JIS_CODE), ["172022"]);
    assert!(alert.geocode_values("SAME").is_empty());
    assert!(!alert.is_expired(&jst("2024-01-05T17:59:59+09:00")));
    // Same instant written in UTC: expiry compares instants, not wall clocks.
    assert!(alert.is_expired(&Utc.with_ymd_and_hms(2024, 1, 5, 9, 0, 0).unwrap()));
    let mut open_ended = alert.clone();
    open_ended.infos[2].expires = None;
    assert!(!open_ended.is_expired(&Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap()));
}
