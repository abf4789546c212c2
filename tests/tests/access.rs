//! Parties and access: the real server with `--auth`, driven by gRPC clients holding tokens of
//! each role. Who may record and read what is the table in the README; every role × operation
//! is checked here, as are the views the server decides and revoked and expired tokens.

mod common;

use std::collections::BTreeMap;

use lotline_proto::build;
use lotline_proto::v1;
use lotline_proto::v1::access_service_client::AccessServiceClient;
use lotline_proto::v1::audit_service_client::AuditServiceClient;
use lotline_proto::v1::event::Kind;
use lotline_proto::v1::event_service_client::EventServiceClient;
use lotline_proto::v1::log_service_client::LogServiceClient;
use lotline_proto::v1::provenance_service_client::ProvenanceServiceClient;
use lotline_server::{AuthSettings, ServeConfig, load_issuer};
use lotline_service::PublicGeometry;
use lotline_service::Role;
use lotline_service::tokens::{Issuer, ScopeClaim, TokenRequest};
use lotline_testkit::TestServer;
use lotline_testkit::events::{TIME, event};
use tonic::transport::Channel;
use tonic::{Code, Request};

const LOT: &str = "L-COOP-1";
const GEOMETRY: &str = r#"{"type":"Point","coordinates":[-1.523456,6.712345]}"#;

/// A request carrying `token` (none: anonymous).
fn call<T>(message: T, token: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(token) = token {
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
    }
    request
}

fn token(
    issuer: &Issuer,
    org: &str,
    roles: &[Role],
    customise: impl FnOnce(&mut TokenRequest),
) -> String {
    let mut request = TokenRequest {
        org: org.into(),
        roles: roles.to_vec(),
        lifetime_secs: 3600,
        ..Default::default()
    };
    customise(&mut request);
    issuer
        .issue(&request, chrono::Utc::now())
        .expect("issue")
        .token
}

struct Parties {
    admin: String,
    coop: String,
    integrator: String,
    brand: String,
    trader: String,
    certifier: String,
    auditor: String,
    scoped_auditor: String,
}

async fn start() -> (TestServer, Issuer, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = ServeConfig::new(dir.path());
    config.auth = Some(AuthSettings::default());
    config.public_reads = true;
    config.public_geometry = PublicGeometry::Rounded;
    config.http = Some("127.0.0.1:0".parse().expect("address"));
    let issuer = load_issuer(&config.issuer_key_path()).expect("issuer");
    let server = TestServer::start_with(config).await;
    (server, issuer, dir)
}

fn parties(issuer: &Issuer) -> Parties {
    Parties {
        admin: token(issuer, "operator", &[Role::Admin], |_| {}),
        coop: token(issuer, "coop-a", &[Role::Member], |_| {}),
        integrator: token(issuer, "coop-a", &[Role::Member], |r| {
            r.on_behalf_of = vec!["farm-1".into()]
        }),
        brand: token(issuer, "brand-b", &[Role::Member], |_| {}),
        trader: token(issuer, "trader-x", &[Role::Member], |_| {}),
        certifier: token(issuer, "cert-co", &[Role::Certifier], |_| {}),
        auditor: token(issuer, "audit-co", &[Role::Auditor], |_| {}),
        scoped_auditor: token(issuer, "audit-co", &[Role::Auditor], |r| {
            r.scope = ScopeClaim {
                orgs: vec!["trader-x".into()],
                ..Default::default()
            }
        }),
    }
}

fn org(id: &str, name: &str, role: v1::OrgRole) -> v1::Event {
    let mut e = event(
        &format!("reg-{id}"),
        id,
        build::register_org(name, role, "GH"),
    );
    e.chain = String::new();
    if role == v1::OrgRole::Farm
        && let Some(Kind::RegisterOrg(r)) = e.kind.as_mut()
    {
        r.member_of = "coop-a".into();
        r.gln = "0614141000005".into();
    }
    e
}

async fn record(
    events: &mut EventServiceClient<Channel>,
    e: v1::Event,
    token: &str,
) -> Result<(), tonic::Status> {
    let outcome = events
        .record(call(v1::RecordRequest { event: Some(e) }, Some(token)))
        .await?
        .into_inner();
    match outcome.outcome.and_then(|o| o.result) {
        Some(v1::outcome::Result::Accepted(_)) | Some(v1::outcome::Result::Duplicate(_)) => Ok(()),
        other => panic!("not accepted: {other:?}"),
    }
}

