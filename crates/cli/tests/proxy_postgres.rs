//! Two proxy instances sharing one PostgreSQL: tokens and revocations cross between them.

mod support;

use std::time::Duration;

use support::*;

fn config(devnet: &Devnet, up: std::net::SocketAddr, db: &str) -> String {
    format!(
        "listen: 127.0.0.1:0\nlightning: {}\nstore: \"{db}\"\nmetrics: {{ listen: 127.0.0.1:0, admin_token: adm-0123456789abcdef }}\nservices:\n  - name: weather\n    upstream: http://{up}\n",
        devnet.shop_uri()
    )
}

#[tokio::test]
async fn a_token_from_one_instance_works_on_the_other_and_revocation_reaches_both() {
    let devnet = Devnet::start().await;
    let up = upstream().await;
    let db = l402_test::postgres::fresh_database();
    let a = start_proxy(&config(&devnet, up, &db));
    let b = start_proxy(&config(&devnet, up, &db));
    let client = http();

    // Minted by A, accepted by B.
    let auth = buy(&devnet, &client, &a.url("/x")).await;
    assert_eq!(
        client
            .get(b.url("/x"))
            .header("authorization", &auth)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        client
            .get(a.url("/x"))
            .header("authorization", &auth)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Both have the root key cached now. Revoke on A; B must stop accepting it.
    let cred = l402::Credential::parse_authorization(&auth)
        .unwrap()
        .unwrap();
    let token_id = l402::Identifier::decode(cred.macaroon().identifier())
        .unwrap()
        .token_id()
        .to_hex();
    let r = client
        .post(a.ops_url(&format!("/admin/tokens/{token_id}/revoke")))
        .bearer_auth("adm-0123456789abcdef")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // B heard it from A through PostgreSQL (thirty seconds at most, however slow the machine).
    let mut status = 0;
    for _ in 0..300 {
        status = client
            .get(b.url("/x"))
            .header("authorization", &auth)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        if status == 401 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 401, "instance B still accepts a token revoked on A");
    assert_eq!(
        client
            .get(a.url("/x"))
            .header("authorization", &auth)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );

    // Revenue is counted once across both instances.
    let stats = admin_json_when(
        &client,
        &b.ops_url("/admin/stats"),
        "adm-0123456789abcdef",
        |s| s["paid"] != 0,
    )
    .await;
    assert_eq!(stats["paid"], 1);
    assert_eq!(stats["revenue_msat"], 1000);
    let metrics = client
        .get(a.ops_url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("l402_requests_total"), "{metrics}");
    assert!(
        metrics.contains("l402_challenges_minted_total"),
        "{metrics}"
    );
}
