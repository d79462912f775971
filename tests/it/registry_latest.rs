//! "Latest" means the same on every registry route: the highest version by semver
//! precedence when all are semantic (a `1.9.0` hotfix published after `1.10.0` is not the
//! latest), else the last published.

use serde_json::{json, Value};

use crate::registry::{call, pact, publish_body, Served, BP};

fn publish(url: &str, consumer: &str, version: &str, description: &str) {
    let (status, body) = call(
        "POST",
        &format!("{url}/contracts/publish"),
        Some("engine-write"),
        Some(publish_body(
            consumer,
            version,
            &[pact(consumer, BP, description)],
        )),
    );
    assert_eq!(status, 200, "{body}");
}

fn get(url: &str) -> Value {
    let (status, body) = call("GET", url, Some("engine-write"), None);
    assert_eq!(status, 200, "{url}: {body}");
    body
}

#[test]
fn the_latest_version_is_the_highest_by_semver_on_every_route() {
    let s = Served::start(&[]);
    let u = &s.url;
    publish(u, "syncgate-engine", "1.10.0", "ten");
    publish(
        u,
        "syncgate-engine",
        "1.9.0",
        "nine (a hotfix, published later)",
    );

    let latest = get(&format!(
        "{u}/pacts/provider/{BP}/consumer/syncgate-engine/latest"
    ));
    assert_eq!(latest["interactions"][0]["description"], "ten", "{latest}");
    let version = get(&format!("{u}/pacticipants/syncgate-engine/latest-version"));
    assert_eq!(version["number"], "1.10.0", "{version}");
    let listed = get(&format!("{u}/pacts/latest"));
    assert_eq!(
        listed["pacts"][0]["_embedded"]["consumer"]["_embedded"]["version"]["number"], "1.10.0",
        "{listed}"
    );
    let branch = get(&format!("{u}/pacts/provider/{BP}/branch/latest"));
    let hrefs: Vec<&str> = branch["_links"]["pb:pacts"]
        .as_array()
        .map(|a| a.iter().filter_map(|l| l["href"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(hrefs.len(), 1, "{branch}");
    assert!(hrefs[0].ends_with("/version/1.10.0"), "{branch}");
    // The whole branch, by contrast, lists both.
    let all = get(&format!("{u}/pacts/provider/{BP}/branch/main"));
    assert_eq!(
        all["_links"]["pb:pacts"].as_array().map(Vec::len),
        Some(2),
        "{all}"
    );

    let (status, chosen) = call(
        "POST",
        &format!("{u}/pacts/provider/{BP}/for-verification"),
        Some("engine-write"),
        Some(json!({ "consumerVersionSelectors": [{ "mainBranch": true }] })),
    );
    assert_eq!(status, 200, "{chosen}");
    let pacts = chosen["_embedded"]["pacts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(pacts.len(), 1, "{chosen}");
    let href = pacts[0]["_links"]["self"]["href"]
        .as_str()
        .unwrap_or_default();
    assert!(!href.contains("1.9.0"), "{chosen}");
    assert_eq!(get(href)["interactions"][0]["description"], "ten");

    // Opaque versions (commit SHAs) have no order: the last published is the latest.
    publish(u, "other-app", "f00d", "first");
    publish(u, "other-app", "beef", "second");
    let version = get(&format!("{u}/pacticipants/other-app/latest-version"));
    assert_eq!(version["number"], "beef", "{version}");
    let latest = get(&format!(
        "{u}/pacts/provider/{BP}/consumer/other-app/latest"
    ));
    assert_eq!(
        latest["interactions"][0]["description"], "second",
        "{latest}"
    );
}
