//! GS1's OpenAPI document of the EPCIS 2.0 REST binding, run against the real server by a stock
//! contract-testing tool (schemathesis, from PyPI, installed into `target/` on first use): no
//! request it generates, on any route, gets a server error. Its references to GS1's web site
//! are replaced by the local copy of the one schema stub it needs and, for external examples,
//! a description (the copies are in `tests/fixtures/gs1-epcis`, with where they come from).

use std::path::{Path, PathBuf};
use std::process::Command;

use lotline_server::ServeConfig;
use lotline_testkit::TestServer;

/// The schemathesis release the test runs (pinned, so a new release cannot change the run).
const SCHEMATHESIS: &str = "schemathesis==4.32.5";

/// `target/schemathesis/bin/schemathesis`, installed with pip into a virtualenv if missing.
fn schemathesis() -> PathBuf {
    lotline_testkit::pip_tool("schemathesis", SCHEMATHESIS, "schemathesis")
}

/// GS1's document with its references to gs1.github.io made local, in `dir`.
fn localised_spec(dir: &Path) -> PathBuf {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/gs1-epcis");
    let stub = "https://gs1.github.io/EPCIS/REST%20Bindings/JSON-Schema-Stub.json";
    let mut spec = String::new();
    for line in std::fs::read_to_string(fixtures.join("openapi.yaml"))
        .unwrap()
        .lines()
    {
        let line = line.replace(stub, "JSON-Schema-Stub.json");
        // An external example (a document on GS1's site) becomes a description of one.
        let line = match line.find("$ref: 'https://gs1.github.io/") {
            Some(at) => format!("{}description: an example on gs1.github.io", &line[..at]),
            None => line,
        };
        spec.push_str(&line);
        spec.push('\n');
    }
    assert!(!spec.contains("$ref: 'https://"), "a reference is left");
    std::fs::copy(
        fixtures.join("JSON-Schema-Stub.json"),
        dir.join("JSON-Schema-Stub.json"),
    )
    .unwrap();
    let path = dir.join("openapi.yaml");
    std::fs::write(&path, spec).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gs1s_openapi_document_finds_no_server_error() {
    let tool = tokio::task::spawn_blocking(schemathesis).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spec = localised_spec(dir.path());
    let data = tempfile::tempdir().unwrap();
    let mut config = ServeConfig::new(data.path());
    config.http = Some("127.0.0.1:0".parse().unwrap());
    let server = TestServer::start_with(config).await;
    // Something to find: the cocoa chain, captured over HTTP.
    let document = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/epcis/cocoa_chain.jsonld"),
    )
    .unwrap();
    let job = lotline_testkit::rest::capture(&server.http_url(), document, None).await;
    assert_eq!(job["success"], true, "{job}");

    let base = server.http_url();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(tool)
            .current_dir(dir.path())
            .env("SCHEMATHESIS_HOOKS", "")
            .env("NO_COLOR", "1")
            .args([
                "run",
                spec.to_str().unwrap(),
                "--url",
                &base,
                "--checks",
                "not_a_server_error",
                "--max-examples",
                "10",
                "--workers",
                "2",
                "--seed",
                "17",
                "--no-color",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    // Every operation was tried and every generated request passed the check. (The run's
    // exit status also counts "schema errors": examples in GS1's document schemathesis cannot
    // generate from, which say nothing of the server.)
    let summary = report
        .lines()
        .skip_while(|l| !l.contains("Test cases:"))
        .nth(1)
        .unwrap_or_else(|| panic!("no summary in the report:\n{report}"));
    let numbers: Vec<u64> = summary
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    assert!(
        summary.contains("passed") && numbers.len() == 2 && numbers[0] == numbers[1],
        "not every generated request passed ({summary}):\n{report}"
    );
    assert!(numbers[0] > 1_000, "too few requests were tried: {summary}");
    assert!(!report.contains("ST101"), "a server error:\n{report}");
    // Every operation of the document was tried.
    let count = |label: &str| -> u64 {
        report
            .lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .and_then(|rest| rest.trim().split('/').next_back()?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {label:?} in the report:\n{report}"))
    };
    let (selected, tested) = (count("Selected:"), count("Tested:"));
    assert!(
        tested == selected && selected > 60,
        "{tested} of {selected} operations tested:\n{report}"
    );
}
