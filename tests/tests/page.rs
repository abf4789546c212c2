//! The lot's public page as a person sees it: a generated cocoa history imported, a brand makes
//! a chocolate bar lot of it, and a real headless Chromium (Debian's `chromium`, which
//! `scripts/test` installs) opens the bar's GS1 Digital Link on the real server's HTTP door. The
//! rendered DOM has the map (one shape per plot), the stages, every origin co-op and no farmer's
//! name; the same URL answers JSON equal to `lotline trace LOT --public --json`, a link set, and
//! every spelling of the link opens the same page.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use common::{json_answer, lotline, stderr};
use lotline_proto::{build, v1};
use lotline_server::ServeConfig;
use lotline_testkit::TestServer;
use lotline_testkit::epcis::{
    co_op_of_farm, farm_name, member_confirmations, write_chain_document,
};
use serde_json::Value;

const EVENTS: usize = 6_000;
/// The bar's GTIN-13 (GS1 Germany prefix, check digit 6); as GTIN-14 it has a leading zero.
const BAR_GTIN13: &str = "4012345000016";
const BAR_LOT: &str = "BAR-2026-W49";

/// The Chromium the tests drive, or a clear failure saying how to get it.
fn chromium() -> String {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if Command::new(name)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return name.to_string();
        }
    }
    panic!(
        "the page tests need a headless Chromium: Debian/Ubuntu `sudo apt-get install chromium` \
         (scripts/test installs it when it runs as root with apt)"
    );
}

