//! The EPCIS REST binding as tests and benchmarks drive it.

use std::time::{Duration, Instant};

use serde_json::Value;

/// POSTs `document` to `{base}/capture` (with `GS1-Capture-Error-Behaviour: behaviour`, if
/// given), checks it is taken as a job (202 with a `Location`), and polls the job until it has
/// finished (at most two minutes): the finished job.
pub async fn capture(base: &str, document: Vec<u8>, behaviour: Option<&str>) -> Value {
    let client = reqwest::Client::new();
    let mut request = client
        .post(format!("{base}/capture"))
        .header("content-type", "application/ld+json")
        .body(document);
    if let Some(b) = behaviour {
        request = request.header("GS1-Capture-Error-Behaviour", b);
    }
    let response = request.send().await.expect("POST /capture");
    assert_eq!(response.status().as_u16(), 202, "the capture was refused");
    let location = response.headers()["location"]
        .to_str()
        .expect("a Location")
        .to_string();
    assert!(location.starts_with("/capture/"), "{location}");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let job: Value = client
            .get(format!("{base}{location}"))
            .send()
            .await
            .expect("GET the job")
            .json()
            .await
            .expect("the job as JSON");
        if job["running"] == false {
            assert!(job["finishedAt"].as_str().is_some(), "{job}");
            return job;
        }
        assert!(Instant::now() < deadline, "the job did not finish: {job}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
