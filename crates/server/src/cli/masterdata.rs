//! `lotline orgs`, `sites`, `plots`, `classes` and `certificates`: the master data the log
//! registered (`MasterDataService.ListMasterData`), paged and filtered, as a table or JSON.

use clap::Args;
use lotline_proto::v1;
use lotline_proto::v1::master_data_service_client::MasterDataServiceClient;
use serde_json::{Value, json};

use super::client::{connect, status_error};
use super::render::table;
use super::{CliError, ClientArgs, PageArgs};

#[derive(Debug, Args)]
pub(crate) struct MasterArgs {
    /// What this org owns or holds: the org and its member farms, their sites and plots, the
    /// classes it registered, the certificates it holds or issued.
    #[arg(long)]
    org: Option<String>,
    /// cocoa, coffee or textile (the entry's own chain, else its owner's).
    #[arg(long)]
    chain: Option<String>,
    /// ISO 3166-1 alpha-2 country (the entry's own, else its owner's).
    #[arg(long)]
    country: Option<String>,
    /// The owner's role: farm, cooperative, processor, trader, manufacturer, brand, retailer,
    /// certifier.
    #[arg(long)]
    role: Option<String>,
    #[command(flatten)]
    page: PageArgs,
    #[command(flatten)]
    client: ClientArgs,
}

/// One of the five listings.
pub(crate) async fn list(kind: v1::MasterDataKind, args: MasterArgs) -> Result<(), CliError> {
    let role = match args.role.as_deref() {
        None => 0,
        Some(r) => {
            let name = format!(
                "ORG_ROLE_{}",
                r.trim().to_ascii_uppercase().replace('-', "_")
            );
            match v1::OrgRole::from_str_name(&name) {
                Some(role) if role != v1::OrgRole::Unspecified => role as i32,
                _ => {
                    return Err(CliError::Usage(format!(
                        "--role: unknown role {r:?} (farm, cooperative, processor, trader, manufacturer, brand, retailer or certifier)"
                    )));
                }
            }
        }
    };
    let mut request = v1::ListMasterDataRequest {
        kind: kind as i32,
        org: args.org.clone().unwrap_or_default(),
        chain: args.chain.clone().unwrap_or_default(),
        country: args.country.clone().unwrap_or_default(),
        role,
        cursor: args.page.cursor.clone().unwrap_or_default(),
        limit: args.page.limit,
        public_view: args.page.public,
    };
    let mut client = MasterDataServiceClient::new(connect(&args.client).await?)
        .max_decoding_message_size(256 << 20);
    let mut entries = Vec::new();
    let next = loop {
        let page = client
            .list_master_data(request.clone())
            .await
            .map_err(status_error)?
            .into_inner();
        entries.extend(page.entries);
        if !args.page.all || page.next_cursor.is_empty() {
            break page.next_cursor;
        }
        request.cursor = page.next_cursor;
    };
    if args.client.json {
        let entries: Vec<Value> = entries
            .iter()
            .map(|e| serde_json::to_value(e).unwrap_or(Value::Null))
            .collect();
        outln!(
            "{}",
            serde_json::to_string_pretty(&json!({"entries": entries, "next_cursor": next}))
                .unwrap_or_default()
        );
    } else {
        out!("{}", text(kind, &entries));
        if !next.is_empty() {
            eprintln!("more: --cursor {next} (or --all)");
        }
    }
    Ok(())
}

fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.to_string()
    }
}

fn role_name(role: i32) -> String {
    v1::OrgRole::try_from(role)
        .map(|r| {
            r.as_str_name()
                .trim_start_matches("ORG_ROLE_")
                .to_ascii_lowercase()
        })
        .unwrap_or_else(|_| "-".into())
}

/// The listing as a table, one row per entry.
fn text(kind: v1::MasterDataKind, entries: &[v1::StoredEvent]) -> String {
    use v1::event::Kind as K;
    let events = entries.iter().filter_map(|s| s.event.as_ref());
    let (header, rows): (&[&str], Vec<Vec<String>>) = match kind {
        v1::MasterDataKind::Orgs => (
            &[
                "ORG",
                "ROLE",
                "COUNTRY",
                "CHAIN",
                "MEMBER OF",
                "GLN",
                "NAME",
            ],
            events
                .filter_map(|e| match &e.kind {
                    Some(K::RegisterOrg(o)) => Some(vec![
                        e.org.clone(),
                        role_name(o.role),
                        or_dash(&o.country),
                        or_dash(&e.chain),
                        or_dash(&o.member_of),
                        or_dash(&o.gln),
                        or_dash(&o.name),
                    ]),
                    _ => None,
                })
                .collect(),
        ),
        v1::MasterDataKind::Sites => (
            &["SITE", "ORG", "COUNTRY", "GLN", "NAME"],
            events
                .filter_map(|e| match &e.kind {
                    Some(K::RegisterSite(s)) => Some(vec![
                        s.site.clone(),
                        e.org.clone(),
                        or_dash(&s.country),
                        or_dash(&s.gln),
                        or_dash(&s.name),
                    ]),
                    _ => None,
                })
                .collect(),
        ),
        v1::MasterDataKind::Plots => (
            &["PLOT", "ORG", "COUNTRY", "AREA HA", "GEOMETRY"],
            events
                .filter_map(|e| match &e.kind {
                    Some(K::RegisterPlot(p)) => Some(vec![
                        p.plot.clone(),
                        e.org.clone(),
                        or_dash(&p.country),
                        or_dash(&p.area_ha),
                        serde_json::from_str::<Value>(&p.geometry)
                            .ok()
                            .and_then(|g| g.get("type").and_then(Value::as_str).map(str::to_string))
                            .unwrap_or_else(|| "-".into()),
                    ]),
                    _ => None,
                })
                .collect(),
        ),
        v1::MasterDataKind::Classes => (
            &["CLASS", "PRODUCT", "CHAIN", "ORG", "ATTRIBUTES"],
            events
                .filter_map(|e| match &e.kind {
                    Some(K::RegisterClass(c)) => Some(vec![
                        c.class.clone(),
                        or_dash(&c.product),
                        or_dash(&e.chain),
                        e.org.clone(),
                        c.attributes.len().to_string(),
                    ]),
                    _ => None,
                })
                .collect(),
        ),
        v1::MasterDataKind::Certificates | v1::MasterDataKind::Unspecified => (
            &[
                "HOLDER",
                "STANDARD",
                "CERTIFICATE",
                "OUTCOME",
                "VALID FROM",
                "VALID TO",
                "PRODUCTS",
                "ISSUED BY",
            ],
            events
                .filter_map(|e| match &e.kind {
                    Some(K::Certify(c)) => Some(vec![
                        if c.subject_org.is_empty() {
                            e.org.clone()
                        } else {
                            c.subject_org.clone()
                        },
                        or_dash(&c.standard),
                        or_dash(&c.certificate_id),
                        or_dash(&c.outcome),
                        or_dash(&c.valid_from),
                        or_dash(&c.valid_to),
                        or_dash(&c.products.join(",")),
                        e.org.clone(),
                    ]),
                    _ => None,
                })
                .collect(),
        ),
    };
    table(header, &rows)
}