/// What headless Chromium renders of `url` (the DOM after layout), and a screenshot of it.
fn render(url: &str, screenshot: &Path) -> String {
    let profile = tempfile::tempdir().unwrap();
    let flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--window-size=900,2400",
    ];
    let run = |extra: &[String]| {
        let out = Command::new(chromium())
            .args(flags)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(url)
            .output()
            .expect("run chromium");
        assert!(
            out.status.success(),
            "chromium failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    run(&[format!("--screenshot={}", screenshot.display())]);
    String::from_utf8(run(&["--dump-dom".to_string()]).stdout).unwrap()
}

async fn get(
    url: &str,
    accept: &str,
    host: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, String) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut request = client.get(url).header("accept", accept);
    if let Some(host) = host {
        request = request.header("host", host);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chocolate_bar_lot_page_opens_in_a_browser_as_a_person_sees_it() {
    let started = std::time::Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("generated.jsonld");
    let out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
    let truth = write_chain_document(out, 11, EVENTS).unwrap();
    let mut config = ServeConfig::new(dir.path().join("data"));
    config.http = Some("127.0.0.1:0".parse().unwrap());
    let server = TestServer::start_with(config).await;
    let url = server.url();
    let imported = {
        let (url, file) = (url.clone(), file.clone());
        tokio::task::spawn_blocking(move || {
            lotline(&["import", "--server", &url, file.to_str().unwrap()])
        })
        .await
        .unwrap()
    };
    assert_eq!(imported.status.code(), Some(0), "{}", stderr(&imported));
    server.record_all(&member_confirmations(EVENTS)).await;

    // The cocoa liquor lot with the most origins that its holder still has; the holder makes
    // chocolate bars of it.
    let mut liquors: Vec<_> = truth
        .lots
        .iter()
        .filter(|(_, t)| t.product == "cocoa_liquor")
        .collect();
    liquors.sort_by_key(|(_, t)| std::cmp::Reverse(t.origins.len()));
    let mut chosen = None;
    for (liquor, liquor_truth) in liquors {
        let answer = {
            let (url, liquor) = (url.clone(), liquor.clone());
            tokio::task::spawn_blocking(move || json_answer(&url, &["lot", &liquor]))
                .await
                .unwrap()
        };
        let kg = answer["remaining"]["quantity"].as_f64().unwrap_or(0.0);
        if kg > 0.0 {
            let holder = answer["holder"].as_str().unwrap().to_string();
            chosen = Some((liquor, liquor_truth, holder, kg));
            break;
        }
    }
    let (liquor, liquor_truth, holder, kg) = chosen.expect("some cocoa liquor is still held");
    let bar = format!("https://id.gs1.org/01/0{BAR_GTIN13}/10/{BAR_LOT}");
    let make = build::event(
        "make-bars-w49",
        "2026-12-01T10:00:00Z",
        &holder,
        "cocoa",
        v1::event::Kind::Transform(v1::Transform {
            inputs: vec![build::lot_quantity(liquor.clone(), kg, "kg")],
            outputs: vec![build::output(
                &bar,
                "dark chocolate bar 100 g",
                10 * kg as u64,
                "pcs",
                &[],
            )],
            process: "manufacturing".into(),
            conversion_ratio: String::new(),
        }),
    );
    server.record_all(&[make]).await;

    let base = server.http_url();
    let page_url = format!("{base}/01/{BAR_GTIN13}/10/{BAR_LOT}");

    // The JSON of the same URL is the public trace the command line prints.
    let (status, headers, body) = get(&page_url, "application/json", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["lotline-view"], "public");
    let answered: Value = serde_json::from_str(&body).unwrap();
    let cli = {
        let (url, bar) = (url.clone(), bar.clone());
        tokio::task::spawn_blocking(move || json_answer(&url, &["trace", &bar, "--public"]))
            .await
            .unwrap()
    };
    assert_eq!(answered, cli);
    let origins = answered["origins"].as_array().unwrap();
    let origin_lots: BTreeSet<&str> = origins.iter().map(|o| o["lot"].as_str().unwrap()).collect();
    let expected: BTreeSet<&str> = liquor_truth.origins.iter().map(String::as_str).collect();
    assert_eq!(origin_lots, expected, "the bar's origins are the liquor's");
    let plots: BTreeSet<&str> = origins.iter().filter_map(|o| o["plot"].as_str()).collect();
    let co_ops: BTreeSet<String> = origins
        .iter()
        .map(|o| co_op_of_farm(o["org"].as_str().unwrap()).expect("a generated farm"))
        .collect();
    assert!(
        plots.len() >= 2 && !co_ops.is_empty(),
        "{plots:?} {co_ops:?}"
    );

    eprintln!("imported and traced in {:?}", started.elapsed());
    // What a person sees: the DOM Chromium rendered.
    let shot = dir.path().join("bar.png");
    let dom = tokio::task::spawn_blocking({
        let (page_url, shot) = (page_url.clone(), shot.clone());
        move || render(&page_url, &shot)
    })
    .await
    .unwrap();
    eprintln!("rendered in Chromium at {:?}", started.elapsed());
    assert!(dom.contains("<svg class=\"map\""), "no map in {dom}");
    assert_eq!(
        dom.matches("<g class=\"plot").count(),
        plots.len(),
        "one shape per plot"
    );
    for plot in &plots {
        assert!(
            dom.contains(&format!("data-plot=\"{plot}\"")),
            "plot {plot} is not on the map"
        );
    }
    assert!(dom.contains("<ol class=\"stages\">"));
    for stage in ["Farm", "Manufacturing"] {
        assert!(
            dom.contains(&format!("<h3>{stage}</h3>")),
            "stage {stage} missing"
        );
    }
    for co_op in &co_ops {
        assert!(
            dom.contains(co_op.as_str()),
            "origin co-op {co_op} is not named"
        );
    }
    assert!(dom.contains("dark chocolate bar 100 g"));
    // No farmer's name anywhere (the generator names every farm).
    assert!(
        !dom.contains(" of co-operative "),
        "a farm's name is on the page"
    );
    assert!(!dom.contains(&farm_name(0, 0)));
    // The checkpoint and a proof of each stage's event, which verify.
    let tree_size = {
        let (_, _, text) = get(
            &format!("{base}/lotline/v1/checkpoint"),
            "application/json",
            None,
        )
        .await;
        serde_json::from_str::<Value>(&text).unwrap()["tree_size"]
            .as_u64()
            .unwrap()
    };
    assert!(dom.contains(&format!("{tree_size}")));
    let (status, _, proof) = get(
        &format!("{base}/lotline/v1/proofs/make-bars-w49"),
        "application/json",
        None,
    )
    .await;
    assert_eq!(status, 200, "{proof}");
    let proof: Value = serde_json::from_str(&proof).unwrap();
    assert_eq!(proof["tree_size"].as_u64(), Some(tree_size));
    assert!(dom.contains("/lotline/v1/proofs/make-bars-w49"));
    let png = std::fs::read(&shot).expect("a screenshot");
    // To look at it: LOTLINE_PAGE_SCREENSHOT=/tmp/bar.png cargo test -p lotline-e2e --test page
    if let Ok(keep) = std::env::var("LOTLINE_PAGE_SCREENSHOT") {
        std::fs::write(keep, &png).unwrap();
    }
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );

    // The same page for every spelling of the link, on any host.
    let (status, headers, html) = get(&page_url, "text/html", None).await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        headers["link"]
            .to_str()
            .unwrap()
            .contains("rel=\"linkset\"")
    );
    for (path, host) in [
        (format!("/01/0{BAR_GTIN13}/10/{BAR_LOT}"), None),
        (format!("/01/{BAR_GTIN13}/10/{BAR_LOT}"), Some("id.gs1.org")),
        (
            format!("/01/0{BAR_GTIN13}/10/{BAR_LOT}"),
            Some("brand.example"),
        ),
    ] {
        let (status, _, other) = get(&format!("{base}{path}"), "text/html", host).await;
        assert_eq!((status, &other), (200, &html), "{path} on {host:?}");
    }
    // And for the lot named as it is stored, or as its EPC URN.
    for id in [
        bar.clone(),
        format!("urn:epc:class:lgtin:4012345.000001.{BAR_LOT}"),
    ] {
        let path = format!("/lotline/v1/lots/{}/page", lotline_testkit::url_encode(&id));
        let (status, _, other) = get(&format!("{base}{path}"), "text/html", None).await;
        assert_eq!((status, &other), (200, &html), "{path}");
    }
    // A resolver query by EPC redirects to the link.
    let epc = format!("urn:epc:class:lgtin:4012345.000001.{BAR_LOT}");
    let (status, headers, _) = get(&format!("{base}/?epc={epc}"), "text/html", None).await;
    assert_eq!(status, 303);
    assert_eq!(
        headers["location"],
        format!("/01/0{BAR_GTIN13}/10/{BAR_LOT}").as_str()
    );
    // A wrong check digit is a clear 400 page.
    let (status, headers, text) = get(
        &format!("{base}/01/4012345000017/10/{BAR_LOT}"),
        "text/html",
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(text.contains("check digit"), "{text}");
    // A lot not in the record is a 404 page.
    let (status, _, text) = get(
        &format!("{base}/01/{BAR_GTIN13}/10/NOPE"),
        "text/html",
        None,
    )
    .await;
    assert_eq!(status, 404);
    assert!(text.contains("not in the record"), "{text}");

    // The link set names the page and the trace; `linkType` picks one.
    let (status, headers, text) = get(&page_url, "application/linkset+json", None).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/linkset+json");
    let linkset: Value = serde_json::from_str(&text).unwrap();
    let links = &linkset["linkset"][0];
    assert_eq!(links["anchor"], bar.as_str());
    assert_eq!(
        links["https://gs1.org/voc/pip"][0]["href"],
        format!("/01/0{BAR_GTIN13}/10/{BAR_LOT}").as_str()
    );
    let trace_href = links["https://gs1.org/voc/traceability"][0]["href"]
        .as_str()
        .unwrap();
    let (_, _, traced) = get(&format!("{base}{trace_href}"), "application/json", None).await;
    assert_eq!(serde_json::from_str::<Value>(&traced).unwrap(), cli);
    let (_, _, by_type) = get(
        &format!("{page_url}?linkType=gs1:traceability"),
        "text/html",
        None,
    )
    .await;
    assert_eq!(serde_json::from_str::<Value>(&by_type).unwrap(), cli);

    // In the reader's language.
    let (_, _, spanish) = get(&format!("{page_url}?lang=es"), "text/html", None).await;
    assert!(spanish.contains("<html lang=\"es\">") && spanish.contains("De dónde viene este lote"));
    let client = reqwest::Client::new();
    let vietnamese = client
        .get(&page_url)
        .header("accept-language", "vi-VN,vi;q=0.9,en;q=0.5")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(vietnamese.contains("<html lang=\"vi\">") && vietnamese.contains("Nông trại"));

    // The brand's view of the product (an open server: every caller is a party), its CSV and
    // its EUDR GeoJSON.
    let view_url = format!("{base}/lotline/v1/products/{BAR_GTIN13}?from=2026-11-01&to=2026-12-31");
    let (status, _, view) = get(&view_url, "text/html", None).await;
    assert_eq!(status, 200, "{view}");
    assert!(
        view.contains(&format!("href=\"/01/0{BAR_GTIN13}/10/{BAR_LOT}\"")),
        "{view}"
    );
    assert!(
        view.contains("<dd class=\"traced-share\">100.0 %</dd>"),
        "{view}"
    );
    for co_op in &co_ops {
        assert!(
            view.contains(co_op.as_str()),
            "origin co-op {co_op} missing from the view"
        );
    }
    let (status, headers, csv) = get(&format!("{view_url}&format=csv"), "*/*", None).await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 2, "{csv}");
    assert!(rows[0].starts_with("lot,created,quantity,unit,"));
    assert!(
        rows[1].starts_with(&format!("{bar},2026-12-01T10:00:00+00:00,")),
        "{csv}"
    );
    let (status, _, geo) = get(&format!("{view_url}&format=geojson"), "*/*", None).await;
    assert_eq!(status, 200);
    let geo: Value = serde_json::from_str(&geo).unwrap();
    let features: BTreeSet<&str> = geo["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["properties"]["lotline:plot"].as_str().unwrap())
        .collect();
    assert_eq!(features, plots);
    // A period without the bar has no lot; a bad date is a clear 400.
    let (_, _, empty) = get(
        &format!("{base}/lotline/v1/products/{BAR_GTIN13}?to=2026-01-01"),
        "text/html",
        None,
    )
    .await;
    assert!(!empty.contains(BAR_LOT), "{empty}");
    let (status, _, bad) = get(
        &format!("{base}/lotline/v1/products/{BAR_GTIN13}?from=yesterday"),
        "text/html",
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        bad.contains("from: &quot;yesterday&quot; is not a date"),
        "{bad}"
    );

    // The product's lots link to the bar's page.
    let (status, _, product) = get(&format!("{base}/01/{BAR_GTIN13}"), "text/html", None).await;
    assert_eq!(status, 200);
    assert!(
        product.contains(&format!("href=\"/01/0{BAR_GTIN13}/10/{BAR_LOT}\"")),
        "{product}"
    );
}

/// A brand signs in with its token once; its browser then carries a session cookie, which
/// stands for the token on reads only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_brand_signs_in_with_its_token_and_reads_with_a_session_cookie() {
    use lotline_server::{AuthSettings, load_issuer};
    use lotline_service::Role;
    use lotline_service::tokens::TokenRequest;

    let dir = tempfile::tempdir().unwrap();
    let mut config = ServeConfig::new(dir.path());
    config.auth = Some(AuthSettings::default());
    config.public_reads = true;
    config.http = Some("127.0.0.1:0".parse().unwrap());
    let issuer = load_issuer(&config.issuer_key_path()).expect("issuer");
    let server = TestServer::start_with(config).await;
    let base = server.http_url();
    let token = issuer
        .issue(
            &TokenRequest {
                org: "brand-b".into(),
                roles: vec![Role::Member],
                lifetime_secs: 3600,
                ..Default::default()
            },
            chrono::Utc::now(),
        )
        .expect("issue")
        .token;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let view = format!("/lotline/v1/products/{BAR_GTIN13}");

    // Not signed in: the page sends the browser to sign in, and back; a download is refused.
    let r = client.get(format!("{base}{view}")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with("/lotline/v1/session?return="),
        "{location}"
    );
    let r = client
        .get(format!("{base}{view}?format=csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let form = client
        .get(format!("{base}{location}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        form.contains("name=\"token\"") && form.contains(&format!("value=\"{view}\"")),
        "{form}"
    );

    // A wrong token is refused on the form; the brand's opens a session.
    let sign_in = |token: String| {
        let request = client
            .post(format!("{base}/lotline/v1/session"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "token={token}&return={}",
                lotline_testkit::url_encode(&view)
            ));
        async move { request.send().await.unwrap() }
    };
    let r = sign_in("not-a-token".into()).await;
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("set-cookie").is_none());
    let r = sign_in(token.clone()).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], view.as_str());
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("Secure")
            && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains(&token), "the cookie is not the token");
    let session = cookie.split(';').next().unwrap().to_string();

    // The cookie reads the view; it writes nothing.
    let r = client
        .get(format!("{base}{view}"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("0 lots"));
    let document = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/epcis/cocoa_chain.jsonld"),
    )
    .unwrap();
    let r = client
        .post(format!("{base}/capture"))
        .header("cookie", &session)
        .header("content-type", "application/ld+json")
        .body(document)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        401,
        "a session cookie must not authorise a write"
    );

    // Signed out, the cookie is worth nothing.
    let r = client
        .post(format!("{base}/lotline/v1/session/end"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = client
        .get(format!("{base}{view}"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
}

/// `serve --public-geometry region` and `rounded`: the page never shows more of a plot than the
/// operator allows, and its map still says where the lot comes from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_plots_only_as_the_operator_allows() {
    use lotline_service::PublicGeometry;

    for geometry in [PublicGeometry::Region, PublicGeometry::Rounded] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("generated.jsonld");
        let out = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        let truth = write_chain_document(out, 3, 4_000).unwrap();
        let mut config = ServeConfig::new(dir.path().join("data"));
        config.http = Some("127.0.0.1:0".parse().unwrap());
        config.public_geometry = geometry;
        let server = TestServer::start_with(config).await;
        let url = server.url();
        let imported = tokio::task::spawn_blocking(move || {
            lotline(&["import", "--server", &url, file.to_str().unwrap()])
        })
        .await
        .unwrap();
        assert_eq!(imported.status.code(), Some(0), "{}", stderr(&imported));
        let (lot, _) = truth
            .lots
            .iter()
            .filter(|(lot, t)| t.product == "cocoa_beans" && lot.contains("/01/"))
            .max_by_key(|(_, t)| t.origins.len())
            .expect("a cocoa lot");
        let page_url = format!(
            "{}{}",
            server.http_url(),
            lot.strip_prefix("https://id.gs1.org").unwrap()
        );
        let (status, _, html) = get(&page_url, "text/html", None).await;
        assert_eq!(status, 200, "{html}");
        assert!(html.contains("<svg class=\"map\""), "{geometry:?}: no map");
        assert!(
            html.contains("class=\"country\""),
            "{geometry:?}: no country"
        );
        let (_, _, json) = get(&page_url, "application/json", None).await;
        let trace: Value = serde_json::from_str(&json).unwrap();
        let geometries: Vec<&Value> = trace["origins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| &o["plot_info"]["geometry"])
            .collect();
        match geometry {
            PublicGeometry::Region => {
                assert!(!html.contains("<g class=\"plot"), "region: a plot is drawn");
                assert!(html.contains("shown only as their country"));
                assert!(
                    geometries
                        .iter()
                        .all(|g| g.is_null() || g.as_str() == Some("")),
                    "{geometries:?}"
                );
            }
            _ => {
                assert!(html.contains("<g class=\"plot"), "rounded: no plot drawn");
                assert!(html.contains("rounded to about 1 km"));
                // Every coordinate has at most 2 decimals.
                let text = serde_json::to_string(&geometries).unwrap();
                for number in text.split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-')) {
                    if let Some((_, decimals)) = number.split_once('.') {
                        assert!(decimals.len() <= 2, "{number} in {text}");
                    }
                }
            }
        }
    }
}
