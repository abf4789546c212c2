//! The EPCIS 2.0 REST binding as a stock HTTP client drives it: a document imported, then read
//! back over `serve --http` page by page, by each query parameter (checked against the
//! document's own events, filtered here), by resource paths, and with bad parameters and
//! credentials answered as RFC 7807 problem documents.

mod common;

use std::path::{Path, PathBuf};

use common::{json_answer, lotline, stderr};
use lotline_epcis::hash::document_hashes;
use lotline_server::ServeConfig;
use lotline_testkit::{TestServer, url_encode};
use serde_json::{Value, json};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/epcis")
        .join(name)
}

/// A server with the HTTP door, and `cocoa_chain.jsonld` imported over gRPC.
async fn server_with_chain() -> TestServer {
    let server = empty_server().await;
    let url = server.url();
    let file = fixture("cocoa_chain.jsonld");
    let out = tokio::task::spawn_blocking(move || {
        lotline(&["import", "--server", &url, file.to_str().unwrap()])
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    server
}

/// `OPTIONS url`.
async fn options(url: &str) -> reqwest::Response {
    reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, url)
        .send()
        .await
        .unwrap()
}

/// GS1's reference hashes of `cocoa_chain.jsonld`, one per event, sorted.
fn reference_hashes() -> Vec<String> {
    let mut reference: Vec<String> = std::fs::read_to_string(fixture("cocoa_chain.hashes"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    reference.sort();
    reference
}

/// GETs `url`: the status, the body as text, and the `Link` header.
async fn get(url: &str) -> (u16, String, Option<String>) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    let link = response
        .headers()
        .get("link")
        .map(|l| l.to_str().unwrap().to_string());
    (status, response.text().await.unwrap(), link)
}

/// The URL of a `Link: <…>; rel="next"` header.
fn next_url(base: &str, link: &str) -> String {
    let target = link
        .strip_prefix('<')
        .and_then(|l| l.split_once('>'))
        .map(|(t, rest)| {
            assert!(rest.contains("rel=\"next\""), "{link}");
            t
        })
        .unwrap_or_else(|| panic!("not a link: {link}"));
    format!("{base}{target}")
}

/// Every event a query gives, following `Link` to the end: the events, the CBV hashes of each
/// page's events, and the number of pages.
async fn all_pages(base: &str, path_and_query: &str) -> (Vec<Value>, Vec<String>, usize) {
    let mut url = format!("{base}{path_and_query}");
    let mut events = Vec::new();
    let mut hashes = Vec::new();
    let mut pages = 0;
    loop {
        let (status, body, link) = get(&url).await;
        assert_eq!(status, 200, "{url}: {body}");
        pages += 1;
        let doc: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(doc["type"], "EPCISQueryDocument", "{body}");
        assert_eq!(doc["schemaVersion"], "2.0");
        let list = doc["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
            .as_array()
            .unwrap_or_else(|| panic!("no eventList: {body}"))
            .clone();
        for h in document_hashes(&body).unwrap() {
            hashes.push(h.unwrap().hash);
        }
        events.extend(list);
        match link {
            Some(link) => url = next_url(base, &link),
            None => return (events, hashes, pages),
        }
    }
}

/// Which events a query should select, decided from the events' own fields.
type Keep = Box<dyn Fn(&Value) -> bool>;

fn ids(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["eventID"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_page_by_page_with_the_hashes_of_the_capture() {
    let server = server_with_chain().await;
    let base = server.http_url();

    // Discovery.
    let options = options(&format!("{base}/")).await;
    assert_eq!(options.status().as_u16(), 204);
    assert_eq!(options.headers()["gs1-epcis-version"], "2.0.0");
    assert!(options.headers()["allow"].to_str().unwrap().contains("GET"));

    // Every event once, page by page, with the hashes GS1's reference computed at capture.
    let (all, hashes, pages) = all_pages(&base, "/events?perPage=3").await;
    let reference = reference_hashes();
    let mut got = hashes.clone();
    got.sort();
    assert_eq!(
        got, reference,
        "one result per captured event, with its hash"
    );
    assert!(pages >= reference.len() / 3, "{pages} pages");
    let all_ids = ids(&all);
    // Pages hold each event once: the same events, in the same order, as one page of all.
    let (whole, _, one) = all_pages(&base, "/events?perPage=1000").await;
    assert_eq!(one, 1);
    assert_eq!(whole, all);
    for e in &all {
        assert!(e["recordTime"].as_str().is_some(), "{e}");
    }

    // Each parameter selects what the events themselves say.
    let word = |v: &Value| {
        v.as_str()
            .map(|s| s.rsplit([':', '-']).next().unwrap_or(s).to_string())
    };
    let first = &all[0];
    let step = word(&first["bizStep"]).expect("the first event has a bizStep");
    let event_type = first["type"].as_str().unwrap().to_string();
    let time = first["eventTime"].as_str().unwrap().to_string();
    let cases: Vec<(String, Keep)> = vec![
        (
            format!("eventType={event_type}"),
            Box::new({
                let t = event_type.clone();
                move |e: &Value| e["type"] == t.as_str()
            }),
        ),
        (
            format!("EQ_bizStep={step}"),
            Box::new({
                let s = step.clone();
                move |e: &Value| word(&e["bizStep"]).as_deref() == Some(s.as_str())
            }),
        ),
        (
            "EQ_action=ADD".to_string(),
            Box::new(|e: &Value| e["action"] == "ADD"),
        ),
        (
            format!("GE_eventTime={}", url_encode(&time)),
            Box::new({
                let t = chrono::DateTime::parse_from_rfc3339(&time).unwrap();
                move |e: &Value| {
                    chrono::DateTime::parse_from_rfc3339(e["eventTime"].as_str().unwrap()).unwrap()
                        >= t
                }
            }),
        ),
        (
            format!("EQ_eventID={}", url_encode(&all_ids[1])),
            Box::new({
                let id = all_ids[1].clone();
                move |e: &Value| e["eventID"] == id.as_str()
            }),
        ),
    ];
    for (query, keep) in &cases {
        let (got, _, _) = all_pages(&base, &format!("/events?perPage=5&{query}")).await;
        let want: Vec<String> = ids(&all.iter().filter(|e| keep(e)).cloned().collect::<Vec<_>>());
        assert!(!want.is_empty(), "{query} selects something");
        assert_eq!(ids(&got), want, "{query}");
    }

    // A lot by any EPC class parameter, and by its resource path, in either form.
    let lot_urn = all
        .iter()
        .flat_map(|e| e["quantityList"].as_array().cloned().unwrap_or_default())
        .filter_map(|q| q["epcClass"].as_str().map(str::to_string))
        .find(|c| c.starts_with("urn:epc:class:lgtin:"))
        .expect("the chain names a lot as an LGTIN URN");
    let canonical = lotline_epcis::canonical_lot_id(&lot_urn).unwrap();
    let names_lot = |e: &Value| {
        [
            "quantityList",
            "inputQuantityList",
            "outputQuantityList",
            "childQuantityList",
        ]
        .iter()
        .flat_map(|f| e[*f].as_array().cloned().unwrap_or_default())
        .filter_map(|q| q["epcClass"].as_str().map(str::to_string))
        .any(|c| lotline_epcis::canonical_lot_id(&c).ok().as_deref() == Some(&canonical))
    };
    let want = ids(&all
        .iter()
        .filter(|e| names_lot(e))
        .cloned()
        .collect::<Vec<_>>());
    assert!(want.len() >= 2, "the lot is made and used: {want:?}");
    for path in [
        format!("/events?MATCH_anyEPCClass={}", url_encode(&lot_urn)),
        format!("/events?MATCH_anyEPCClass={}", url_encode(&canonical)),
        format!("/epcs/{}/events", url_encode(&canonical)),
    ] {
        let (got, _, _) = all_pages(&base, &path).await;
        assert_eq!(ids(&got), want, "{path}");
    }

    // One event by its id; event types as resources.
    let (status, body, _) = get(&format!("{base}/events/{}", url_encode(&all_ids[0]))).await;
    assert_eq!(status, 200, "{body}");
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        doc["epcisBody"]["queryResults"]["resultsBody"]["eventList"][0]["eventID"],
        all_ids[0].as_str()
    );
    let (typed, _, _) = all_pages(&base, &format!("/eventTypes/{event_type}/events")).await;
    let (queried, _, _) = all_pages(&base, &format!("/events?eventType={event_type}")).await;
    assert_eq!(ids(&typed), ids(&queried));
    let (status, body, _) = get(&format!("{base}/eventTypes")).await;
    assert_eq!(status, 200);
    assert!(body.contains("TransformationEvent"), "{body}");

    // Ordered, newest first, limited.
    let (latest, _, _) = all_pages(
        &base,
        "/events?orderBy=eventTime&orderDirection=DESC&eventCountLimit=2",
    )
    .await;
    let mut times: Vec<_> = all
        .iter()
        .map(|e| chrono::DateTime::parse_from_rfc3339(e["eventTime"].as_str().unwrap()).unwrap())
        .collect();
    times.sort();
    times.reverse();
    let got: Vec<_> = latest
        .iter()
        .map(|e| chrono::DateTime::parse_from_rfc3339(e["eventTime"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(got, times[..2].to_vec());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mistakes_are_problem_documents_never_server_errors() {
    let server = server_with_chain().await;
    let base = server.http_url();
    for (path, status, exception) in [
        ("/events?eventType=Thing", 400, "QueryParameterException"),
        (
            "/events?GE_eventTime=yesterday",
            400,
            "QueryParameterException",
        ),
        ("/events?EQ_action=MOVE", 400, "QueryParameterException"),
        ("/events?perPage=0", 400, "QueryParameterException"),
        ("/events?perPage=abc", 400, "QueryParameterException"),
        (
            "/events?nextPageToken=garbage",
            400,
            "QueryParameterException",
        ),
        ("/events?eventCountLimit=3", 400, "QueryParameterException"),
        (
            "/events?MATCH_epc=urn:epc:id:sgtin:1.2",
            400,
            "QueryParameterException",
        ),
        ("/events?colour=red", 400, "QueryParameterException"),
        ("/events/urn:uuid:0000", 404, "NoSuchResourceException"),
        ("/eventTypes/Thing/events", 404, "NoSuchResourceException"),
        ("/nowhere", 404, "NoSuchResourceException"),
    ] {
        let response = reqwest::get(format!("{base}{path}")).await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
        let problem: Value = response.json().await.unwrap();
        assert_eq!(
            problem["type"],
            format!("epcisException:{exception}"),
            "{path}"
        );
        assert_eq!(problem["status"], status, "{path}");
        assert!(!problem["detail"].as_str().unwrap().is_empty(), "{path}");
    }

    // A token continues its own query only.
    let (_, _, link) = get(&format!("{base}/events?perPage=2")).await;
    let next = next_url(&base, &link.expect("more than one page"));
    let (status, _, _) = get(&format!("{next}&eventType=ObjectEvent")).await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rest_binding_takes_the_same_credentials_as_grpc() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServeConfig::new(dir.path());
    config.http = Some("127.0.0.1:0".parse().unwrap());
    config.auth = Some(Default::default());
    let server = TestServer::start_with(config).await;
    let base = server.http_url();

    let anonymous = reqwest::get(format!("{base}/events")).await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    assert!(anonymous.headers().contains_key("www-authenticate"));
    let problem: Value = anonymous.json().await.unwrap();
    assert_eq!(problem["type"], "epcisException:SecurityException");

    let client = reqwest::Client::new();
    let forged = client
        .get(format!("{base}/events"))
        .bearer_auth("not.a.token")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 401);

    // A token the issuer signed reads.
    let key = dir.path().join(lotline_server::DEFAULT_ISSUER_KEY_FILE);
    let issuer = lotline_server::load_issuer(&key).unwrap();
    let token = issuer
        .issue(
            &lotline_service::tokens::TokenRequest {
                org: "coop-a".into(),
                roles: vec![lotline_service::Role::Member],
                lifetime_secs: 3600,
                ..Default::default()
            },
            chrono::Utc::now(),
        )
        .unwrap()
        .token;
    let ok = client
        .get(format!("{base}/events"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    // A member reads its own events in full and others' in the public view.
    assert_eq!(ok.headers()["lotline-view"], "public");
}

/// A server with the HTTP door and nothing recorded.
async fn empty_server() -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServeConfig::new(dir.path());
    config.http = Some("127.0.0.1:0".parse().unwrap());
    TestServer::start_with(config).await.owning(dir)
}

/// POSTs the fixture `file` to `/capture` with `behaviour`: the finished job.
async fn capture(base: &str, file: &str, behaviour: Option<&str>) -> Value {
    lotline_testkit::rest::capture(base, std::fs::read(fixture(file)).unwrap(), behaviour).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_captured_document_is_a_job_whose_events_are_then_queried() {
    let server = empty_server().await;
    let base = server.http_url();
    let client = reqwest::Client::new();

    let options = options(&format!("{base}/capture")).await;
    assert_eq!(options.status().as_u16(), 204);
    assert!(
        options.headers()["allow"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    assert!(options.headers().contains_key("gs1-epcis-capture-limit"));
    assert!(
        options
            .headers()
            .contains_key("gs1-epcis-capture-file-size-limit")
    );

    // The whole chain, master data first: every event with the capture's reference hash.
    let job = capture(&base, "cocoa_chain.jsonld", None).await;
    assert_eq!(job["success"], true, "{job}");
    assert_eq!(job["captureErrorBehaviour"], "rollback");
    assert_eq!(job["errors"], Value::Array(Vec::new()));
    let (all, hashes, _) = all_pages(&base, "/events?perPage=50").await;
    let reference = reference_hashes();
    let mut got = hashes;
    got.sort();
    assert_eq!(got, reference);
    // The job is listed; capturing the same document again adds nothing.
    let jobs: Value = client
        .get(format!("{base}/capture"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        jobs.as_array()
            .unwrap()
            .iter()
            .any(|j| j["captureID"] == job["captureID"]),
        "{jobs}"
    );
    let again = capture(&base, "cocoa_chain.jsonld", Some("proceed")).await;
    assert_eq!(again["success"], true, "{again}");
    let (after, _, _) = all_pages(&base, "/events?perPage=50").await;
    assert_eq!(after.len(), all.len());

    // What is not a document is refused before any job.
    for (content_type, body, status) in [
        (
            "application/json",
            "{\"type\": \"EPCISDocument\", \"epcisBody\": ",
            400,
        ),
        ("application/json", "[1, 2]", 400),
        ("text/plain", "{}", 415),
    ] {
        let response = client
            .post(format!("{base}/capture"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{body}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["type"], "epcisException:ValidationException");
    }
    let response = client
        .post(format!("{base}/capture"))
        .header("content-type", "application/json")
        .header("GS1-Capture-Error-Behaviour", "sometimes")
        .body(std::fs::read(fixture("cocoa_chain.jsonld")).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_captures_nothing_of_a_bad_document_and_proceed_the_good_events() {
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("errors.expected.json")).unwrap())
            .unwrap();
    let bad: Vec<&String> = expected
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "valid")
        .collect();
    let valid = expected["valid"].as_array().unwrap().len();

    // rollback (the default): every bad event named, nothing recorded.
    let server = empty_server().await;
    let base = server.http_url();
    let job = capture(&base, "errors.jsonld", None).await;
    assert_eq!(job["success"], false, "{job}");
    let errors = job["errors"].as_array().unwrap();
    for index in &bad {
        let word = expected[index.as_str()].as_str().unwrap().to_lowercase();
        assert!(
            errors.iter().any(|e| {
                let detail = e["detail"].as_str().unwrap().to_lowercase();
                detail.contains(&format!("#{index}")) && detail.contains(&word)
            }),
            "event #{index} ({word}) is not among the errors: {errors:?}"
        );
    }
    let (events, _, _) = all_pages(&base, "/events").await;
    assert!(events.is_empty(), "rollback recorded {events:?}");

    // proceed: the good events are recorded, the bad ones are the errors.
    let server = empty_server().await;
    let base = server.http_url();
    let job = capture(&base, "errors.jsonld", Some("proceed")).await;
    assert_eq!(job["success"], false, "{job}");
    assert_eq!(job["captureErrorBehaviour"], "proceed");
    assert_eq!(job["errors"].as_array().unwrap().len(), bad.len(), "{job}");
    let (events, _, _) = all_pages(&base, "/events").await;
    assert!(events.len() >= valid, "{} events recorded", events.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lotlines_answers_over_http_are_the_documents_of_json() {
    let server = server_with_chain().await;
    let (base, url) = (server.http_url(), server.url());
    let product = "https://id.gs1.org/01/06181234111114/10/LQ-251118";
    let harvest = "https://id.gs1.org/01/06180123123450/10/H-251014-A";
    let encoded = url_encode(product);
    let answer = |path: String| {
        let url = format!("{base}{path}");
        async move { http_answer(&url).await }
    };
    let cli = |args: Vec<String>| {
        let url = url.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                json_answer(&url, &args)
            })
            .await
            .unwrap()
        }
    };
    let eudr_out = tempfile::tempdir().unwrap();
    let geojson = eudr_out.path().join("plots.geojson");
    for (path, mut args) in [
        (format!("/lotline/v1/lots/{encoded}"), vec!["lot", product]),
        (
            format!("/lotline/v1/lots/{encoded}/trace"),
            vec!["trace", product],
        ),
        (
            format!("/lotline/v1/lots/{}/recall", url_encode(harvest)),
            vec!["recall", harvest],
        ),
        (
            format!("/lotline/v1/lots/{encoded}/eudr"),
            vec!["eudr", product, "--out", geojson.to_str().unwrap()],
        ),
        ("/lotline/v1/anomalies".to_string(), vec!["anomalies"]),
        (
            format!(
                "/lotline/v1/containers/{}",
                url_encode("https://id.gs1.org/00/061801230000042171")
            ),
            vec!["container", "urn:epc:id:sscc:6180123.0000004217"],
        ),
    ] {
        for public in [false, true] {
            if public && args[0] == "anomalies" {
                continue;
            }
            let path = if public {
                format!("{path}?public=true")
            } else {
                path.clone()
            };
            let (status, view, body) = answer(path.clone()).await;
            assert_eq!(status, 200, "{path}: {body}");
            if public {
                args.push("--public");
                if args[0] != "recall" {
                    assert_eq!(view.as_deref(), Some("public"), "{path}");
                }
            }
            let expected = cli(args.iter().map(|a| a.to_string()).collect()).await;
            assert_eq!(body, expected, "{path} against lotline {args:?} --json");
            args.retain(|a| *a != "--public");
        }
    }
    // The trace names its origins, and the GeoJSON is the file `lotline eudr --out` writes
    // (last with --public: no producers' names).
    let (_, _, trace) = answer(format!("/lotline/v1/lots/{encoded}/trace")).await;
    assert_eq!(trace["origins"].as_array().unwrap().len(), 2, "{trace}");
    let (status, _, plots) = answer(format!(
        "/lotline/v1/lots/{encoded}/eudr/geojson?public=true"
    ))
    .await;
    assert_eq!(status, 200);
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&geojson).unwrap()).unwrap();
    assert_eq!(plots, written);
    assert_eq!(plots["type"], "FeatureCollection");
    assert!(!plots.to_string().contains("ProducerName"), "{plots}");
    let (_, _, full) = answer(format!("/lotline/v1/lots/{encoded}/eudr/geojson")).await;
    assert!(full.to_string().contains("Kouassi family farm"), "{full}");

    // Mistakes are problem documents; the API describes itself.
    let (status, _, problem) = answer("/lotline/v1/lots/no-such-lot/trace".into()).await;
    assert_eq!(
        (status, &problem["status"]),
        (404, &Value::from(404)),
        "{problem}"
    );
    let (status, _, problem) = answer(format!("/lotline/v1/lots/{encoded}/trace?depth=3")).await;
    assert_eq!(status, 400, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("depth"),
        "{problem}"
    );
    let (status, _, problem) = answer("/lotline/v1/anomalies?public=true".into()).await;
    assert_eq!(status, 400, "{problem}");
    let (status, _, openapi) = answer("/lotline/v1/openapi.json".into()).await;
    assert_eq!(status, 200);
    assert_eq!(openapi["openapi"], "3.0.3");
    for route in [
        "/lotline/v1/lots/{lot}/trace",
        "/lotline/v1/anomalies",
        "/lotline/v1/containers/{id}",
    ] {
        assert!(openapi["paths"][route].is_object(), "{route}");
    }

    // The pallet the co-op packed its dry beans into: what it holds, and what carried the lot.
    let pallet = "https://id.gs1.org/00/061801230000042171";
    let dry = "https://id.gs1.org/01/06180123223457/10/DRY-251030";
    for asked in [pallet, "urn:epc:id:sscc:6180123.0000004217"] {
        let (status, _, held) =
            answer(format!("/lotline/v1/containers/{}", url_encode(asked))).await;
        assert_eq!(status, 200, "{held}");
        assert_eq!(held["id"], pallet, "{held}");
        let contents = held["contents"].as_array().unwrap();
        assert_eq!(contents.len(), 1, "{held}");
        assert_eq!(contents[0]["item"], dry, "{held}");
        assert_eq!(contents[0]["packed_at"], "2025-11-03T11:00:00Z", "{held}");
        assert!(contents[0]["unpacked_at"].is_null(), "{held}");
        assert_eq!(held["carriers"], json!([]), "{held}");
    }
    // A recall of the harvest lists the pallet its dried beans travelled on, and the shipments
    // of the recalled lots.
    let (status, _, recall) =
        answer(format!("/lotline/v1/lots/{}/recall", url_encode(harvest))).await;
    assert_eq!(status, 200, "{recall}");
    let recalled: Vec<&str> = std::iter::once(harvest)
        .chain(
            recall["descendants"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["lot"].as_str().unwrap()),
        )
        .collect();
    assert!(recalled.contains(&dry), "{recall}");
    let containers = recall["containers"].as_array().unwrap();
    assert!(
        containers
            .iter()
            .any(|c| c["container"] == pallet && c["item"] == dry),
        "{recall}"
    );
    let shipped = recall["shipments"].as_array().unwrap();
    assert!(!shipped.is_empty(), "{recall}");
    for s in shipped {
        let lots = s["lots"].as_array().unwrap();
        assert!(!lots.is_empty(), "{recall}");
        assert!(
            lots.iter().all(|l| recalled.contains(&l.as_str().unwrap())),
            "{recall}"
        );
    }
    let (status, _, carried) = answer(format!("/lotline/v1/containers/{}", url_encode(dry))).await;
    assert_eq!(status, 200, "{carried}");
    assert_eq!(carried["carriers"][0]["container"], pallet, "{carried}");
    assert_eq!(carried["contents"], json!([]), "{carried}");
    let (status, _, problem) = answer(format!(
        "/lotline/v1/containers/{}",
        url_encode("https://id.gs1.org/00/061801230000099991")
    ))
    .await;
    assert_eq!(status, 404, "{problem}");
}

/// GETs `url`: the status, the `lotline-view` header and the JSON body.
async fn http_answer(url: &str) -> (u16, Option<String>, Value) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    let view = response
        .headers()
        .get("lotline-view")
        .map(|v| v.to_str().unwrap().to_string());
    (status, view, response.json().await.unwrap())
}

/// Every identifier a top-level listing gives, following `Link` page by page.
async fn listed(base: &str, resource: &str, per_page: usize) -> (Vec<String>, usize) {
    let mut url = format!("{base}{resource}?perPage={per_page}");
    let (mut ids, mut pages) = (Vec::new(), 0);
    loop {
        let (status, body, link) = get(&url).await;
        assert_eq!(status, 200, "{url}: {body}");
        pages += 1;
        let doc: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(doc["type"], "Collection", "{body}");
        let members = doc["member"].as_array().unwrap();
        assert!(members.len() <= per_page, "{body}");
        ids.extend(members.iter().map(|m| m.as_str().unwrap().to_string()));
        match link {
            Some(link) => url = next_url(base, &link),
            None => return (ids, pages),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn epcs_and_locations_are_listed_page_by_page() {
    let server = server_with_chain().await;
    let base = server.http_url();
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("cocoa_chain.expected.json")).unwrap(),
    )
    .unwrap();
    let (epcs, pages) = listed(&base, "/epcs", 2).await;
    assert!(pages > 1, "{pages}");
    let mut sorted = epcs.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, epcs, "listed once each, in order");
    for lot in expected["lots"].as_object().unwrap().keys() {
        assert!(epcs.contains(lot), "{lot} not in {epcs:?}");
    }
    // Each listed EPC's events are there to query.
    let (status, body, _) = get(&format!("{base}/epcs/{}/events", url_encode(&epcs[0]))).await;
    assert_eq!(status, 200, "{body}");

    let (locations, _) = listed(&base, "/bizLocations", 3).await;
    assert!(!locations.is_empty());
    assert_eq!(listed(&base, "/readPoints", 1000).await.0, locations);
    let (_, all_at_once) = listed(&base, "/bizLocations", 1000).await;
    assert_eq!(all_at_once, 1);

    // A token of one listing is not another's.
    let (_, _, link) = get(&format!("{base}/epcs?perPage=1")).await;
    let token = next_url("", &link.unwrap())
        .split("nextPageToken=")
        .nth(1)
        .unwrap()
        .to_string();
    let (status, body, _) = get(&format!("{base}/bizLocations?nextPageToken={token}")).await;
    assert_eq!(status, 400, "{body}");
    let (status, _, _) = get(&format!("{base}/epcs?EQ_bizStep=shipping")).await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_event_is_captured_at_once_with_post_events() {
    let server = server_with_chain().await;
    let base = server.http_url();
    let chain: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("cocoa_chain.jsonld")).unwrap())
            .unwrap();
    let mut event = chain["epcisBody"]["eventList"][0].clone();
    let id = "urn:uuid:7c0a1d2e-3b4f-4a5b-8c6d-0000000000aa";
    event["eventID"] = Value::from(id);
    event["@context"] = chain["@context"].clone();
    let client = reqwest::Client::new();
    let post = |body: String, content_type: &'static str| {
        client
            .post(format!("{base}/events"))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let created = post(event.to_string(), "application/json").await.unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let location = created.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(location, format!("/events/{}", url_encode(id)));
    let stored: Value = created.json().await.unwrap();
    assert_eq!(stored["eventID"], id, "{stored}");
    assert!(stored["recordTime"].is_string(), "{stored}");
    let (status, body, _) = get(&format!("{base}{location}")).await;
    assert_eq!(status, 200, "{body}");
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        doc["epcisBody"]["queryResults"]["resultsBody"]["eventList"][0]["eventID"],
        id
    );
    // The same event again creates nothing new; another event under its id is refused.
    let again = post(event.to_string(), "application/json").await.unwrap();
    assert_eq!(again.status().as_u16(), 200);
    let mut other = event.clone();
    other["eventTime"] = Value::from("2025-10-02T09:00:00Z");
    let conflict = post(other.to_string(), "application/json").await.unwrap();
    assert_eq!(conflict.status().as_u16(), 400);
    let problem: Value = conflict.json().await.unwrap();
    assert_eq!(
        problem["type"], "epcisException:ValidationException",
        "{problem}"
    );
    // Not an event, not JSON.
    for (body, content_type, status) in [
        (
            r#"{"type": "EPCISDocument"}"#.to_string(),
            "application/json",
            400,
        ),
        ("[1, 2]".to_string(), "application/json", 400),
        ("{".to_string(), "application/json", 400),
        (event.to_string(), "text/plain", 415),
    ] {
        let refused = post(body.clone(), content_type).await.unwrap();
        assert_eq!(refused.status().as_u16(), status, "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_events_page_by_page_each_exactly_once() {
    const EVENTS: usize = 100_000;
    let server = empty_server().await;
    let dir = tempfile::tempdir().unwrap();
    let document = dir.path().join("chain.jsonld");
    let truth = lotline_testkit::epcis::write_chain_document(
        std::io::BufWriter::new(std::fs::File::create(&document).unwrap()),
        7,
        EVENTS,
    )
    .unwrap();
    assert_eq!(truth.events, EVENTS);
    let url = server.url();
    let out = tokio::task::spawn_blocking(move || {
        lotline(&[
            "import",
            "--quiet",
            "--server",
            &url,
            document.to_str().unwrap(),
        ])
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let base = server.http_url();
    let mut url = format!("{base}/events?perPage=1000");
    let mut seen = std::collections::HashSet::new();
    let mut pages = 0;
    loop {
        let (status, body, link) = get(&url).await;
        assert_eq!(status, 200, "{url}: {body}");
        pages += 1;
        let doc: Value = serde_json::from_str(&body).unwrap();
        for event in doc["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
            .as_array()
            .unwrap()
        {
            let id = event["eventID"].as_str().unwrap().to_string();
            assert!(seen.insert(id.clone()), "{id} came twice");
        }
        match link {
            Some(link) => url = next_url(&base, &link),
            None => break,
        }
    }
    assert_eq!(seen.len(), EVENTS);
    assert!(pages >= EVENTS / 1000, "{pages} pages");
}