/// Orgs (by the admin), a farm's plot (by its co-op, writing for it), a harvest, a payment to
/// the farm, and a sale to the brand.
async fn history(server: &TestServer, p: &Parties) {
    let mut events = server.events().await;
    for e in [
        org("farm-1", "Ama Mensah", v1::OrgRole::Farm),
        org("coop-a", "Coop A", v1::OrgRole::Cooperative),
        org("brand-b", "Brand B", v1::OrgRole::Brand),
        org("trader-x", "Trader X", v1::OrgRole::Trader),
        org("cert-co", "Cert Co", v1::OrgRole::Certifier),
    ] {
        record(&mut events, e, &p.admin)
            .await
            .expect("admin registers orgs");
    }
    let mut plot = event(
        "plot-1-reg",
        "farm-1",
        build::register_plot("plot-1", GEOMETRY.into(), "1.5", "GH"),
    );
    plot.chain = String::new();
    record(&mut events, plot, &p.integrator)
        .await
        .expect("the co-op registers its farm's plot");
    let receive = |id: &str, org: &str, from: &str| {
        event(
            id,
            org,
            Kind::Receive(v1::Receive {
                lots: vec![build::lot_quantity(LOT, 500, "kg")],
                from_org: from.into(),
                documents: vec![],
            }),
        )
    };
    let pay = event(
        "pay-1",
        "coop-a",
        Kind::Pay(v1::Pay {
            lots: vec![build::lot_quantity(LOT, 500, "kg")],
            payee_org: "farm-1".into(),
            currency: "GHS".into(),
            price_per_unit: "12.5".into(),
            price_unit: "kg".into(),
            ..Default::default()
        }),
    );
    // The farm's harvest and its delivery to the co-op are recorded by the co-op for it.
    let steps = [
        (
            event(
                "h-1",
                "farm-1",
                build::harvest(LOT, "plot-1", "cocoa_beans", 500),
            ),
            &p.integrator,
        ),
        (
            event("s-0", "farm-1", build::ship([(LOT, 500)], "coop-a")),
            &p.integrator,
        ),
        (receive("r-0", "coop-a", "farm-1"), &p.coop),
        (pay, &p.coop),
        (
            event("s-1", "coop-a", build::ship([(LOT, 500)], "brand-b")),
            &p.coop,
        ),
        (receive("r-1", "brand-b", "coop-a"), &p.brand),
    ];
    for (e, token) in steps {
        let id = e.event_id.clone();
        record(&mut events, e, token)
            .await
            .unwrap_or_else(|s| panic!("{id}: {s:?}"));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    RecordOwn,
    RecordOther,
    CertifyOther,
    RegisterOrg,
    Revoke,
    ReadLot,
    ListEvents,
    BalanceOfCoop,
    BalanceOfBrand,
    AnomaliesOfBrand,
    Quarantine,
    Entries,
    Checkpoint,
}

const OPS: [Op; 13] = [
    Op::RecordOwn,
    Op::RecordOther,
    Op::CertifyOther,
    Op::RegisterOrg,
    Op::Revoke,
    Op::ReadLot,
    Op::ListEvents,
    Op::BalanceOfCoop,
    Op::BalanceOfBrand,
    Op::AnomaliesOfBrand,
    Op::Quarantine,
    Op::Entries,
    Op::Checkpoint,
];

/// Runs `op` as `who` (its org, its token); the status code it ends with.
async fn run(server: &TestServer, op: Op, who: &str, org: &str, token: Option<&str>) -> Code {
    let channel = server.channel().await;
    let mut events = EventServiceClient::new(channel.clone());
    let mut provenance = ProvenanceServiceClient::new(channel.clone());
    let mut audit = AuditServiceClient::new(channel.clone());
    let mut log = LogServiceClient::new(channel);
    let id = |what: &str| format!("{what}-{who}");
    let write = |e: v1::Event| call(v1::RecordRequest { event: Some(e) }, token);
    let certify = |subject: &str| {
        let mut e = event(
            &id("cert"),
            org,
            Kind::Certify(v1::Certify {
                standard: "fairtrade".into(),
                certificate_id: id("c"),
                outcome: "certified".into(),
                subject_org: subject.into(),
                ..Default::default()
            }),
        );
        e.chain = String::new();
        e
    };
    let result = match op {
        Op::RecordOwn => events
            .record(write(event(
                &id("own"),
                org,
                build::harvest(id("LOT"), "plot-1", "cocoa_beans", 10),
            )))
            .await
            .map(|_| ()),
        Op::RecordOther => events
            .record(write(event(
                &id("other"),
                "brand-b",
                build::harvest(id("LOT-B"), "plot-1", "cocoa_beans", 10),
            )))
            .await
            .map(|_| ()),
        Op::CertifyOther => events.record(write(certify("trader-x"))).await.map(|_| ()),
        Op::RegisterOrg => {
            let new = format!("new-{who}");
            let mut e = event(
                &format!("reg-{new}"),
                &new,
                build::register_org("New", v1::OrgRole::Trader, "GH"),
            );
            e.chain = String::new();
            events.record(write(e)).await.map(|_| ())
        }
        Op::Revoke => {
            let token_id = format!("unused-{who}");
            let mut e = event(
                &lotline_domain::RevokeToken::event_id(&token_id),
                org,
                Kind::RevokeToken(v1::RevokeToken {
                    token_id,
                    reason: "test".into(),
                }),
            );
            e.chain = String::new();
            events.record(write(e)).await.map(|_| ())
        }
        Op::ReadLot => provenance
            .get_lot(call(
                v1::GetLotRequest {
                    lot: LOT.into(),
                    ..Default::default()
                },
                token,
            ))
            .await
            .map(|_| ()),
        Op::ListEvents => provenance
            .list_events(call(v1::ListEventsRequest::default(), token))
            .await
            .map(|_| ()),
        Op::BalanceOfCoop | Op::BalanceOfBrand => {
            let of = if op == Op::BalanceOfCoop {
                "coop-a"
            } else {
                "brand-b"
            };
            audit
                .mass_balance(call(
                    v1::MassBalanceRequest {
                        org: of.into(),
                        ..Default::default()
                    },
                    token,
                ))
                .await
                .map(|_| ())
        }
        Op::AnomaliesOfBrand => audit
            .list_anomalies(call(
                v1::ListAnomaliesRequest {
                    org: "brand-b".into(),
                    ..Default::default()
                },
                token,
            ))
            .await
            .map(|_| ()),
        Op::Quarantine => provenance
            .list_rejected(call(v1::ListRejectedRequest::default(), token))
            .await
            .map(|_| ()),
        Op::Entries => log
            .get_entries(call(v1::GetEntriesRequest { start: 0, count: 1 }, token))
            .await
            .map(|_| ()),
        Op::Checkpoint => log
            .get_checkpoint(call(v1::GetCheckpointRequest { tree_size: 0 }, token))
            .await
            .map(|_| ()),
    };
    match result {
        Ok(()) => Code::Ok,
        Err(status) => status.code(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_may_do_what_the_table_says_and_nothing_else() {
    let (server, issuer, _dir) = start().await;
    let p = parties(&issuer);
    history(&server, &p).await;

    use Code::{Ok as OK, PermissionDenied as DENIED, Unauthenticated as UNAUTH};
    // (role, org, token) and, per operation in OPS order, the code it must end with.
    #[rustfmt::skip]
    let table: Vec<(&str, &str, Option<&str>, [Code; 13])> = vec![
        //                                                  own     other   certify regorg  revoke  lot events balcoop balbrand anom    quar    entries cp
        ("member",    "coop-a",   Some(&p.coop),           [OK,     DENIED, DENIED, DENIED, DENIED, OK, OK,     OK,     DENIED, DENIED, OK,     DENIED, OK]),
        ("certifier", "cert-co",  Some(&p.certifier),      [OK,     DENIED, OK,     DENIED, DENIED, OK, OK,     DENIED, DENIED, DENIED, OK,     DENIED, OK]),
        ("auditor",   "audit-co", Some(&p.auditor),        [DENIED, DENIED, DENIED, DENIED, DENIED, OK, OK,     OK,     OK,     OK,     OK,     OK,     OK]),
        ("scoped",    "audit-co", Some(&p.scoped_auditor), [DENIED, DENIED, DENIED, DENIED, DENIED, OK, OK,     DENIED, DENIED, DENIED, OK,     DENIED, OK]),
        ("admin",     "operator", Some(&p.admin),          [DENIED, DENIED, DENIED, OK,     OK,     OK, OK,     DENIED, DENIED, DENIED, OK,     DENIED, OK]),
        ("anonymous", "nobody",   None,                    [UNAUTH, UNAUTH, UNAUTH, UNAUTH, UNAUTH, OK, UNAUTH, UNAUTH, UNAUTH, UNAUTH, UNAUTH, UNAUTH, OK]),
    ];
    let mut wrong = Vec::new();
    for (who, org, token, expected) in &table {
        for (op, want) in OPS.iter().zip(expected) {
            let got = run(&server, *op, who, org, *token).await;
            if got != *want {
                wrong.push(format!("{who} {op:?}: {got:?}, expected {want:?}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // A refused write stored nothing: the log holds the history plus what was allowed.
    let mut log = LogServiceClient::new(server.channel().await);
    let size = log
        .get_checkpoint(call(
            v1::GetCheckpointRequest { tree_size: 0 },
            Some(&p.auditor),
        ))
        .await
        .expect("checkpoint")
        .into_inner()
        .tree_size;
    // 12 history events; member and certifier recorded their own harvest, the certifier its
    // certificate, the admin an org and a revocation.
    assert_eq!(size, 12 + 2 + 1 + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_decides_the_view_from_the_credential() {
    let (server, issuer, _dir) = start().await;
    let p = parties(&issuer);
    history(&server, &p).await;
    let mut provenance = server.provenance().await;
    let mut audit = AuditServiceClient::new(server.channel().await);

    let lot = |token: Option<&str>| {
        call(
            v1::GetLotRequest {
                lot: LOT.into(),
                public_view: false,
            },
            token,
        )
    };
    let trace = |token: Option<&str>| {
        call(
            v1::TraceBackRequest {
                lot: LOT.into(),
                public_view: false,
            },
            token,
        )
    };

    // The brand bought the lot: the partner view. Plots at full precision, no prices paid to
    // the farm, and the view named in the answer.
    let answer = provenance
        .trace_back(trace(Some(&p.brand)))
        .await
        .expect("trace");
    assert_eq!(answer.metadata().get("lotline-view").unwrap(), "partner");
    let plot = answer.get_ref().origins[0]
        .plot_info
        .clone()
        .expect("plot info");
    assert!(plot.geometry.contains("-1.523456"), "{}", plot.geometry);
    let answer = provenance.get_lot(lot(Some(&p.brand))).await.expect("lot");
    let kinds: Vec<_> = answer
        .get_ref()
        .events
        .iter()
        .map(|e| e.event.as_ref().unwrap().event_id.clone())
        .collect();
    assert!(!kinds.contains(&"pay-1".to_string()), "{kinds:?}");
    assert!(kinds.contains(&"r-1".to_string()), "{kinds:?}");
    let report = audit
        .chain_report(call(
            v1::ChainReportRequest {
                lot: LOT.into(),
                public_view: false,
            },
            Some(&p.brand),
        ))
        .await
        .expect("report")
        .into_inner();
    let text = format!("{report:?}");
    assert!(!text.contains("Ama Mensah"), "{text}");

    // Anonymous: the public view, plots generalised as the operator set (rounded).
    let answer = provenance
        .trace_back(trace(None))
        .await
        .expect("public trace");
    assert_eq!(answer.metadata().get("lotline-view").unwrap(), "public");
    let plot = answer.get_ref().origins[0]
        .plot_info
        .clone()
        .expect("plot info");
    assert!(
        plot.geometry.contains("-1.52") && !plot.geometry.contains("-1.523"),
        "{}",
        plot.geometry
    );

    // A member that never handled the lot asking for everything gets the public view.
    let answer = provenance.get_lot(lot(Some(&p.trader))).await.expect("lot");
    assert_eq!(answer.metadata().get("lotline-view").unwrap(), "public");

    // The co-op sees its own payment; an auditor of everything sees it all.
    for token in [&p.coop, &p.auditor] {
        let answer = provenance.get_lot(lot(Some(token))).await.expect("lot");
        let ids: Vec<_> = answer
            .get_ref()
            .events
            .iter()
            .map(|e| e.event.as_ref().unwrap().event_id.clone())
            .collect();
        assert!(ids.contains(&"pay-1".to_string()), "{ids:?}");
    }
    let answer = audit
        .chain_report(call(
            v1::ChainReportRequest {
                lot: LOT.into(),
                public_view: false,
            },
            Some(&p.auditor),
        ))
        .await
        .expect("report");
    assert_eq!(answer.metadata().get("lotline-view").unwrap(), "full");
    assert!(format!("{:?}", answer.get_ref()).contains("Ama Mensah"));

    // The plot written by the co-op for its farm says who wrote it.
    let plots = provenance
        .list_events(call(
            v1::ListEventsRequest {
                event_id: "plot-1-reg".into(),
                ..Default::default()
            },
            Some(&p.auditor),
        ))
        .await
        .expect("events")
        .into_inner();
    let extensions: BTreeMap<_, _> = plots.events[0]
        .event
        .clone()
        .unwrap()
        .extensions
        .into_iter()
        .collect();
    assert_eq!(
        extensions.get("lotline:recordedBy").map(String::as_str),
        Some("coop-a")
    );

    // Proofs: the public gets the leaf hash only; an auditor the leaf.
    let mut log = LogServiceClient::new(server.channel().await);
    let proof = |token: Option<&str>| {
        call(
            v1::GetInclusionProofRequest {
                leaf: Some(v1::get_inclusion_proof_request::Leaf::EventId(
                    "pay-1".into(),
                )),
                tree_size: 0,
            },
            token,
        )
    };
    let public = log
        .get_inclusion_proof(proof(None))
        .await
        .expect("proof")
        .into_inner();
    assert!(public.leaf.is_empty());
    assert_eq!(public.leaf_hash.len(), 32);
    let full = log
        .get_inclusion_proof(proof(Some(&p.auditor)))
        .await
        .expect("proof")
        .into_inner();
    assert!(!full.leaf.is_empty());
    assert_eq!(full.leaf_hash, public.leaf_hash);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_expired_and_revoked_tokens_are_refused() {
    let (server, issuer, _dir) = start().await;
    let p = parties(&issuer);
    let mut access = AccessServiceClient::new(server.channel().await);
    let who = |token: Option<&str>| call(v1::WhoAmIRequest {}, token);

    let me = access
        .who_am_i(who(Some(&p.coop)))
        .await
        .expect("whoami")
        .into_inner();
    assert_eq!((me.access.as_str(), me.org.as_str()), ("party", "coop-a"));
    assert_eq!(me.roles, vec!["member".to_string()]);

    // Another issuer's token, and a token that is not one.
    let stranger = token(&Issuer::new(&[9; 32]), "coop-a", &[Role::Admin], |_| {});
    for bad in [stranger.as_str(), "not-a-token"] {
        let status = access.who_am_i(who(Some(bad))).await.expect_err("refused");
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    }

    // An expired token.
    let short = token(&issuer, "coop-a", &[Role::Member], |r| r.lifetime_secs = 1);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let status = access
        .who_am_i(who(Some(&short)))
        .await
        .expect_err("expired");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("expired"), "{}", status.message());

    // The admin revokes the co-op's token: refused from then on, and the revocation is an
    // event in the log.
    let mut events = server.events().await;
    record(
        &mut events,
        org("coop-a", "Coop A", v1::OrgRole::Cooperative),
        &p.admin,
    )
    .await
    .expect("register");
    let victim = token(&issuer, "coop-a", &[Role::Member], |_| {});
    let id = access
        .who_am_i(who(Some(&victim)))
        .await
        .expect("before")
        .into_inner()
        .token_id;
    let mut revoke = event(
        &lotline_domain::RevokeToken::event_id(&id),
        "operator",
        Kind::RevokeToken(v1::RevokeToken {
            token_id: id.clone(),
            reason: "laptop stolen".into(),
        }),
    );
    revoke.chain = String::new();
    record(&mut events, revoke, &p.admin).await.expect("revoke");
    let status = access
        .who_am_i(who(Some(&victim)))
        .await
        .expect_err("revoked");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("revoked"), "{}", status.message());
    // Other tokens of the same org still work.
    access
        .who_am_i(who(Some(&p.coop)))
        .await
        .expect("another token");

    // A revocation id is reserved for revocations.
    let squat = event(
        &lotline_domain::RevokeToken::event_id("someone-else"),
        "coop-a",
        build::harvest("L-SQUAT", "plot-1", "cocoa_beans", 1),
    );
    let status = events
        .record(call(
            v1::RecordRequest { event: Some(squat) },
            Some(&p.coop),
        ))
        .await
        .expect_err("reserved id");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let _ = TIME;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_input_is_quarantined_under_the_sender_not_the_org_it_names() {
    let (server, issuer, _dir) = start().await;
    let p = parties(&issuer);
    let mut events = server.events().await;
    // Not an event at all, naming the brand's org.
    let answer = events
        .record_json(call(
            v1::RecordJsonRequest {
                events: vec![r#"{"eventId":"x","org":"brand-b","harvest":{"lot":"#.into()],
            },
            Some(&p.coop),
        ))
        .await
        .expect("batch answered")
        .into_inner();
    assert!(matches!(
        answer.outcomes[0].result,
        Some(v1::outcome::Result::Rejected(_))
    ));
    let mut provenance = server.provenance().await;
    let coop = provenance
        .list_rejected(call(v1::ListRejectedRequest::default(), Some(&p.coop)))
        .await
        .expect("quarantine")
        .into_inner();
    assert_eq!(coop.rejected.len(), 1);
    assert_eq!(coop.rejected[0].org, "coop-a");
    let brand = provenance
        .list_rejected(call(v1::ListRejectedRequest::default(), Some(&p.brand)))
        .await
        .expect("quarantine")
        .into_inner();
    assert!(brand.rejected.is_empty(), "{:?}", brand.rejected);
}

/// The CLI as an operator and a co-op use it: tokens issued offline from the server's data
/// dir, `whoami`, `post` refused for another org's event, `token revoke`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_issues_uses_and_revokes_tokens() {
    use common::{lotline, stderr, stdout};
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let data_arg = data.display().to_string();
    let issue = |org: &str, role: &str| {
        let out = lotline(&[
            "token",
            "issue",
            "--data-dir",
            &data_arg,
            "--org",
            org,
            "--role",
            role,
            "--expires",
            "1h",
            "--json",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let issued: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
        (
            issued["token"].as_str().expect("token").to_string(),
            issued["id"].as_str().expect("id").to_string(),
        )
    };
    let (admin, _) = issue("operator", "admin");
    let (coop, coop_id) = issue("coop-a", "member");
    let out = lotline(&[
        "token",
        "issue",
        "--data-dir",
        &data_arg,
        "--org",
        "x",
        "--role",
        "boss",
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown role is a usage error"
    );

    let server = lotline_testkit::BinaryServer::spawn_with(&data, "", &["--auth"]).await;
    let url = server.url();
    let whoami = |token: &str| lotline(&["whoami", "--server", &url, "--token", token, "--json"]);
    let me: serde_json::Value = serde_json::from_str(&stdout(&whoami(&coop))).expect("json");
    assert_eq!(
        (me["org"].as_str(), me["token_id"].as_str()),
        (Some("coop-a"), Some(coop_id.as_str()))
    );
    let out = lotline(&["whoami", "--server", &url]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("no credential"), "{}", stderr(&out));

    let file = dir.path().join("events.jsonl");
    common::write_jsonl(&file, &[org("coop-a", "Coop A", v1::OrgRole::Cooperative)]);
    let file_arg = file.display().to_string();
    let out = lotline(&["post", &file_arg, "--server", &url, "--token", &coop]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("REFUSED"), "{}", stdout(&out));
    let token_file = dir.path().join("admin.token");
    std::fs::write(&token_file, &admin).expect("token file");
    let out = lotline(&[
        "post",
        &file_arg,
        "--server",
        &url,
        "--token-file",
        &token_file.display().to_string(),
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));

    let out = lotline(&[
        "token",
        "revoke",
        &coop_id,
        "--server",
        &url,
        "--token",
        &admin,
        "--reason",
        "left the co-op",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("revoked"), "{}", stdout(&out));
    let out = whoami(&coop);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("revoked"), "{}", stderr(&out));
    let out = lotline(&[
        "token", "revoke", &coop_id, "--server", &url, "--token", &coop,
    ]);
    assert_eq!(out.status.code(), Some(1), "a revoked member cannot revoke");
}

/// The anomalies `token` sees with `status` (empty: any).
async fn listed(server: &TestServer, token: &str, status: &str) -> v1::ListAnomaliesResponse {
    AuditServiceClient::new(server.channel().await)
        .list_anomalies(call(
            v1::ListAnomaliesRequest {
                status: status.into(),
                ..Default::default()
            },
            Some(token),
        ))
        .await
        .expect("list anomalies")
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_acknowledges_or_disputes_an_anomaly_and_the_listing_follows() {
    let (server, issuer, _dir) = start().await;
    let p = parties(&issuer);
    history(&server, &p).await;
    // The trader sells the brand's lot, which it never held: an anomaly charged to it.
    let mut events = server.events().await;
    record(
        &mut events,
        event("s-x", "trader-x", build::ship([(LOT, 100)], "brand-b")),
        &p.trader,
    )
    .await
    .expect("recorded");
    let open = listed(&server, &p.auditor, "open").await;
    let found = open
        .anomalies
        .iter()
        .find(|a| a.kind == "not_holder" && a.event_id == "s-x")
        .cloned()
        .unwrap_or_else(|| panic!("no not_holder anomaly: {:?}", open.anomalies));
    assert_eq!(found.status, "open");
    assert!(found.id.starts_with("not_holder-"), "{}", found.id);
    assert!(found.reviews.is_empty());

    let mut audit = AuditServiceClient::new(server.channel().await);
    let review = |verdict: v1::ReviewVerdict, note: &str, token: &str| {
        call(
            v1::ReviewAnomalyRequest {
                anomaly: found.id.clone(),
                verdict: verdict as i32,
                note: note.into(),
                event_id: String::new(),
            },
            Some(token),
        )
    };
    // Only an auditor reviews; a dispute says why; the id must be one the auditor sees.
    for (request, code) in [
        (
            review(v1::ReviewVerdict::Acknowledged, "", &p.trader),
            Code::PermissionDenied,
        ),
        (
            review(v1::ReviewVerdict::Acknowledged, "", &p.admin),
            Code::PermissionDenied,
        ),
        (
            review(v1::ReviewVerdict::Disputed, " ", &p.auditor),
            Code::InvalidArgument,
        ),
        (
            review(v1::ReviewVerdict::Unspecified, "x", &p.auditor),
            Code::InvalidArgument,
        ),
        (
            call(
                v1::ReviewAnomalyRequest {
                    anomaly: "not_holder-0123456789abcdef".into(),
                    verdict: v1::ReviewVerdict::Acknowledged as i32,
                    ..Default::default()
                },
                Some(&p.auditor),
            ),
            Code::NotFound,
        ),
        (
            call(
                v1::ReviewAnomalyRequest {
                    anomaly: "s-x".into(),
                    verdict: v1::ReviewVerdict::Acknowledged as i32,
                    ..Default::default()
                },
                Some(&p.auditor),
            ),
            Code::InvalidArgument,
        ),
    ] {
        let got = audit.review_anomaly(request).await.map(|_| ());
        assert_eq!(got.map_err(|s| s.code()), Err(code));
    }
    // A review written as a raw event is the auditor's own, and only an auditor's.
    let raw = |org: &str| {
        let mut e = event(
            &format!("raw-review-{org}"),
            org,
            Kind::Review(v1::Review {
                anomaly: found.id.clone(),
                verdict: v1::ReviewVerdict::Acknowledged as i32,
                note: String::new(),
            }),
        );
        e.chain = String::new();
        e
    };
    for (e, token) in [(raw("trader-x"), &p.trader), (raw("trader-x"), &p.auditor)] {
        let refused = events
            .record(call(v1::RecordRequest { event: Some(e) }, Some(token)))
            .await
            .expect_err("refused");
        assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    }

    // The auditor scoped to the trader disputes it; the full auditor then acknowledges it.
    let disputed = audit
        .review_anomaly(review(
            v1::ReviewVerdict::Disputed,
            "the brand sold the lot back",
            &p.scoped_auditor,
        ))
        .await
        .expect("disputed")
        .into_inner();
    let anomaly = disputed.anomaly.expect("anomaly");
    assert_eq!(anomaly.status, "disputed");
    assert_eq!(anomaly.reviews.len(), 1);
    assert_eq!(anomaly.reviews[0].org, "audit-co");
    assert_eq!(anomaly.reviews[0].note, "the brand sold the lot back");
    let listing = listed(&server, &p.auditor, "disputed").await;
    assert_eq!(
        listing.anomalies.iter().map(|a| &a.id).collect::<Vec<_>>(),
        [&found.id]
    );
    assert_eq!(listing.status_counts.get("disputed"), Some(&1));
    let still_open = listed(&server, &p.auditor, "open").await;
    assert!(still_open.anomalies.iter().all(|a| a.id != found.id));
    assert_eq!(
        still_open.total + 1,
        open.total,
        "one anomaly left the open ones"
    );

    audit
        .review_anomaly(review(
            v1::ReviewVerdict::Acknowledged,
            "the brand denies it",
            &p.auditor,
        ))
        .await
        .expect("acknowledged");
    // The trader sees the reviews of its anomaly, in its listing and in the lot's answer.
    let own = listed(&server, &p.trader, "acknowledged").await;
    let mine = own
        .anomalies
        .iter()
        .find(|a| a.id == found.id)
        .expect("the trader's anomaly");
    assert_eq!(
        mine.reviews
            .iter()
            .map(|r| r.verdict.as_str())
            .collect::<Vec<_>>(),
        ["disputed", "acknowledged"]
    );
    let lot = ProvenanceServiceClient::new(server.channel().await)
        .get_lot(call(
            v1::GetLotRequest {
                lot: LOT.into(),
                ..Default::default()
            },
            Some(&p.auditor),
        ))
        .await
        .expect("lot")
        .into_inner();
    let in_lot = lot
        .anomalies
        .iter()
        .find(|a| a.id == found.id)
        .unwrap_or_else(|| panic!("the lot's anomalies: {:?}", lot.anomalies));
    assert_eq!(in_lot.status, "acknowledged");
    assert_eq!(in_lot.reviews.len(), 2);
    // The reviews are events in the log, by the auditor's org.
    let reviews = ProvenanceServiceClient::new(server.channel().await)
        .list_events(call(
            v1::ListEventsRequest {
                kind: "review".into(),
                ..Default::default()
            },
            Some(&p.auditor),
        ))
        .await
        .expect("events")
        .into_inner();
    assert_eq!(reviews.events.len(), 2, "{:?}", reviews.events);

    // Over HTTP: the same review, the same rules.
    let http = reqwest::Client::new();
    let url = format!(
        "{}/lotline/v1/anomalies/{}/reviews",
        server.http_url(),
        found.id
    );
    let post = |token: &str, body: serde_json::Value| {
        http.post(&url).bearer_auth(token).json(&body).send()
    };
    let refused = post(&p.trader, serde_json::json!({"verdict": "acknowledged"}))
        .await
        .expect("post");
    assert_eq!(refused.status().as_u16(), 403);
    let bad = post(&p.auditor, serde_json::json!({"verdict": "maybe"}))
        .await
        .expect("post");
    assert_eq!(bad.status().as_u16(), 400);
    let answer = post(
        &p.auditor,
        serde_json::json!({"verdict": "disputed", "note": "re-weighed", "event_id": "rv-http"}),
    )
    .await
    .expect("post");
    assert_eq!(answer.status().as_u16(), 201);
    let anomaly: serde_json::Value = answer.json().await.expect("JSON");
    assert_eq!(anomaly["id"], found.id.as_str(), "{anomaly}");
    assert_eq!(anomaly["status"], "disputed", "{anomaly}");
    assert_eq!(anomaly["reviews"][2]["event_id"], "rv-http", "{anomaly}");
    let listing: serde_json::Value = http
        .get(format!(
            "{}/lotline/v1/anomalies?status=disputed",
            server.http_url()
        ))
        .bearer_auth(&p.auditor)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        listing["anomalies"][0]["id"],
        found.id.as_str(),
        "{listing}"
    );
    assert_eq!(listing["status_counts"]["disputed"], 1, "{listing}");
}

/// `RecordStream` (served as encoded batches) is decided by its credential as `Record` is: no
/// token is refused before anything is read, a member's batch of its own events is recorded,
/// and a batch that holds another org's event is refused whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_stream_is_decided_by_its_credential() {
    let (server, issuer, _dir) = start().await;
    let p = parties(&issuer);
    history(&server, &p).await;
    let mut events = EventServiceClient::new(server.channel().await);
    let harvest = |id: &str, org: &str| {
        event(
            id,
            org,
            build::harvest(format!("LOT-{id}"), "plot-1", "cocoa_beans", 10),
        )
    };
    let batch = |events: Vec<v1::Event>| tokio_stream::iter([v1::RecordBatchRequest { events }]);

    // The first answer of a stream of `batch` sent with `token` (a refusal may come with the
    // response or as its first message).
    let first = |events: &mut EventServiceClient<Channel>, sent: Vec<v1::Event>, token| {
        let request = call(batch(sent), token);
        let mut events = events.clone();
        async move {
            let mut answers = events.record_stream(request).await?.into_inner();
            answers
                .message()
                .await?
                .ok_or_else(|| tonic::Status::internal("no answer"))
        }
    };

    let anonymous = first(&mut events, vec![harvest("stream-anon", "coop-a")], None)
        .await
        .expect_err("no token");
    assert_eq!(anonymous.code(), Code::Unauthenticated, "{anonymous}");

    let own = vec![
        harvest("stream-own-1", "coop-a"),
        harvest("stream-own-2", "coop-a"),
    ];
    let answer = first(&mut events, own, Some(&p.coop))
        .await
        .expect("a member's own events");
    assert!(
        answer
            .outcomes
            .iter()
            .all(|o| matches!(o.result, Some(v1::outcome::Result::Accepted(_)))),
        "{answer:?}"
    );

    let mixed = vec![
        harvest("stream-own-3", "coop-a"),
        harvest("stream-other", "brand-b"),
    ];
    let refused = first(&mut events, mixed, Some(&p.coop))
        .await
        .expect_err("another org's event");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused}");

    let mut provenance = ProvenanceServiceClient::new(server.channel().await);
    let stored: Vec<String> = provenance
        .list_events(call(
            v1::ListEventsRequest {
                org: "coop-a".into(),
                limit: 1000,
                ..Default::default()
            },
            Some(&p.coop),
        ))
        .await
        .expect("list")
        .into_inner()
        .events
        .into_iter()
        .filter_map(|e| e.event.map(|e| e.event_id))
        .filter(|id| id.starts_with("stream-"))
        .collect();
    assert_eq!(
        stored,
        ["stream-own-1", "stream-own-2"],
        "nothing of the refused batch"
    );
}
