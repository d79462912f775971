//! The registry's routes, the server, and the index (`GET /`) advertising the relations.

use std::future::Future;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post, put};
use axum::Router;
use serde_json::json;

use super::{
    caller, environments, hal, latest, matrix, pacticipants, pacts, publish, releases,
    verifications, webhooks, ApiError, ApiResult, BrokerConfig, Shared,
};

/// The routes; state is shared by every handler.
pub fn router(config: BrokerConfig) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/contracts/publish", post(publish::publish_contracts))
        .route("/pacts/latest", get(latest::latest_pact_versions))
        .route(
            "/pacts/provider/{provider}/branch",
            get(latest::branch_pacts_all),
        )
        .route(
            "/pacts/provider/{provider}/branch/latest",
            get(latest::branch_pacts_latest),
        )
        .route(
            "/pacts/provider/{provider}/branch/{branch}",
            get(latest::branch_pacts_all),
        )
        .route(
            "/pacts/provider/{provider}/branch/{branch}/latest",
            get(latest::branch_pacts_latest),
        )
        .route(
            "/pacts/provider/{provider}/consumer/{consumer}/branch",
            get(latest::branch_pacts_all),
        )
        .route(
            "/pacts/provider/{provider}/consumer/{consumer}/branch/latest",
            get(latest::branch_pacts_latest),
        )
        .route(
            "/pacts/provider/{provider}/consumer/{consumer}/branch/{branch}",
            get(latest::branch_pacts_all),
        )
        .route(
            "/pacts/provider/{provider}/consumer/{consumer}/branch/{branch}/latest",
            get(latest::branch_pacts_latest),
        )
        .route("/pacticipants", get(latest::pacticipants))
        .route(
            "/pacticipants/{pacticipant}/latest-version",
            get(latest::latest_version),
        )
        .route(
            "/pacticipants/{pacticipant}/latest-version/{tag}",
            get(latest::latest_tagged_version),
        )
        .route(
            "/pacts/provider/{provider}/consumer/{consumer}/latest/{tag}",
            get(latest::latest_tagged_pact),
        )
        .route("/pacts/provider/{provider}", get(pacts::provider_pacts))
        .route("/pacts/provider/{provider}/latest", get(pacts::provider_pacts))
        .route(
            "/pacts/provider/{provider}/for-verification",
            get(pacts::for_verification_link).post(pacts::for_verification),
        )
        .route(
            "/pacts/provider/{provider}/consumer/{consumer}",
            get(pacts::latest_pact),
        )
        .route(
            "/pacts/provider/{provider}/consumer/{consumer}/latest",
            get(pacts::latest_pact),
        )
        .route(
            "/pacts/provider/{provider}/consumer/{consumer}/version/{version}",
            get(pacts::pact_by_version),
        )
        .route(
            "/pacts/provider/{provider}/consumer/{consumer}/pact-version/{sha}",
            get(pacts::pact_by_sha),
        )
        .route(
            "/pacts/provider/{provider}/consumer/{consumer}/verification-results",
            post(verifications::verify_latest),
        )
        .route(
            "/pacts/provider/{provider}/consumer/{consumer}/pact-version/{sha}/verification-results",
            post(verifications::verify_sha),
        )
        .route("/pacticipants/{pacticipant}", get(pacticipants::pacticipant))
        .route(
            "/pacticipants/{pacticipant}/versions/{version}",
            get(pacticipants::pacticipant_version),
        )
        .route(
            "/pacticipants/{pacticipant}/branches/{branch}/versions/{version}",
            put(pacticipants::put_branch),
        )
        .route(
            "/pacticipants/{pacticipant}/versions/{version}/tags/{tag}",
            put(pacticipants::put_tag),
        )
        .route(
            "/pacticipants/{pacticipant}/versions/{version}/deployed-versions/environment/{environment}",
            post(environments::record_deployment),
        )
        .route(
            "/pacticipants/{pacticipant}/versions/{version}/released-versions/environment/{environment}",
            post(releases::record_release),
        )
        .route(
            "/environments/{environment}/released-versions/currently-supported",
            get(releases::currently_supported),
        )
        .route(
            "/environments",
            get(environments::environments).post(environments::create_environment),
        )
        .route(
            "/environments/{environment}",
            get(environments::environment),
        )
        .route(
            "/environments/{environment}/deployed-versions/currently-deployed",
            get(environments::currently_deployed),
        )
        .route("/matrix", get(matrix::matrix))
        .route(
            "/pacticipants/{pacticipant}/latest-version/{tag}/can-i-deploy/to/{environment}/badge",
            get(matrix::can_i_deploy_badge),
        )
        .route(
            "/pacts/provider/{provider}/consumer/{consumer}/pact-version/{sha}/verification-results/latest",
            get(latest::latest_verification_results),
        )
        .route(
            "/pacts/provider/{provider}/consumer/{consumer}/pact-version/{sha}/verification-results/{id}",
            get(latest::verification_result_by_id),
        )
        .merge(webhooks::routes())
        .fallback(|| async {
            ApiError(StatusCode::NOT_FOUND, "no such resource in this registry".into())
        })
        .with_state(Arc::new(config))
}

/// Serves on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: BrokerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(config))
        .with_graceful_shutdown(shutdown)
        .await
}

/// The relations the index advertises: name, path below the base URL, title. A path with a
/// `{placeholder}` is a template (`"templated": true`).
const INDEX: &[(&str, &str, &str)] = &[
    ("self", "/", "Index"),
    (
        "pb:publish-contracts",
        "/contracts/publish",
        "Publish contracts",
    ),
    (
        "pb:latest-provider-pacts",
        "/pacts/provider/{provider}/latest",
        "Latest pacts by provider",
    ),
    (
        "pb:provider-pacts",
        "/pacts/provider/{provider}",
        "All pacts for a provider",
    ),
    (
        "pb:provider-pacts-for-verification",
        "/pacts/provider/{provider}/for-verification",
        "Pact versions to be verified for the specified provider",
    ),
    (
        "pb:latest-pact-versions",
        "/pacts/latest",
        "Latest pact versions",
    ),
    ("pb:pacticipants", "/pacticipants", "Pacticipants"),
    (
        "pb:latest-version",
        "/pacticipants/{pacticipant}/latest-version",
        "Latest pacticipant version",
    ),
    (
        "pb:latest-tagged-version",
        "/pacticipants/{pacticipant}/latest-version/{tag}",
        "Latest pacticipant version with the tag",
    ),
    (
        "pb:pacticipant",
        "/pacticipants/{pacticipant}",
        "Fetch pacticipant by name",
    ),
    (
        "pb:pacticipant-version",
        "/pacticipants/{pacticipant}/versions/{version}",
        "Fetch pacticipant version",
    ),
    ("pb:environments", "/environments", "Environments"),
    ("pb:environment", "/environments/{uuid}", "Environment"),
    ("pb:matrix", "/matrix", "The matrix behind can-i-deploy"),
    ("pb:webhooks", "/webhooks", "Webhooks"),
    ("pb:webhook", "/webhooks/{uuid}", "Webhook"),
    (
        "pb:can-i-deploy-badge",
        "/pacticipants/{pacticipant}/latest-version/{tag}/can-i-deploy/to/{environment}/badge",
        "Can I deploy the latest version with the tag to the environment (SVG badge)",
    ),
];

async fn index(State(cfg): State<Shared>, headers: HeaderMap) -> ApiResult {
    let c = caller(&cfg, &headers)?;
    let mut links = serde_json::Map::new();
    for (rel, path, title) in INDEX {
        let mut link = json!({ "href": format!("{}{path}", c.base), "title": title });
        if path.contains('{') {
            link["templated"] = json!(true);
        }
        links.insert(rel.to_string(), link);
    }
    let body = json!({ "_links": links });
    Ok(hal(StatusCode::OK, &headers, body))
}
